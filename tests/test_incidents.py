"""The incident scenarios built from the fact sheet (issue 15 item 6): harmony_2022 and dmm_2024.

What is checked is structure, not the backtest's verdict (that is in docs/explanation/validation.md, pass or fail):

* both scenarios and their targets files load, validate with no problem and no plausibility
  warning, and the targets' calibration parameters exist in the scenario;
* the stolen value is the fact sheet's amount, and the parties that froze in reality are there
  (Binance and Huobi for Harmony, Tether for DMM), with nobody else freezing;
* every target cites an attribution the fact sheet gives, says whether it is an input or a check,
  and the outcome facts (freezes, what was left) are checks, never inputs;
* every number in the scenario files carries a comment (its source, or ASSUMPTION);
* two replications of each run in full: value is conserved, the dormancy and route timing the
  scenario was built from hold in every run, and only the parties that froze in reality freeze.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from launderflow.analysis.targets import describe_target, load_targets
from launderflow.cli import main
from launderflow.metrics import METRICS, final_states
from launderflow.model.simulate import simulate
from launderflow.runs.replications import replication_rng
from launderflow.scenario.loader import load_scenario
from launderflow.scenario.plausibility import warnings
from launderflow.scenario.schema import ExchangeVenue, IssuerVenue, Scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
INCIDENTS = ("harmony_2022", "dmm_2024")
FACT_SHEET = REPO.parent / "shared" / "data" / "incidents.md"  # outside the repository; read only if present
DAY = 24.0

# Attributions as the fact sheet gives them: every target's source must name at least one.
ATTRIBUTIONS = ("Cointelegraph", "tayvano", "ZachXBT", "CZ", "satoshihodler.com", "Elliptic", "Chainalysis", "FBI",
                "TRM Labs", "AMLBot")
# Metrics that state an outcome of the response (freezes, seizures, what is left): never an input.
OUTCOME_METRICS = ("venue_frozen_usd", "venue_seized_usd", "action_seized_usd", "seized_usd", "frozen_usd",
                   "asset_share_at")


def paths(name: str) -> tuple[Path, Path]:
    return SCENARIOS / f"{name}.yaml", SCENARIOS / "targets" / f"{name}.yaml"


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple[Scenario, object]]:
    out = {}
    for name in INCIDENTS:
        scenario_path, targets_path = paths(name)
        spec, scenario = load_targets(targets_path, scenario_path, need_parameters=True)  # parameter paths checked too
        out[name] = (scenario, spec)
    return out


@pytest.fixture(scope="module")
def runs(loaded) -> dict[str, list]:
    """Two full replications of each incident (a few seconds each)."""
    return {name: [simulate(scenario, replication_rng(scenario.seed, i), keep_ledger=False) for i in range(2)]
            for name, (scenario, _) in loaded.items()}


def stolen_usd(scenario: Scenario) -> float:
    return sum(s.amount * scenario.assets[s.asset].price_usd for theft in scenario.thefts for s in theft.stolen)


# --- files --------------------------------------------------------------------------------------


def test_both_validate_without_problems_or_warnings():
    files = [str(paths(name)[0]) for name in INCIDENTS]
    result = CliRunner().invoke(main, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output.lower(), result.output
    for name in INCIDENTS:
        assert warnings(load_scenario(paths(name)[0])) == []


def test_the_stolen_value_is_the_fact_sheets(loaded):
    harmony, _ = loaded["harmony_2022"]
    assert stolen_usd(harmony) == pytest.approx(100e6, rel=0.01)  # ≈ $100 M (Cointelegraph via finplay.in)
    # ~85,700 ETH into Tornado was the whole theft: the ETH price the scenario derives from it
    assert 85_700 * harmony.assets["ETH"].price_usd == pytest.approx(100e6, rel=0.01)
    dmm, _ = loaded["dmm_2024"]
    (btc,) = dmm.thefts[0].stolen
    assert (btc.asset, btc.amount) == ("BTC", 4502.9)  # 4,502.9 BTC
    assert stolen_usd(dmm) == pytest.approx(305e6, rel=0.005)  # ≈ $305 M


def test_the_parties_that_froze_are_there_and_no_one_else_freezes(loaded):
    harmony, _ = loaded["harmony_2022"]
    freezing = {name for name, v in harmony.venues.items()
                if (isinstance(v, ExchangeVenue) and v.freezes) or isinstance(v, IssuerVenue)}
    assert freezing == {"binance", "huobi"}  # Binance and Huobi froze (CZ; satoshihodler.com)
    exchanges = [name for name, v in harmony.venues.items() if isinstance(v, ExchangeVenue)]
    assert len(exchanges) == 3  # three exchanges (ZachXBT)
    dmm, _ = loaded["dmm_2024"]
    issuers = {name: v for name, v in dmm.venues.items() if isinstance(v, IssuerVenue)}
    assert list(issuers) == ["tether"] and issuers["tether"].asset == "USDT"  # Tether stopped ≈ $29 M
    assert dmm.assets["USDT"].chain == "tron" and dmm.assets["USDT"].freezable  # USDT on Tron
    assert not any(isinstance(v, ExchangeVenue) and v.freezes for v in dmm.venues.values())


def test_every_target_cites_the_fact_sheet_and_has_a_role(loaded):
    sheet = FACT_SHEET.read_text(encoding="utf-8") if FACT_SHEET.is_file() else None
    if sheet is not None:
        missing = [a for a in ATTRIBUTIONS if a not in sheet]
        assert not missing, f"not attributions of {FACT_SHEET}: {missing}"
    for name, (_, spec) in loaded.items():
        for target in spec.targets:
            assert any(a in target.source for a in ATTRIBUTIONS), f"{name}: {target.name} cites no attribution"
            assert target.role in ("input", "check")
            if target.metric in OUTCOME_METRICS or getattr(target, "state", None) in ("frozen", "seized",
                                                                                      "reported_frozen"):
                assert target.role == "check", f"{name}: {target.name} ({describe_target(target)}) is an outcome"
        roles = {t.role for t in spec.targets}
        assert roles == {"input", "check"}, f"{name}: needs both in-sample and out-of-sample facts"


def _code_lines(path: Path):
    """(line number, code without comment, has a comment) for each line outside the text blocks."""
    in_text = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if re.match(r"^(description|sources):", line):
            in_text = True
            continue
        if in_text and (line.startswith(" ") or not line.strip()):
            continue
        in_text = False
        unquoted = re.sub(r'"[^"]*"|\'[^\']*\'', '""', line)
        code, hash_, _ = unquoted.partition("#")
        yield number, code, bool(hash_)


def bare_numbers(path: Path) -> list[str]:
    """``file:line: code`` of each line of a scenario file with a number but no comment."""
    return [f"{path.name}:{n}: {code.strip()}" for n, code, commented in _code_lines(path)
            if re.search(r"(?<![\w.])\d", code) and not commented]


@pytest.mark.parametrize("name", INCIDENTS)
def test_every_number_in_the_scenario_has_a_comment(name):
    bare = bare_numbers(paths(name)[0])
    assert not bare, "numbers without a source or ASSUMPTION comment:\n" + "\n".join(bare)


# --- runs -----------------------------------------------------------------------------------------


def test_value_is_conserved(loaded, runs):
    for name, reps in runs.items():
        scenario, _ = loaded[name]
        for rep in reps:
            assert rep.stolen_usd == pytest.approx(stolen_usd(scenario), rel=1e-9)
            states = final_states(rep)
            locations = sum(states[s] for s in ("launderer", "venue", "frozen", "seized", "cashed_out", "fees"))
            assert locations == pytest.approx(rep.stolen_usd, rel=1e-9)
            assert states["traced"] + states["dark"] == pytest.approx(rep.stolen_usd, rel=1e-9)
            reported = states["reported_traceable"] + states["reported_dark"] + states["reported_frozen"]
            assert reported == pytest.approx(rep.stolen_usd, rel=1e-9)


def test_harmony_follows_its_timeline(loaded, runs):
    scenario, _ = loaded["harmony_2022"]
    inflow = METRICS["venue_inflow_share_at"]
    for rep in runs["harmony_2022"]:
        log = rep.inflows
        tornado, railgun = (list(scenario.venues).index(v) for v in ("tornado", "railgun"))
        t_tornado = log["time"][log["venue"] == tornado]
        t_railgun = log["time"][log["venue"] == railgun]
        # from day 3 over six days, after the swap to ETH at the shared Ethereum pace (+ confirmations)
        swap_days = stolen_usd(scenario) / scenario.venues["uniswap"].capacity_usd_per_day
        assert t_tornado.min() >= 3 * DAY and t_tornado.max() <= (9.5 + swap_days) * DAY
        assert t_railgun.min() >= 203 * DAY and t_railgun.max() <= 205 * DAY  # dormant to 13-14 Jan 2023
        assert inflow(venue="railgun", at=205 * DAY).value(rep, scenario) == pytest.approx(41_000 / 85_700, abs=0.02)
        assert METRICS["wallets_at"](asset="BTC", at=scenario.clock.horizon).value(rep, scenario) == 11
        frozen = dict(zip(scenario.venues, rep.venue_frozen))
        assert frozen["third_exchange"] == 0.0 and frozen["binance"] + frozen["huobi"] == pytest.approx(
            final_states(rep)["frozen"], rel=1e-9)  # only the exchanges that froze in reality freeze
        assert METRICS["share_at"](state="frozen", at=202 * DAY).value(rep, scenario) == 0.0  # nothing to freeze while dormant


def test_dmm_takes_its_route_and_only_tether_freezes(loaded, runs):
    scenario, _ = loaded["dmm_2024"]
    for rep in runs["dmm_2024"]:
        inflow = dict(zip(scenario.venues, rep.venue_inflow / rep.stolen_usd))
        assert inflow["yomix"] == pytest.approx(1.0, abs=0.01)  # mixers first
        assert inflow["thorchain"] + inflow["avalanche_bridge"] == pytest.approx(inflow["yomix"], abs=0.04)
        # just in time: USDT is bought only as fast as the marketplace can take it (within its queue
        # plus the launderer's lead time), so what was converted is bounded by the desk's capacity
        days = scenario.clock.horizon / DAY
        pool = scenario.capacity_pools["dprk_brokers"]
        per_day = pool.usd_per_day * pool.share  # DMM's share of DPRK's network (its part of 2024's thefts)
        ahead = (scenario.venues["guarantee_market"].queue + scenario.launderer.exposure.lead_time) / DAY
        assert 0.3 < inflow["tron_swap"] and inflow["tron_swap"] * rep.stolen_usd <= (days + ahead) * per_day * 1.05 + 1.5 * 4502.9 * 67734 / 100
        assert 0 < inflow["guarantee_market"] * rep.stolen_usd <= (days + 1) * per_day * (1 + 1e-9) + per_day * 5
        frozen = dict(zip(scenario.venues, rep.venue_frozen))
        assert frozen["tether"] == pytest.approx(final_states(rep)["frozen"], rel=1e-9)
        assert 0.0 < frozen["tether"] < rep.stolen_usd
        # cash-out at DPRK's documented OTC pace: at most ~$1.7 M a day, so not half of it in the first month
        assert METRICS["share_at"](state="cashed_out", at=30 * DAY).value(rep, scenario) < 30 * per_day / rep.stolen_usd
