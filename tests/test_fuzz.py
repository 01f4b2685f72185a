"""Robustness of the scenario loader: whatever the file holds, the answer is a Scenario or a ScenarioError.

Hypothesis feeds ``load_scenario`` more than 10,000 generated files (the ``max_examples`` below add
up to :data:`TOTAL_EXAMPLES`): random text and bytes, random YAML shaped like a scenario, the
bundled scenarios mutated (keys deleted, wrong types, huge / negative / NaN / infinite numbers,
strings where numbers go, unknown or wrong-kind venues, deep nesting, duplicate keys, non-UTF-8
bytes, aliases, ``extends`` cycles and missing parents, ``--set`` overrides). Every outcome must be
either a valid :class:`Scenario` or a :class:`ScenarioError` whose every problem has a file, a line
(``None`` only for problems that have none: an unreadable file, a ``--set`` override) and a
message — never another exception, never a hang (each load runs under a hard time limit). A
sample of the valid ones is simulated for one day; the CLI is checked on a subset (exit code 2 and
no traceback). The budget refusal (``launderflow.scenario.budget``) is tested here too.
"""

from __future__ import annotations

import copy
import os
import random
import re
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BASE_YAML, HOP, REPO, line_of
from launderflow.cli import main
from launderflow.model.simulate import simulate
from launderflow.scenario import budget, loader
from launderflow.scenario.loader import Problem, ScenarioError, load_data, load_scenario
from launderflow.scenario.schema import Scenario

BUNDLED = sorted((REPO / "scenarios").glob("*.yaml")) + sorted((REPO / "tests" / "scenarios").glob("*.yaml"))
BUNDLED_DATA: dict[str, dict[str, Any]] = {p.name: load_data(p)[0] for p in BUNDLED}

LOAD_SECONDS = 10.0  # hard limit for one load (a hang fails the example)
SIMULATE_SECONDS = 20.0  # hard limit for one short simulation
# Problems that carry no line: an unreadable file, or a --set override (which is not in the file).
LINELESS = ("file not found", "is a directory", "cannot read", "file is larger than", "no such field to override",
            "index out of range")

EXAMPLES = {  # documents per test, sized so that the file runs in about a minute
    "random_text": 3300,
    "random_bytes": 1600,
    "structured_yaml": 2500,
    "mutated_small": 1200,
    "mutated_bundled": 300,
    "text_mutations": 500,
    "extends": 400,
    "overrides": 400,
    "cli": 250,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())  # 10,450 documents
# LAUNDERFLOW_FUZZ_SCALE=10 runs ten times as many examples (for a long local search); 1 in CI.
SCALE = float(os.environ.get("LAUNDERFLOW_FUZZ_SCALE", "1"))
FED: dict[str, int] = {}  # documents actually fed, per test


