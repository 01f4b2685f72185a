"""Plausibility warnings: an off-ramp absorbing tens of times DPRK's documented capacity is said, not silent."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from conftest import two_chain_dict
from launderflow.cli import main


def write(tmp_path, venues, pools=None):
    data = two_chain_dict("desks", [{"hop": "cash_out", "venue": next(iter(venues))}], venues, interventions=[])
    if pools:
        data["capacity_pools"] = pools
    path = tmp_path / "desks.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def validate(path):
    result = CliRunner().invoke(main, ["validate", str(path)])
    return result.exit_code, result.stderr


def test_an_unlimited_or_huge_desk_is_warned_about_with_its_line(tmp_path):
    code, err = validate(write(tmp_path, {"desk": {"kind": "otc", "jurisdiction": "offshore"}}))
    assert code == 0 and "venues.desk: warning: unlimited off-ramp capacity" in err and "$51 M a month" in err
    code, err = validate(write(tmp_path, {"desk": {"kind": "otc", "jurisdiction": "RU", "capacity_usd_per_day": 6e7}}))
    line = next(i for i, text in enumerate((tmp_path / "desks.yaml").read_text().splitlines(), 1)
                if "capacity_usd_per_day" in text)
    assert code == 0 and f"desks.yaml:{line}: venues.desk.capacity_usd_per_day: warning: converts $1,800 M a month, 35x" in err


def test_a_plausible_capacity_or_a_note_is_not_warned_about(tmp_path):
    assert validate(write(tmp_path, {"desk": {"kind": "otc", "jurisdiction": "RU", "capacity_usd_per_day": 2e6}}))[1] == ""
    noted = {"kind": "otc", "jurisdiction": "RU", "capacity_usd_per_day": 6e7, "capacity_note": "a bank, not a broker"}
    assert validate(write(tmp_path, {"desk": noted}))[1] == ""
    pooled = {"desk": {"kind": "otc", "jurisdiction": "RU", "capacity_pool": "brokers"}}
    assert validate(write(tmp_path, pooled, {"brokers": {"usd_per_day": 1.7e6}}))[1] == ""
    code, err = validate(write(tmp_path, pooled, {"brokers": {"usd_per_day": 1e8}}))
    assert code == 0 and "capacity_pools.brokers.usd_per_day: warning: converts $3,000 M a month" in err


def test_an_unknown_capacity_pool_is_an_error(tmp_path):
    code, err = validate(write(tmp_path, {"desk": {"kind": "otc", "jurisdiction": "RU", "capacity_pool": "nope"}}))
    assert code == 2 and "venues.desk.capacity_pool: unknown capacity pool 'nope' (none defined)" in err
