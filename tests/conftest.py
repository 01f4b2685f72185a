"""Shared helpers for the foundation tests: a tiny valid scenario, YAML writers, a simulate shortcut."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from launderflow.model.simulate import Replication, simulate
from launderflow.scenario.schema import HOP_KINDS, Scenario

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "scenarios" / "baseline.yaml"
HOP = {name: i for i, name in enumerate(HOP_KINDS)}

# The valid base scenario as YAML text, so tests can compute exact line numbers from it.
BASE_YAML = """\
name: tiny
seed: 1
clock:
  horizon: 10d
  resolution: 1min
  timeline_step: 1h
chains:
  eth:
    confirmation: 3min
    fee_usd: 5
assets:
  ETH:
    chain: eth
    price_usd: 1000
venues:
  otc_broker:
    kind: otc
    jurisdiction: offshore
    delay: 2d
    haircut: 0.05
thefts:
  - name: hack
    victim: Some bridge
    stolen:
      - asset: ETH
        amount: 100
    discovered_after: 6h
playbook:
  - hop: split
    wallets: 3
  - hop: cash_out
    venue: otc_broker
"""


def base_dict() -> dict[str, Any]:
    """A fresh copy of the base scenario as plain data."""
    return copy.deepcopy(yaml.safe_load(BASE_YAML))


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the ``occurrence``-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s) in the text")


def write(tmp_path: Path, name: str, content: str | bytes | dict) -> Path:
    """Write a scenario file (text, raw bytes, or a dict dumped as YAML) and return its path."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(content, encoding="utf-8")
    return path


def tiny(playbook: list[dict], *, stolen: list[dict] | None = None, fee: float = 0.0, confirmation: str | float = 0.0,
         resolution: str | float = "1min", horizon: str | float = "60d", discovered_after: str | float = 0.0,
         hop_success: dict[str, float] | None = None, venue: dict | None = None, price: float = 1000.0,
         extra_thefts: list[dict] | None = None) -> Scenario:
    """A one-chain, one-asset scenario with the given playbook (knobs for the hop tests)."""
    data: dict[str, Any] = {
        "name": "hoptest",
        "clock": {"horizon": horizon, "resolution": resolution, "timeline_step": "1h"},
        "chains": {"eth": {"confirmation": confirmation, "fee_usd": fee}},
        "assets": {"ETH": {"chain": "eth", "price_usd": price}, "USDC": {"chain": "eth", "price_usd": 1.0}},
        "venues": {"otc_broker": venue or {"kind": "otc", "jurisdiction": "offshore", "delay": "2d", "haircut": 0.05}},
        "thefts": [{"name": "hack", "victim": "v", "stolen": stolen or [{"asset": "ETH", "amount": 100}],
                    "discovered_after": discovered_after}, *(extra_thefts or [])],
        "playbook": playbook,
        "tracing": {"hop_success": hop_success or {}},
    }
    return Scenario.model_validate(data)


PRICE = {"ETH": 1000.0, "USDC": 1.0, "BTC": 40_000.0}  # the three assets of two_chain_dict, in order


def two_chain_dict(name: str, playbook: list[dict], venues: dict[str, dict] | None = None, *,
                   stolen: list[dict] | None = None, horizon: str | float = "10d",
                   discovered_after: str | float = 0.0, fees: tuple[float, float] = (0.0, 0.0),
                   thefts: list[dict] | None = None, **sections: Any) -> dict[str, Any]:
    """Two chains (ethereum, bitcoin), three assets (ETH $1000, USDC $1 freezable, BTC $40000), one
    theft discovered at once by default; ``sections`` (tracing, interventions, ...) go in as given."""
    return {
        "name": name,
        "clock": {"horizon": horizon, "resolution": "1min", "timeline_step": "1h"},
        "chains": {"ethereum": {"confirmation": 0, "fee_usd": fees[0]},
                   "bitcoin": {"confirmation": 0, "fee_usd": fees[1]}},
        "assets": {"ETH": {"chain": "ethereum", "price_usd": PRICE["ETH"]},
                   "USDC": {"chain": "ethereum", "price_usd": PRICE["USDC"], "freezable": True},
                   "BTC": {"chain": "bitcoin", "price_usd": PRICE["BTC"]}},
        "venues": venues or {},
        "thefts": thefts or [{"name": "hack", "victim": "test", "discovered_after": discovered_after,
                              "stolen": stolen or [{"asset": "ETH", "amount": 100}]}],
        "playbook": playbook,
        **sections,
    }


def run(scenario: Scenario, seed: int = 0) -> Replication:
    return simulate(scenario, np.random.default_rng(seed))


def rows(rep: Replication, hop: str) -> np.ndarray:
    """Boolean mask of ledger rows of one hop kind."""
    return rep.ledger["hop"] == HOP[hop]


LOCK_HOLDER = """\
import sys
from launderflow.runs.lock import acquire
for d in sys.argv[1:]:
    acquire(d, "launderflow run other.yaml --out " + d)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder():
    """Start another process that holds the writer lock of the given directories until the test ends."""
    import subprocess
    import sys

    procs = []

    def start(*dirs: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, *map(str, dirs)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