def fuzz_settings(name: str) -> settings:
    return settings(max_examples=max(1, round(EXAMPLES[name] * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- the oracle ------------------------------------------------------------------------------------


class Hang(Exception):
    """The time limit of one load or simulation ran out."""


@contextmanager
def time_limit(seconds: float, what: str):
    """Fail (raise :class:`Hang`) if the block runs longer than ``seconds`` (SIGALRM: main thread)."""

    def expired(signum, frame):
        raise Hang(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _lines(path: str) -> int | None:
    """Lines in the file, counting every break YAML counts (\\r, NEL, U+2028 and U+2029 too)."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return None
    return len(raw.decode("utf-8", errors="replace").splitlines()) + 1


def check_problems(problems: list[Problem], source: str) -> None:
    assert problems, f"a ScenarioError without problems\n--- input ---\n{source}"
    for p in problems:
        assert isinstance(p.file, str) and p.file, p
        assert isinstance(p.path, str), p
        assert isinstance(p.message, str) and p.message.strip(), p
        if p.line is None:  # (a problem in an override is the override's: "--set FIELD=VALUE", no line)
            assert any(m in p.message for m in LINELESS) or p.file.startswith("--set "), (
                f"a problem without a line: {p}\n--- input ---\n{source}")
        else:
            assert isinstance(p.line, int) and not isinstance(p.line, bool) and p.line >= 1, p
            lines = _lines(p.file)
            assert lines is None or p.line <= lines, f"line {p.line} is past the end of {p.file} ({lines} lines): {p}"
        assert "Traceback" not in str(p), p
        assert "\n" not in str(p) and "\r" not in str(p), f"a problem must print on one line: {str(p)!r}"


def outcome(path: Path, name: str, overrides: dict[str, Any] | None = None) -> Scenario | ScenarioError:
    """Load ``path``: a Scenario or a well-formed ScenarioError; anything else fails the test."""
    FED[name] = FED.get(name, 0) + 1
    try:
        with time_limit(LOAD_SECONDS, f"loading {path.name}"):
            result: Scenario | ScenarioError = load_scenario(path, overrides)
    except ScenarioError as exc:
        result = exc
    except Exception as exc:  # noqa: BLE001 - the point of the test
        raise AssertionError(f"load_scenario raised {type(exc).__name__}: {exc}\n--- input ---\n{_show(path)}") from exc
    if isinstance(result, ScenarioError):
        check_problems(result.problems, _show(path))
    else:
        assert isinstance(result, Scenario)
    return result


def _show(path: Path) -> str:
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="backslashreplace")
    return text if len(text) < 4000 else text[:4000] + f"\n... ({len(text)} characters)"


def short_run_fits(scenario: Scenario) -> bool:
    """Small enough to simulate for a day inside a test (the budget allows far bigger runs)."""
    est = budget.estimate(scenario)
    return (est.lots + est.transfers < 200_000 and est.background_steps <= 10_000 and est.ticks <= 10_000_000
            and est.honest_rows < 200_000)


def simulate_one_day(path: Path, seed: int) -> None:
    """Reload with the horizon set to one day (the budget check runs again) and simulate it."""
    result = _reload_short(path)
    if isinstance(result, ScenarioError) or not short_run_fits(result):
        return
    try:
        with time_limit(SIMULATE_SECONDS, f"simulating {path.name}"):
            rep = simulate(result, np.random.default_rng(seed), keep_ledger=False)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"simulate raised {type(exc).__name__}: {exc}\n--- input ---\n{_show(path)}") from exc
    assert rep.final_cells.shape == (12,)


def _reload_short(path: Path) -> Scenario | ScenarioError:
    with time_limit(LOAD_SECONDS, f"reloading {path.name}"):
        try:
            return load_scenario(path, {"clock.horizon": "1d"})
        except ScenarioError as exc:
            check_problems(exc.problems, _show(path))
            return exc


# --- generators --------------------------------------------------------------------------------

FIELD_NAMES = sorted({
    "name", "description", "sources", "seed", "clock", "horizon", "resolution", "timeline_step", "chains",
    "confirmation", "fee_usd", "assets", "chain", "price_usd", "freezable", "venues", "kind", "jurisdiction",
    "halts", "delay", "haircut", "capacity_usd_per_day", "fee", "pool_depth_usd", "kyc", "freezes", "compliance",
    "freeze_latency", "asset", "payouts", "denominations", "initial_notes", "honest_deposits_per_day",
    "honest_pool_weights", "honest_holding", "background_step", "relayer_fee", "demixing", "habits", "thefts",
    "victim", "time", "stolen", "amount", "discovered_after", "playbook", "repeat", "count", "every", "hop",
    "wallets", "concentration", "length", "fraction", "venue", "retry", "to", "branches", "share", "tracing",
    "hop_success", "tracers", "sharing", "latency", "coverage", "resume_at_kyc", "interventions", "at",
    "after_discovery", "launderer", "avoids_designated", "extends", "dist", "mean", "median", "sigma", "low",
    "high", "value", "split", "peel", "otc", "dex", "pool_mixer", "custodial_mixer", "exchange", "bridge",
})
NASTY_STRINGS = [
    "", " ", "NO", "yes", "off", "null", "~", "nan", ".nan", "inf", "-inf", ".inf", "1e999", "-5h", "1e999h", "0",
    "-0", "6h", "15min", "2.5d", "1w", "90s", "3 parsecs", "otc_brokr", "nonexistent_venue", "ETH", "BTC", "all",
    "exponential", "fixed", "split", "pool_mixer", "__proto__", "a" * 300, "ünïcødé", "\u202e", "😀", "1_000",
    "0x10", "0o7", "+1", "1,5", "true", "False", "2024-01-01", "12:30:00", "*a", "&a", "!!binary", "<<",
]
NASTY_SCALARS: list[Any] = [
    None, True, False, 0, -1, 1, 7, 10**7, 2**63, -(2**80), 10**30, 10**400, 1e308, -1e308, 1e-320, 0.5, -0.0,
    float("nan"), float("inf"), float("-inf"), *NASTY_STRINGS,
]
ALPHABET = "abcxyzABCXYZ0123456789 _-.:#&*!|>'\"%@`,[]{}?\t\n\\/=+~éü€😀\u2028\x85\x00\x1b"


def random_text(rng: random.Random, size: int = 15) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, size)))


def random_scalar(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.5:
        return rng.choice(NASTY_SCALARS)
    if r < 0.65:
        return rng.randint(-10, 10**7)
    if r < 0.8:
        return rng.uniform(-1e6, 1e6)
    return random_text(rng)


def random_key(rng: random.Random) -> str:
    return rng.choice(FIELD_NAMES) if rng.random() < 0.7 else random_text(rng, 12)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random YAML value: scalars, lists and mappings with scenario-like keys, up to 4 deep."""
    r = rng.random()
    if depth >= 4 or r < 0.55:
        return random_scalar(rng)
    if r < 0.75:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {random_key(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def nasty_value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.6:
        return random_scalar(rng)
    if r < 0.7:
        return rng.choice([lambda: [], lambda: {}, lambda: [1, 2], lambda: {"x": 1}, lambda: nested_list(70),
                           lambda: nested_list(200)])()
    return random_value(rng)


def dump(data: Any, flow: bool = False) -> str:
    """YAML text of plain data (nan, inf, huge ints and odd strings included)."""
    return yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=flow, width=120)


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter when present: the same YAML, faster


def paths_of(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths_of(v, (*prefix, i))
    return out


def get(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def names_in(doc: dict[str, Any]) -> list[str]:
    """Names defined in the document (venues, assets, chains) for wrong-kind references."""
    out: list[str] = []
    for section in ("venues", "assets", "chains"):
        if isinstance(doc.get(section), dict):
            out += [k for k in doc[section] if isinstance(k, str)]
    return out or ["x"]


KINDS = {"kind": ["otc", "dex", "bridge", "exchange", "issuer", "custodial_mixer", "pool_mixer", "designation",
                  "operators", "seizure", "shutdown", "halt", "defences", "analytics", "crowd", "bogus"],
         "hop": ["transfer", "split", "peel", "wait", "consolidate", "cash_out", "swap", "bridge", "exchange", "mix",
                 "branch", "teleport"],
         "dist": ["fixed", "exponential", "lognormal", "uniform", "gamma"]}
MUTATIONS = ["delete", "replace", "perturb", "perturb", "add_key", "duplicate", "reference", "kind", "deepen", "wrap",
             "huge_fanout"]


def perturb(value: Any, rng: random.Random) -> Any:
    """A nearby but (often) wrong value of the same kind."""
    if isinstance(value, bool):
        return rng.choice(["yes", 1, None, "NO", not value])
    if isinstance(value, (int, float)):
        nearby = [-value, 0, float("nan"), float("inf"), float("-inf"), 10**30, 10**400, str(value), f"{value}h",
                  1_000_000, 10**9]
        if abs(value) < 1e300:
            nearby += [value * 1e6, value * 1e12, value + 0.5]
        return rng.choice(nearby)
    if isinstance(value, str):
        return rng.choice([value + "x", "", value * 40, "unknown_" + value, value.upper(), "NO", "1e999h", "-3h",
                           value + "h", 5])
    return nasty_value(rng)


def mutate(doc: dict[str, Any], rng: random.Random, steps: int) -> dict[str, Any]:
    """Apply ``steps`` random mutations to a copy of ``doc`` (plain data)."""
    doc = copy.deepcopy(doc)
    for _ in range(steps):
        path = rng.choice(paths_of(doc))
        target = get(doc, path)
        parent = get(doc, path[:-1]) if path else None
        op = rng.choice(MUTATIONS)
        if op == "delete" and path:
            del parent[path[-1]]
        elif op == "replace" and path:
            parent[path[-1]] = nasty_value(rng)
        elif op == "perturb" and path:
            parent[path[-1]] = perturb(target, rng)
        elif op == "add_key" and isinstance(target, dict):
            target[random_key(rng)] = nasty_value(rng)
        elif op == "duplicate" and isinstance(target, list) and target:
            target.append(copy.deepcopy(rng.choice(target)))
        elif op == "reference" and path and isinstance(target, str):
            parent[path[-1]] = rng.choice(names_in(doc) + ["otc_brokr", "nope"])
        elif op == "kind" and isinstance(target, dict) and any(k in target for k in KINDS):
            field = next(k for k in KINDS if k in target)
            target[field] = rng.choice(KINDS[field])
        elif op == "deepen" and path:
            parent[path[-1]] = nested_list(rng.choice([3, 64, 65, 120])) if rng.random() < 0.5 else [target]
        elif op == "wrap" and path:
            parent[path[-1]] = {"value": target} if rng.random() < 0.5 else [target, target]
        elif op == "huge_fanout" and isinstance(target, dict) and target.get("hop") in ("split", "peel", "consolidate"):
            field = "length" if target["hop"] == "peel" else "wallets"
            target[field] = rng.choice([10_000, 1_000_000, 10**7])
    return doc


TEXT_MUTATIONS = ["duplicate_key", "duplicate_key", "bad_bytes", "delete_line", "duplicate_line", "insert_token",
                  "truncate", "indent", "alias_bomb", "control_char", "bom"]


def text_mutation(text: str, rng: random.Random) -> str | bytes:
    """A text-level change the data level cannot make: duplicate keys, bad bytes, broken lines, YAML tricks.

    Returns bytes once the text is no longer valid UTF-8.
    """
    lines = text.splitlines(keepends=True) or ["\n"]
    op = rng.choice(TEXT_MUTATIONS)
    i = rng.randrange(len(lines))
    if op == "duplicate_key":
        keyed = [j for j, line in enumerate(lines) if re.match(r"^\s*(- )?[A-Za-z_][\w.-]*\s*:", line)]
        if keyed:
            j = rng.choice(keyed)
            match = re.match(r"^(\s*)(- )?([A-Za-z_][\w.-]*)\s*:", lines[j])
            indent = match.group(1) + ("  " if match.group(2) else "")
            lines.insert(j + 1, f"{indent}{match.group(3)}: {rng.choice(['1', 'x', '[]', '{}', '6h'])}\n")
    elif op == "bad_bytes":
        raw = "".join(lines).encode("utf-8")
        at = rng.randint(0, len(raw))
        bad = rng.choice([b"\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xfe\xff"])
        return raw[:at] + bad + raw[at:]
    elif op == "delete_line":
        del lines[i]
    elif op == "duplicate_line":
        lines.insert(i, lines[i])
    elif op == "insert_token":
        token = rng.choice(["&a ", "*a ", "*nope", "!!binary ", "!!python/object:os.system ", "<<: *a\n", "? ",
                            "---\n", "...\n", "%YAML 1.1\n", "{", "]", ": ", "\t", "- ", "!!set ", "!!float ",
                            "!!int ", "!!timestamp ", "!custom ", "'", '"', "#", "|\n", ">-\n", "&a [1, *a]"])
        at = rng.randint(0, len(lines[i]))
        lines[i] = lines[i][:at] + token + lines[i][at:]
    elif op == "truncate":
        lines = lines[:i]
    elif op == "indent":
        lines[i] = " " * rng.randint(1, 5) + lines[i]
    elif op == "alias_bomb":
        bomb = "zz0: &b0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"zz{k}: &b{k} [" + ", ".join([f"*b{k - 1}"] * 10) + "]\n" for k in range(1, rng.randint(2, 5)))
        lines.insert(0, bomb)
    elif op == "control_char":
        at = rng.randint(0, len(lines[i]))
        lines[i] = lines[i][:at] + rng.choice(["\x00", "\x07", "\x1b", "\x7f", "\ufffe", "\x85", "\u2028"]) + lines[i][at:]
    elif op == "bom":
        lines.insert(0, "\ufeff")
    return "".join(lines)


SEEDS = st.integers(0, 2**64 - 1)  # everything random below is drawn from random.Random(seed)


# A few small, valid bases (cheap to load) with every kind of venue and hop between them.
SMALL_BASES: list[dict[str, Any]] = [
    yaml.safe_load(BASE_YAML),
    BUNDLED_DATA["venue_fallbacks.yaml"],
    BUNDLED_DATA["all_venues.yaml"],
    {
        "name": "small_mix", "seed": 3, "clock": {"horizon": "5d", "resolution": "10min", "timeline_step": "6h"},
        "chains": {"eth": {"confirmation": "1min", "fee_usd": 2}, "btc": {"confirmation": "10min", "fee_usd": 3}},
        "assets": {"ETH": {"chain": "eth", "price_usd": 2000}, "USDC": {"chain": "eth", "price_usd": 1, "freezable": True},
                   "BTC": {"chain": "btc", "price_usd": 40000}},
        "venues": {
            "uni": {"kind": "dex"}, "tornado": {"kind": "pool_mixer", "asset": "ETH", "honest_deposits_per_day": 50},
            "sinbad": {"kind": "custodial_mixer", "jurisdiction": "offshore", "payouts": 3, "delay": "6h"},
            "thor": {"kind": "bridge", "jurisdiction": "none", "halts": True, "delay": "1h"},
            "cex": {"kind": "exchange", "jurisdiction": "US", "delay": "2h"},
            "circle": {"kind": "issuer", "jurisdiction": "US", "asset": "USDC", "freeze_latency": "3h"},
            "desk": {"kind": "otc", "jurisdiction": "RU", "delay": "1d", "capacity_usd_per_day": 1_000_000},
        },
        "thefts": [{"name": "hack", "victim": "v", "stolen": [{"asset": "ETH", "amount": 300}, {"asset": "USDC", "amount": 100000}],
                    "discovered_after": "2h"},
                   {"name": "salary", "victim": "w", "time": "1d", "stolen": [{"asset": "USDC", "amount": 5000}],
                    "repeat": {"count": 5, "every": "12h"}, "playbook": [{"hop": "transfer"}, {"hop": "cash_out", "venue": "cex"}]}],
        "playbook": [
            {"hop": "split", "wallets": 4, "delay": {"dist": "exponential", "mean": "1h"}},
            {"hop": "swap", "venue": "uni", "to": "ETH"},
            {"hop": "mix", "venue": ["tornado", "sinbad"], "retry": "6h"},
            {"hop": "branch", "branches": [
                {"share": 0.5, "playbook": [{"hop": "bridge", "venue": "thor", "to": "BTC"},
                                            {"hop": "peel", "length": 3, "fraction": 0.2, "delay": "1h"}]},
                {"share": 0.5, "playbook": [{"hop": "consolidate", "wallets": 2},
                                            {"hop": "exchange", "venue": "cex"}]}]},
            {"hop": "wait", "delay": {"dist": "uniform", "low": "1h", "high": "6h"}},
            {"hop": "cash_out", "venue": ["desk", "cex"]},
        ],
        "tracing": {"hop_success": {"split": 0.9}, "tracers": [{"name": "firm", "kind": "analytics", "latency": "1h",
                                                                "capacity_per_hour": 50}],
                    "sharing": {"latency": "2h", "coverage": ["cex"]}},
        "interventions": [{"kind": "halt", "venue": "thor", "at": "2d", "duration": "1d"},
                          {"kind": "designation", "venue": "tornado", "at": "1d"},
                          {"kind": "seizure", "at": "4d", "jurisdictions": ["US"]}],
    },
]


# --- random files ------------------------------------------------------------------------------


@fuzz_settings("random_text")
@given(text=st.text(max_size=400))
def test_random_text(fuzz_dir, text):
    path = fuzz_dir / "text.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    outcome(path, "random_text")


@fuzz_settings("random_bytes")
@given(raw=st.binary(max_size=400))
def test_random_bytes(fuzz_dir, raw):
    path = fuzz_dir / "bytes.yaml"
    path.write_bytes(raw)
    outcome(path, "random_bytes")


@fuzz_settings("structured_yaml")
@given(seed=SEEDS, flow=st.booleans(), top=st.sampled_from(["map", "map", "map", "list", "scalar"]))
def test_structured_random_yaml(fuzz_dir, seed, flow, top):
    rng = random.Random(seed)
    doc = {random_key(rng): random_value(rng) for _ in range(rng.randint(0, 8))}
    data: Any = doc if top == "map" else list(doc.values()) if top == "list" else random_scalar(rng)
    path = fuzz_dir / "structured.yaml"
    path.write_text(dump(data, flow), encoding="utf-8", errors="surrogatepass")
    outcome(path, "structured_yaml")


# --- mutated scenarios -------------------------------------------------------------------------


@fuzz_settings("mutated_small")
@given(seed=SEEDS, base=st.sampled_from(range(len(SMALL_BASES))), steps=st.integers(1, 4), flow=st.booleans())
def test_mutated_small_scenarios(fuzz_dir, seed, base, steps, flow):
    doc = mutate(SMALL_BASES[base], random.Random(seed), steps)
    path = fuzz_dir / "small.yaml"
    path.write_text(dump(doc, flow), encoding="utf-8", errors="surrogatepass")
    result = outcome(path, "mutated_small")
    if isinstance(result, Scenario) and seed % 16 == 0:  # a sample of the valid ones runs for a day
        simulate_one_day(path, seed)


@fuzz_settings("mutated_bundled")
@given(seed=SEEDS, name=st.sampled_from(sorted(BUNDLED_DATA)), steps=st.integers(1, 3))
def test_mutated_bundled_scenarios(fuzz_dir, seed, name, steps):
    doc = mutate(BUNDLED_DATA[name], random.Random(seed), steps)
    path = fuzz_dir / "bundled.yaml"
    path.write_text(dump(doc), encoding="utf-8", errors="surrogatepass")
    result = outcome(path, "mutated_bundled")
    if isinstance(result, Scenario) and seed % 16 == 0:
        simulate_one_day(path, seed)


@fuzz_settings("text_mutations")
@given(seed=SEEDS, base=st.sampled_from([*(f"small:{i}" for i in range(len(SMALL_BASES))), *sorted(BUNDLED_DATA)]),
       times=st.integers(1, 3))
def test_text_mutations(fuzz_dir, seed, base, times):
    rng = random.Random(seed)
    doc = SMALL_BASES[int(base[6:])] if base.startswith("small:") else BUNDLED_DATA[base]
    text: str | bytes = dump(doc)
    for _ in range(times):
        if isinstance(text, bytes):  # bad bytes went in: the file is not text any more
            break
        text = text_mutation(text, rng)
    path = fuzz_dir / "text_mutated.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    outcome(path, "text_mutations")


EXTENDS_SHAPES = ["valid", "cycle", "self", "missing", "chain", "bad_value", "mutated_parent", "directory", "deep"]


@fuzz_settings("extends")
@given(seed=SEEDS, shape=st.sampled_from(EXTENDS_SHAPES), base=st.sampled_from(range(len(SMALL_BASES))))
def test_extends(fuzz_dir, seed, shape, base):
    rng = random.Random(seed)
    folder = fuzz_dir / "extends"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.yaml"):
        if old.is_file():
            old.unlink()
    parent = copy.deepcopy(SMALL_BASES[base])
    child: dict[str, Any] = {"extends": "parent.yaml", "name": "child"}
    if rng.random() < 0.5:
        child["clock"] = {"horizon": rng.choice(["3d", "-1h", 0, "1e999d", None, "6h"])}
    if shape == "cycle":
        parent["extends"] = "child.yaml"
    elif shape == "self":
        child["extends"] = "child.yaml"
    elif shape == "missing":
        child["extends"] = rng.choice(["nope.yaml", "../nope/x.yaml", "sub/", "", " ", "a\x00b.yaml",
                                       "x" * 5000 + ".yaml"])
    elif shape == "bad_value":
        child["extends"] = nasty_value(rng)
    elif shape == "mutated_parent":
        parent = mutate(parent, rng, rng.randint(1, 3))
    elif shape == "directory":
        (folder / "adir.yaml").mkdir(exist_ok=True)
        child["extends"] = "adir.yaml"
    elif shape in ("chain", "deep"):
        levels = rng.randint(2, 6) if shape == "chain" else 20
        for k in range(levels):
            (folder / f"level{k}.yaml").write_text(dump({"extends": f"level{k + 1}.yaml"} if k + 1 < levels else
                                                        {"extends": "parent.yaml"}), encoding="utf-8")
        child["extends"] = "level0.yaml"
    (folder / "parent.yaml").write_text(dump(parent), encoding="utf-8", errors="surrogatepass")
    path = folder / "child.yaml"
    path.write_text(dump(child), encoding="utf-8", errors="surrogatepass")
    result = outcome(path, "extends")
    if shape in ("cycle", "self", "missing", "directory", "deep"):
        assert isinstance(result, ScenarioError)
        assert any(p.path == "extends" and p.line is not None for p in result.problems), result


OVERRIDE_FIELDS = ["clock.horizon", "playbook.0.wallets", "playbook.0", "playbook.9.wallets", "thefts.0.stolen.0.amount",
                   "venues.otc_broker.haircut", "clock", "name", "name.first", "playbook.x", "playbook.²",
                   "thefts.-1.name", "", ".", "a..b", "playbook.0.delay.mean", "tracing.hop_success.split", "seed",
                   "venues.tornado.denominations.0", "clockk.horizon"]


@fuzz_settings("overrides")
@given(seed=SEEDS, base=st.sampled_from(range(len(SMALL_BASES))), count=st.integers(1, 3))
def test_overrides(fuzz_dir, seed, base, count):
    rng = random.Random(seed)
    path = fuzz_dir / "override.yaml"
    path.write_text(dump(SMALL_BASES[base]), encoding="utf-8")
    fields = [rng.choice(OVERRIDE_FIELDS) if rng.random() < 0.6 else
              ".".join(rng.choice([random_key(rng), str(rng.randint(-1, 12))]) for _ in range(rng.randint(1, 4)))
              for _ in range(count)]
    outcome(path, "overrides", {field: nasty_value(rng) for field in fields})


# --- the command line --------------------------------------------------------------------------

PROBLEM_LINE = re.compile(r"^(?P<file>.+?)(:(?P<line>\d+))?: (?P<rest>.+)$")


@fuzz_settings("cli")
@given(seed=SEEDS, base=st.sampled_from(range(len(SMALL_BASES))), steps=st.integers(1, 3), huge=st.booleans())
def test_cli_refuses_bad_files_with_exit_code_2(fuzz_dir, seed, base, steps, huge):
    doc = mutate(SMALL_BASES[base], random.Random(seed), steps)
    if huge and isinstance(doc.get("playbook"), list):  # make the budget refuse it
        doc["playbook"] = [{"hop": "split", "wallets": 100_000}, {"hop": "split", "wallets": 100_000}, *doc["playbook"]]
    path = fuzz_dir / "cli.yaml"
    path.write_text(dump(doc), encoding="utf-8", errors="surrogatepass")
    expected = outcome(path, "cli")
    runner = CliRunner()
    with time_limit(LOAD_SECONDS, "launderflow validate"):
        result = runner.invoke(main, ["validate", str(path)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == (0 if isinstance(expected, Scenario) else 2), result.output
    if isinstance(expected, ScenarioError):
        printed = [line for line in result.output.split("\n") if line.strip()]
        assert len(printed) >= len(expected.problems)
        assert all(PROBLEM_LINE.match(line) for line in printed), result.output
        out = fuzz_dir / "cli_out"
        with time_limit(LOAD_SECONDS, "launderflow run"):
            ran = runner.invoke(main, ["run", str(path), "--out", str(out)])
        assert ran.exit_code == 2, ran.output
        assert "Traceback" not in ran.output, ran.output
        assert not out.exists(), "a refused scenario must not create its output directory"


def test_all_fuzz_tests_fed_their_documents():
    """Runs last: the fuzz tests above fed at least 10,000 documents to the loader in total."""
    fed = {name: FED.get(name, 0) for name in EXAMPLES}
    assert TOTAL_EXAMPLES >= 10_000 or SCALE < 1, "the fuzz tests are configured for fewer than 10,000 documents"
    print(f"documents fed to the loader: {sum(fed.values())} {fed}")  # shown with pytest -s
    if all(fed.values()) and SCALE >= 1:  # every fuzz test ran in this session (not a -k subset)
        assert sum(fed.values()) >= 10_000, fed


# --- specific hazards the fuzzer found (kept as fixed examples) -------------------------------


@pytest.mark.parametrize("content,line", [
    ("name: x\nfoo: \x00\n", 2),  # a control character: PyYAML's reader error has no mark
    ("name: x\nfoo: bar\nbaz: \x07\n", 3),
])
def test_control_characters_report_their_line(tmp_path, content, line):
    path = tmp_path / "ctl.yaml"
    path.write_text(content, encoding="utf-8")
    result = outcome(path, "examples")
    assert isinstance(result, ScenarioError)
    assert result.problems[0].line == line and "unacceptable character" in result.problems[0].message


def test_too_deep_nesting_reports_a_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: x\nclock:\n  horizon: " + "[" * 2000 + "]" * 2000 + "\n", encoding="utf-8")
    result = outcome(path, "examples")
    assert isinstance(result, ScenarioError) and result.problems[0].line == 3, result


def test_alias_bomb_is_refused_before_expanding_it(tmp_path, monkeypatch):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + k)}: &{chr(98 + k)} [" + ", ".join([f"*{chr(97 + k)}"] * 10) + "]\n" for k in range(8))
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb, encoding="utf-8")  # 10^9 values once expanded
    visited = [0]
    build = loader._build

    def counting_build(*args, **kwargs):
        visited[0] += 1
        return build(*args, **kwargs)

    monkeypatch.setattr(loader, "_build", counting_build)  # (the walk recurses through the module's name)
    result = outcome(path, "examples")
    assert isinstance(result, ScenarioError) and "YAML aliases" in result.problems[0].message
    # the walk stops at the limit: the values past it are not visited (10^9 would be), and nothing
    # is validated (the refusal is its only problem)
    assert loader.MAX_VALUES < visited[0] <= loader.MAX_VALUES + 100
    assert len(result.problems) == 1


@pytest.mark.parametrize("parent", ["a\x00b.yaml", "x" * 5000 + ".yaml"])
def test_extends_with_an_impossible_file_name(tmp_path, parent):
    path = tmp_path / "child.yaml"
    path.write_text(dump({"extends": parent, "name": "c"}), encoding="utf-8")
    result = outcome(path, "examples")
    assert isinstance(result, ScenarioError)
    assert result.problems[0].path == "extends" and result.problems[0].line == 1


def test_unknown_key_with_brackets_keeps_its_path_and_line(tmp_path):
    text = BASE_YAML + "odd[key]: 1\n"
    path = tmp_path / "bracket.yaml"
    path.write_text(text, encoding="utf-8")
    result = outcome(path, "examples")
    assert isinstance(result, ScenarioError)
    assert [(p.path, p.line) for p in result.problems] == [("odd[key]", line_of(text, "odd[key]"))]


@pytest.mark.parametrize("field", ["playbook.x", "playbook.²"])
def test_override_of_a_list_by_name(tmp_path, field):
    path = tmp_path / "s.yaml"
    path.write_text(BASE_YAML, encoding="utf-8")
    result = outcome(path, "examples", {field: 1})
    assert isinstance(result, ScenarioError) and "no such field" in result.problems[0].message


# --- known bugs elsewhere (strict xfail: they start failing once fixed, to remove the workaround) ---


def test_huge_integer_duration_is_a_problem_not_a_crash(tmp_path):
    """Found by the fuzzer: float() of an integer beyond float range raised OverflowError (units.parse_duration)."""
    path = tmp_path / "huge_duration.yaml"
    path.write_text(BASE_YAML.replace("  horizon: 10d", "  horizon: 1" + "0" * 400), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert [p.path for p in info.value.problems] == ["clock.horizon"]


@pytest.mark.parametrize("field", ["amount: 100", "price_usd: 1000", "fee_usd: 5"])
def test_infinite_numbers_are_refused(tmp_path, field):
    """Found by the fuzzer: .inf amounts and prices were accepted and the run failed (JSON) or gave NaN."""
    key = field.split(":")[0]
    path = tmp_path / "inf.yaml"
    path.write_text(BASE_YAML.replace(field, f"{key}: .inf"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems[0].path.endswith(key)


def test_zero_retry_does_not_hang(tmp_path):
    """Found by the fuzzer: retry 0 with every substitute refusing looped forever at one instant."""
    path = tmp_path / "retry0.yaml"
    path.write_text(dump({
        "name": "r0", "clock": {"horizon": "1d"}, "chains": {"eth": {"fee_usd": 1}},
        "assets": {"ETH": {"chain": "eth", "price_usd": 1000}, "USDT": {"chain": "eth", "price_usd": 1}},
        "venues": {"tornado": {"kind": "pool_mixer", "asset": "ETH"}},
        "thefts": [{"name": "hack", "victim": "v", "stolen": [{"asset": "USDT", "amount": 1000}]}],
        "playbook": [{"hop": "mix", "venue": "tornado", "retry": 0}],
    }), encoding="utf-8")
    scenario = load_scenario(path)
    with time_limit(10.0, "simulating a zero retry"):
        rep = simulate(scenario, np.random.default_rng(0), keep_ledger=False)
    assert rep.refusals.sum() > 0


# --- times beyond the horizon (and beyond int64 ticks) never happen within the run ------------------

BIG_WAIT = BASE_YAML.replace("  - hop: cash_out\n", "  - hop: wait\n    delay: 1e30h\n  - hop: cash_out\n")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_theft_after_the_horizon_never_happens(tmp_path):
    path = tmp_path / "late_theft.yaml"
    path.write_text(BASE_YAML.replace("    discovered_after: 6h\n", "    discovered_after: 6h\n    time: 1e30h\n"),
                    encoding="utf-8")
    rep = simulate(load_scenario(path), np.random.default_rng(0), keep_ledger=False)
    assert rep.stolen_usd == 0  # the theft never happens within the horizon


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_wait_beyond_the_horizon_never_ends_in_the_run(tmp_path):
    path = tmp_path / "big_wait.yaml"
    path.write_text(BIG_WAIT, encoding="utf-8")
    rep = simulate(load_scenario(path), np.random.default_rng(0), keep_ledger=True)
    assert not (rep.ledger["hop"] == HOP["cash_out"]).any(), "lots waiting 1e30 hours were cashed out within 10 days"


# --- budget refusal ----------------------------------------------------------------------------

NESTED_SPLITS = """\
name: huge
clock: {horizon: 10d}
chains: {eth: {fee_usd: 1}}
assets: {ETH: {chain: eth, price_usd: 1000}}
venues:
  desk: {kind: otc, jurisdiction: offshore}
thefts:
  - name: hack
    victim: v
    stolen: [{asset: ETH, amount: 100}]
playbook:
  - hop: split
    wallets: 1000000
  - hop: branch
    branches:
      - share: 1
        playbook:
          - hop: split
            wallets: 1000000      # the second split: 10^12 wallets
          - hop: branch
            branches:
              - share: 1
                playbook:
                  - hop: split
                    wallets: 1000000
  - {hop: cash_out, venue: desk}
"""


def budget_steps(path: Path) -> int:
    """How many places of the scenario the budget walk visits (its work: one per theft and hop)."""
    return len(budget.estimate(Scenario.model_validate(load_data(path)[0])).steps)


def test_budget_refuses_ten_to_the_eighteen_wallets_from_the_parameters(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(NESTED_SPLITS, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    # the walk is linear in the hops, not in the wallets: the theft, the six hops, the timeline
    assert budget_steps(path) == 1 + 6 + 1
    [problem] = info.value.problems
    # the running total passes 50 million at the second split
    assert problem.line == line_of(NESTED_SPLITS, "the second split")
    assert problem.path == "playbook.1.branches.0.playbook.0.wallets"
    assert problem.message.startswith("would create ~1.0e+18 wallets per replication (limit 50,000,000)")
    assert "transfers per replication" in problem.message and "GiB of memory" in problem.message
    assert str(problem).startswith(f"{path}:{problem.line}: playbook.1.branches.0.playbook.0.wallets: would create ~")


def test_budget_refuses_a_billion_wallets_in_validate_and_run(tmp_path):
    text = NESTED_SPLITS.replace("wallets: 1000000      # the second split", "wallets: 1000      # the second split")
    text = text.replace("                    wallets: 1000000", "                    wallets: 1")
    path = tmp_path / "billion.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert budget_steps(path) == 1 + 6 + 1
    [problem] = info.value.problems
    assert problem.line == line_of(text, "the second split")
    assert re.match(r"would create ~3,00\d,\d{3},\d{3} wallets per replication \(limit 50,000,000\)", problem.message)
    for args in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert f"{path}:{problem.line}: playbook.1.branches.0.playbook.0.wallets: would create ~" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_budget_points_at_theft_repeats_and_pool_mixers(tmp_path):
    data = copy.deepcopy(SMALL_BASES[3])
    data["thefts"][1]["repeat"]["count"] = 1_000_000
    data["thefts"][1]["playbook"] = [{"hop": "split", "wallets": 60}, {"hop": "cash_out", "venue": "cex"}]
    path = tmp_path / "repeat.yaml"
    text = dump(data)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems[0].path == "thefts.1.playbook.0.wallets"
    data = copy.deepcopy(SMALL_BASES[3])
    data["venues"]["tornado"]["denominations"] = [1e-9, 1.0]  # ~3e11 notes of a billionth of an ETH
    path.write_text(dump(data), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    [problem] = info.value.problems
    assert problem.path == "playbook.2.venue" and "pool mixer takes whole notes" in problem.message


@pytest.mark.parametrize("clock,tornado,where", [
    ({"horizon": "365d", "resolution": "0.1s", "timeline_step": "1d"}, {}, "clock.resolution"),  # 3.2e8 ticks
    ({"horizon": "73000d", "resolution": "1h", "timeline_step": "1d"}, {"background_step": "1min"},  # 1.05e8 steps
     "venues.tornado.background_step"),
])
def test_budget_refuses_too_many_ticks_and_background_steps(tmp_path, clock, tornado, where):
    data = copy.deepcopy(SMALL_BASES[3])
    data["clock"] = clock
    data["venues"]["tornado"].update(tornado)
    path = tmp_path / "ticks.yaml"
    path.write_text(dump(data), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert where in [p.path for p in info.value.problems], info.value


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_scenarios_pass_the_budget(path):
    scenario = load_scenario(path)
    est = budget.estimate(scenario)
    assert est.lots <= budget.MAX_LOTS and est.transfers <= budget.MAX_TRANSFERS
    assert est.memory_bytes <= budget.MAX_MEMORY_BYTES and est.ticks <= budget.MAX_TICKS


def test_bundled_scenarios_validate_on_the_command_line():
    result = CliRunner().invoke(main, ["validate", *map(str, BUNDLED)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["venue_fallbacks.yaml", "all_venues.yaml"])
def test_budget_is_an_upper_bound(name):
    """The estimate is never below what a run actually creates."""
    scenario = load_scenario(REPO / "tests" / "scenarios" / name)
    est = budget.estimate(scenario)
    for seed in range(1):
        rep = simulate(scenario, np.random.default_rng(seed))
        honest = int((rep.ledger["lot"] < 0).sum())
        enforcement = int(np.isin(rep.ledger["hop"], [HOP["freeze"], HOP["seizure"]]).sum())  # not in the bound
        assert rep.lots <= est.lots
        assert rep.transfers - honest - enforcement <= est.transfers
        assert honest <= est.honest_rows


def test_a_scalar_pyyaml_cannot_construct_is_a_clean_error(tmp_path):
    """Found by the fuzzer: a timestamp-tagged scalar PyYAML's constructor trips over (AttributeError)."""
    path = tmp_path / "ts.yaml"
    path.write_text("name: x\nseed: !!timestamp 'not a time'\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    [seed] = [p for p in info.value.problems if p.path == "seed"]  # (reported with the missing fields)
    assert seed.line == 2 and "unreadable value" in seed.message
