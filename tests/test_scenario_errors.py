"""Scenario errors: every problem is reported as file:line: field.path: message, with the exact line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import BASE_YAML, BASELINE, base_dict, line_of, write
from launderflow.cli import main
from launderflow.scenario.loader import Problem, ScenarioError, extends_outside_allowed, load_scenario

PROBLEM_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?:(?P<path>[A-Za-z0-9_.\-]+): )?(?P<message>.+)$")


def problems_of(path: Path, overrides: dict | None = None) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    problems = info.value.problems
    assert problems, "a ScenarioError must list at least one problem"
    for p in problems:
        assert isinstance(p.file, str) and isinstance(p.path, str) and isinstance(p.message, str) and p.message
        assert p.line is None or (isinstance(p.line, int) and p.line >= 1)
    return problems


def only_problem(path: Path, overrides: dict | None = None) -> Problem:
    problems = problems_of(path, overrides)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def edit(old: str, new: str, text: str = BASE_YAML) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the base scenario"
    return text.replace(old, new)


def validate(*paths: Path):
    result = CliRunner().invoke(main, ["validate", *map(str, paths)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


# --- the valid base ----------------------------------------------------------------------------


def test_base_scenario_is_valid(tmp_path):
    scenario = load_scenario(write(tmp_path, "ok.yaml", BASE_YAML))
    assert scenario.name == "tiny"
    assert scenario.clock.horizon == 240.0
    assert scenario.clock.resolution == pytest.approx(1 / 60)
    assert scenario.chains["eth"].confirmation == pytest.approx(0.05)
    assert scenario.venues["otc_broker"].delay.value == 48.0  # a bare duration is a fixed delay
    assert scenario.stolen_usd == 100_000.0
    result = validate(tmp_path / "ok.yaml")
    assert result.exit_code == 0
    assert "ok" in result.output


def test_base_dict_is_the_base_yaml(tmp_path):
    data = base_dict()
    data["playbook"][0]["wallets"] = 9
    scenario = load_scenario(write(tmp_path, "dict.yaml", data))
    assert scenario.playbook[0].wallets == 9
    assert scenario.model_dump(exclude={"playbook"}) == load_scenario(write(tmp_path, "text.yaml", BASE_YAML)).model_dump(
        exclude={"playbook"})


# --- malformed files ---------------------------------------------------------------------------


@pytest.mark.parametrize("old,new,needle", [
    ("  resolution: 1min\n", "  resolution: 1min: 2\n", "1min: 2"),
    ("name: tiny\n", "name: tiny\n  bad indent: 1\n", "bad indent"),
    ("    victim: Some bridge\n", "    victim: Some bridge\n   - stray\n", "- stray"),
])
def test_malformed_yaml_reports_its_line(tmp_path, old, new, needle):
    text = edit(old, new)
    path = write(tmp_path, "bad.yaml", text)
    p = only_problem(path)
    assert p.file == str(path)
    assert p.line == line_of(text, needle)
    assert p.message.startswith("malformed YAML")


def test_non_utf8_bytes_report_their_line(tmp_path):
    raw = BASE_YAML.encode().replace(b"victim: Some bridge", b"victim: Some \xff\xfe bridge")
    path = write(tmp_path, "latin.yaml", raw)
    p = only_problem(path)
    assert p.line == line_of(BASE_YAML, "victim:")
    assert "UTF-8" in p.message and "0xff" in p.message


@pytest.mark.parametrize("content", ["", "\n\n", "# nothing but a comment\n"])
def test_empty_file(tmp_path, content):
    p = only_problem(write(tmp_path, "empty.yaml", content))
    assert p.line == 1
    assert "empty" in p.message


def test_empty_document_with_a_start_marker(tmp_path):
    p = only_problem(write(tmp_path, "empty.yaml", "---\n"))
    assert p.line in (1, 2)
    assert "empty" in p.message or "mapping" in p.message


@pytest.mark.parametrize("content", ["- name: a\n- name: b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path, content):
    p = only_problem(write(tmp_path, "list.yaml", content))
    assert p.line == 1
    assert "mapping" in p.message


def test_missing_file(tmp_path):
    p = only_problem(tmp_path / "nope.yaml")
    assert "not found" in p.message
    result = validate(tmp_path / "nope.yaml")
    assert result.exit_code == 2


# --- field problems ------------------------------------------------------------------------------


def test_unknown_key_lists_the_allowed_keys(tmp_path):
    text = edit("  horizon: 10d\n", "  horizon: 10d\n  horizn: 12d\n")
    p = only_problem(write(tmp_path, "typo.yaml", text))
    assert p.path == "clock.horizn"
    assert p.line == line_of(text, "horizn")
    assert p.message.startswith("unknown field")
    assert "(allowed: horizon, resolution, timeline_step, start)" in p.message


def test_unknown_key_in_a_hop_lists_that_hops_keys(tmp_path):
    text = edit("    wallets: 3\n", "    wallets: 3\n    walets: 4\n")
    p = only_problem(write(tmp_path, "typo.yaml", text))
    assert p.path == "playbook.0.walets"
    assert p.line == line_of(text, "walets")
    allowed = re.search(r"\(allowed: (.*)\)", p.message).group(1).split(", ")
    assert {"hop", "wallets", "concentration", "delay"} == set(allowed)


def test_unknown_top_level_key(tmp_path):
    text = BASE_YAML + "playbok: []\n"
    p = only_problem(write(tmp_path, "typo.yaml", text))
    assert p.path == "playbok"
    assert p.line == line_of(text, "playbok")
    assert "playbook" in p.message and "clock" in p.message and "thefts" in p.message


@pytest.mark.parametrize("old,new,path,got", [
    ("    fee_usd: 5\n", "    fee_usd: five\n", "chains.eth.fee_usd", "'five'"),
    ("    wallets: 3\n", "    wallets: many\n", "playbook.0.wallets", "'many'"),
    ("    wallets: 3\n", "    wallets: 2.5\n", "playbook.0.wallets", "2.5"),
    ("    price_usd: 1000\n", "    price_usd: [1, 2]\n", "assets.ETH.price_usd", "list"),
])
def test_wrong_type(tmp_path, old, new, path, got):
    text = edit(old, new)
    p = only_problem(write(tmp_path, "type.yaml", text))
    assert p.path == path
    assert p.line == line_of(text, new.strip())
    assert f"(got {got})" in p.message


def test_wrong_container_type(tmp_path):
    text = edit("    stolen:\n      - asset: ETH\n        amount: 100\n", "    stolen: 100\n")
    p = only_problem(write(tmp_path, "type.yaml", text))
    assert p.path == "thefts.0.stolen"
    assert p.line == line_of(text, "stolen: 100")
    assert "list" in p.message


def test_negative_amount(tmp_path):
    text = edit("        amount: 100\n", "        amount: -5\n")
    p = only_problem(write(tmp_path, "neg.yaml", text))
    assert p.path == "thefts.0.stolen.0.amount"
    assert p.line == line_of(text, "amount: -5")
    assert p.message == "input should be greater than 0 (got -5)"


def test_missing_required_field(tmp_path):
    text = edit("    victim: Some bridge\n", "")
    p = only_problem(write(tmp_path, "missing.yaml", text))
    assert p.path == "thefts.0.victim"
    assert p.line == line_of(text, "- name: hack")  # the theft that lacks it
    assert "required" in p.message


def test_hop_naming_an_unknown_venue_names_the_defined_venues(tmp_path):
    text = edit("    venue: otc_broker\n", "    venue: otc_brokr\n")
    text = edit("    haircut: 0.05\n", "    haircut: 0.05\n  desk2:\n    kind: otc\n    jurisdiction: US\n", text)
    p = only_problem(write(tmp_path, "venue.yaml", text))
    assert p.path == "playbook.1.venue"
    assert p.line == line_of(text, "venue: otc_brokr")
    assert "unknown venue 'otc_brokr'" in p.message
    assert "defined: desk2, otc_broker" in p.message


def test_stolen_asset_must_exist(tmp_path):
    text = edit("      - asset: ETH\n", "      - asset: BTC\n")
    p = only_problem(write(tmp_path, "asset.yaml", text))
    assert p.path == "thefts.0.stolen.0.asset"
    assert p.line == line_of(text, "asset: BTC")
    assert "unknown asset 'BTC'" in p.message and "ETH" in p.message


def test_duplicate_key_is_an_error_at_the_second_occurrence(tmp_path):
    text = edit("    fee_usd: 5\n", "    fee_usd: 5\n    fee_usd: 6\n")
    p = only_problem(write(tmp_path, "dup.yaml", text))
    assert p.path == "chains.eth.fee_usd"
    assert p.line == line_of(text, "fee_usd: 6")
    assert "duplicate key" in p.message


def test_duplicate_top_level_key(tmp_path):
    text = BASE_YAML + "name: again\n"
    p = only_problem(write(tmp_path, "dup.yaml", text))
    assert p.path == "name"
    assert p.line == line_of(text, "name: again")


@pytest.mark.parametrize("word", ["NO", "no", "yes", "off", "On", "Y", "n"])
def test_yaml11_booleans_stay_strings(tmp_path, word):
    text = edit("    victim: Some bridge\n", f"    victim: {word}\n")
    scenario = load_scenario(write(tmp_path, "words.yaml", text))
    assert scenario.thefts[0].victim == word


def test_jurisdiction_no_is_norway(tmp_path):
    text = edit("    jurisdiction: offshore\n", "    jurisdiction: NO\n")
    scenario = load_scenario(write(tmp_path, "norway.yaml", text))
    assert scenario.venues["otc_broker"].jurisdiction == "NO"
    assert validate(tmp_path / "norway.yaml").exit_code == 0


def test_true_and_false_are_still_booleans(tmp_path):
    text = edit("    price_usd: 1000\n", "    price_usd: 1000\n    freezable: true\n")
    assert load_scenario(write(tmp_path, "bool.yaml", text)).assets["ETH"].freezable is True


def test_unknown_hop_kind_lists_the_allowed_kinds(tmp_path):
    text = edit("  - hop: split\n", "  - hop: jump\n")
    p = only_problem(write(tmp_path, "hop.yaml", text))
    assert p.path == "playbook.0"
    assert p.line == line_of(text, "hop: jump")
    assert "'jump'" in p.message
    for kind in ("transfer", "split", "peel", "wait", "consolidate", "cash_out"):
        assert f"'{kind}'" in p.message


def test_unknown_venue_kind_lists_the_allowed_kinds(tmp_path):
    text = edit("    kind: otc\n", "    kind: bank\n")
    p = only_problem(write(tmp_path, "kind.yaml", text))
    assert p.path == "venues.otc_broker"
    assert p.line == line_of(text, "otc_broker:")
    assert "'bank'" in p.message and "'otc'" in p.message


@pytest.mark.parametrize("old,new,path", [
    ("  horizon: 10d\n", "  horizon: 5 parsecs\n", "clock.horizon"),
    ("    confirmation: 3min\n", "    confirmation: 5 parsecs\n", "chains.eth.confirmation"),
    ("    delay: 2d\n", "    delay: 5 parsecs\n", "venues.otc_broker.delay.value"),
    ("    discovered_after: 6h\n", "    discovered_after: 5 parsecs\n", "thefts.0.discovered_after"),
])
def test_bad_duration(tmp_path, old, new, path):
    text = edit(old, new)
    p = only_problem(write(tmp_path, "dur.yaml", text))
    assert p.path == path
    assert p.line == line_of(text, "5 parsecs")
    assert "'5 parsecs' is not a duration" in p.message
    assert "min" in p.message and "d" in p.message  # names the units


def test_bad_duration_inside_a_hop_delay_distribution(tmp_path):
    text = edit("    wallets: 3\n", "    wallets: 3\n    delay:\n      dist: exponential\n      mean: 5 parsecs\n")
    p = only_problem(write(tmp_path, "dur.yaml", text))
    assert p.path == "playbook.0.delay.mean"
    assert p.line == line_of(text, "mean: 5 parsecs")


def test_durations_with_units(tmp_path):
    text = edit("    wallets: 3\n", "    wallets: 3\n    delay: {dist: uniform, low: 90s, high: 1w}\n")
    text = edit("  timeline_step: 1h\n", "  timeline_step: 2.5d\n", text)
    scenario = load_scenario(write(tmp_path, "units.yaml", text))
    assert scenario.playbook[0].delay.low == pytest.approx(90 / 3600)
    assert scenario.playbook[0].delay.high == 168.0
    assert scenario.clock.timeline_step == 60.0


def test_every_problem_is_reported_each_at_its_own_line(tmp_path):
    text = edit("        amount: 100\n", "        amount: -5\n")
    text = edit("  horizon: 10d\n", "  horizon: 10d\n  horizn: 12d\n", text)
    text = edit("    fee_usd: 5\n", "    fee_usd: five\n", text)
    problems = problems_of(write(tmp_path, "many.yaml", text))
    found = {(p.path, p.line) for p in problems}
    assert found == {
        ("thefts.0.stolen.0.amount", line_of(text, "amount: -5")),
        ("clock.horizn", line_of(text, "horizn")),
        ("chains.eth.fee_usd", line_of(text, "fee_usd: five")),
    }


ONE_PASS = BASE_YAML.replace("    fee_usd: 5\n", "    fee_usd: 5\n    fee_usd: 6\n").replace(
    "  horizon: 10d\n", "  horizon: 10d\n  horizn: 12d\n").replace(
    "        amount: 100\n", "        amount: -5\n      - asset: BTC\n        amount: 3\n").replace(
    "    venue: otc_broker\n", "    venue: otc_brokr\n")


def test_yaml_field_and_reference_problems_come_in_one_pass_sorted_by_line(tmp_path):
    text = ONE_PASS
    problems = problems_of(write(tmp_path, "all.yaml", text))
    assert [(p.line, p.path) for p in problems] == [
        (line_of(text, "horizn"), "clock.horizn"),  # unknown field
        (line_of(text, "fee_usd: 6"), "chains.eth.fee_usd"),  # duplicate key (YAML level)
        (line_of(text, "amount: -5"), "thefts.0.stolen.0.amount"),  # field level
        (line_of(text, "asset: BTC"), "thefts.0.stolen.1.asset"),  # reference level
        (line_of(text, "venue: otc_brokr"), "playbook.1.venue"),
    ]
    assert "duplicate key" in problems[1].message
    assert "unknown asset 'BTC' (defined: ETH)" in problems[3].message
    assert "unknown venue 'otc_brokr' (defined: otc_broker)" in problems[4].message


def test_cli_validate_prints_every_problem_of_the_file_in_line_order(tmp_path):
    path = write(tmp_path, "all.yaml", ONE_PASS)
    result = validate(path)
    assert result.exit_code == 2
    lines = [PROBLEM_LINE.match(line) for line in result.output.splitlines() if line.strip()]
    assert all(lines) and len(lines) == 5
    numbers = [int(m["line"]) for m in lines]
    assert numbers == sorted(numbers)
    assert [m["path"] for m in lines][-1] == "playbook.1.venue"


def test_references_to_a_venue_with_field_errors_are_still_checked(tmp_path):
    # the venue's haircut is invalid, but its kind is known: a hop that needs another kind is an error,
    # and a venue whose kind is unknown counts as defined (no "unknown venue" for references to it)
    text = edit("    haircut: 0.05\n", "    haircut: 1.5\n  tornado:\n    kind: mixxer\n")
    text = edit("  - hop: cash_out\n    venue: otc_broker\n",
                "  - hop: swap\n    venue: otc_broker\n    to: ETH\n  - hop: mix\n    venue: tornado\n"
                "  - hop: cash_out\n    venue: otc_broker\n", text)
    problems = problems_of(write(tmp_path, "venues.yaml", text))
    found = {(p.path, p.line): p.message for p in problems}
    assert set(found) == {("venues.otc_broker.haircut", line_of(text, "haircut: 1.5")),
                          ("venues.tornado", line_of(text, "  tornado:")),  # unknown kind 'mixxer'
                          ("playbook.1.venue", line_of(text, "hop: swap") + 1)}
    assert found[("playbook.1.venue", line_of(text, "hop: swap") + 1)].startswith("venue 'otc_broker' is a otc; a swap hop needs a dex")


def test_names_refused_as_keys_are_not_listed_as_defined(tmp_path):
    """Found by the fuzzer: a venue key that is not a valid name must not appear in "(defined: ...)"."""
    text = edit("venues:\n", 'venues:\n  "two\\nlines": {kind: otc, jurisdiction: offshore}\n')
    text = edit("    venue: otc_broker\n", "    venue: nowhere\n", text)
    problems = problems_of(write(tmp_path, "keys.yaml", text))
    assert [p.path for p in problems] == ["venues.two\\nlines", "playbook.1.venue"]  # the key, then the reference
    assert problems[1].message == "unknown venue 'nowhere' (defined: otc_broker)"
    assert all("\n" not in str(p) for p in problems)


def test_an_unreadable_value_is_reported_once(tmp_path):
    text = edit("seed: 1\n", "seed: !!timestamp 'not a time'\n")
    text = edit("    venue: otc_broker\n", "    venue: nowhere\n", text)
    problems = problems_of(write(tmp_path, "ts.yaml", text))
    assert [(p.path, p.line) for p in problems] == [("seed", 2), ("playbook.1.venue", line_of(text, "venue: nowhere"))]
    assert "unreadable value" in problems[0].message


def test_extends_reports_the_childs_problems_first_then_the_parents(tmp_path):
    parent_text = edit("        amount: 100\n", "        amount: -100\n")
    parent = write(tmp_path, "parent.yaml", parent_text)
    child_text = "extends: parent.yaml\nname: child\nname: again\nplaybook:\n  - {hop: cash_out, venue: otc}\n"
    child = write(tmp_path, "child.yaml", child_text)
    problems = problems_of(child)
    assert [(p.file, p.line, p.path) for p in problems] == [
        (str(child), 3, "name"),
        (str(child), 5, "playbook.0.venue"),
        (str(parent), line_of(parent_text, "amount: -100"), "thefts.0.stolen.0.amount"),
    ]


def test_flow_style_lines(tmp_path):
    text = edit("playbook:\n  - hop: split\n    wallets: 3\n",
                "playbook:\n  - {hop: split, wallets: 3}\n  - {hop: peel, length: 0, fraction: 0.1}\n")
    p = only_problem(write(tmp_path, "flow.yaml", text))
    assert p.path == "playbook.1.length"
    assert p.line == line_of(text, "hop: peel")
    assert "greater than or equal to 1" in p.message


def test_errors_under_keys_named_like_hop_kinds_keep_their_path(tmp_path):
    # hop_success is keyed by hop kind; the key must stay in the reported path, at its own line
    text = BASE_YAML + "tracing:\n  hop_success:\n    split: 0.9\n    peel: 1.5\n"
    p = only_problem(write(tmp_path, "tracing.yaml", text))
    assert p.path == "tracing.hop_success.peel"
    assert p.line == line_of(text, "peel: 1.5")
    assert "less than or equal to 1" in p.message


def test_errors_in_a_venue_named_like_a_venue_kind_keep_their_path(tmp_path):
    text = edit("  otc_broker:\n", "  otc:\n").replace("venue: otc_broker", "venue: otc")
    text = edit("    haircut: 0.05\n", "    haircut: 1.5\n", text)
    p = only_problem(write(tmp_path, "venue.yaml", text))
    assert p.path == "venues.otc.haircut"
    assert p.line == line_of(text, "haircut: 1.5")


# --- extends -----------------------------------------------------------------------------------


def test_extends_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "name: b\nextends: a.yaml\n")
    p = only_problem(tmp_path / "a.yaml")
    assert p.path == "extends"
    assert p.file == str(tmp_path / "b.yaml")
    assert p.line == 2
    assert "cycle" in p.message and "a.yaml" in p.message and "b.yaml" in p.message
    result = validate(tmp_path / "a.yaml")
    assert result.exit_code == 2 and "cycle" in result.output


def test_extends_itself(tmp_path):
    p = only_problem(write(tmp_path, "self.yaml", "name: x\nextends: self.yaml\n"))
    assert p.line == 2 and "cycle" in p.message


def test_extends_missing_parent(tmp_path):
    p = only_problem(write(tmp_path, "orphan.yaml", "name: x\nextends: nowhere.yaml\n"))
    assert p.path == "extends" and p.line == 2
    assert "nowhere.yaml" in p.message


def test_extends_child_overrides_one_field(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "cases").mkdir()
    write(tmp_path / "base", "parent.yaml", BASE_YAML)
    child = "extends: ../base/parent.yaml\nname: child\nchains:\n  eth:\n    fee_usd: 7\nclock:\n  horizon: 3d\n"
    path = write(tmp_path / "cases", "child.yaml", child)
    assert "is outside the scenario's directory" in only_problem(path).message  # a sibling tree needs the flag
    with extends_outside_allowed():  # --allow-extends-outside
        scenario = load_scenario(path)
    assert scenario.name == "child"
    assert scenario.chains["eth"].fee_usd == 7.0
    assert scenario.chains["eth"].confirmation == pytest.approx(0.05)  # merged from the parent
    assert scenario.clock.horizon == 72.0
    assert scenario.clock.resolution == pytest.approx(1 / 60)
    assert [h.hop for h in scenario.playbook] == ["split", "cash_out"]  # lists come from the parent
    assert scenario.thefts[0].stolen[0].amount == 100.0


def test_extends_child_replaces_lists_whole(tmp_path):
    write(tmp_path, "parent.yaml", BASE_YAML)
    child = "extends: parent.yaml\nplaybook:\n  - {hop: transfer}\n"
    scenario = load_scenario(write(tmp_path, "child.yaml", child))
    assert [h.hop for h in scenario.playbook] == ["transfer"]


def test_extends_errors_point_at_the_file_that_has_them(tmp_path):
    parent_text = edit("        amount: 100\n", "        amount: -100\n")
    parent = write(tmp_path, "parent.yaml", parent_text)
    child_text = "extends: parent.yaml\nname: child\nclock:\n  horizon: 3d\n  resolution: 5 parsecs\n"
    child = write(tmp_path, "child.yaml", child_text)
    problems = problems_of(child)
    where = {p.path: (p.file, p.line) for p in problems}
    assert where["thefts.0.stolen.0.amount"] == (str(parent), line_of(parent_text, "amount: -100"))
    assert where["clock.resolution"] == (str(child), line_of(child_text, "resolution"))
    assert len(problems) == 2


def test_extends_override_of_a_bad_parent_field_fixes_it(tmp_path):
    write(tmp_path, "parent.yaml", edit("    fee_usd: 5\n", "    fee_usd: -5\n"))
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nchains: {eth: {fee_usd: 1}}\n")
    assert load_scenario(child).chains["eth"].fee_usd == 1.0


def test_extends_must_be_a_path(tmp_path):
    p = only_problem(write(tmp_path, "x.yaml", "name: x\nextends: [a, b]\n"))
    assert p.path == "extends" and p.line == 2


# --- --set overrides ---------------------------------------------------------------------------


def test_set_overrides_nested_fields(tmp_path):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    scenario = load_scenario(path, {"clock.horizon": "3d", "playbook.0.wallets": 7,
                                    "venues.otc_broker.haircut": 0.5, "thefts.0.stolen.0.amount": 2})
    assert scenario.clock.horizon == 72.0
    assert scenario.playbook[0].wallets == 7
    assert scenario.venues["otc_broker"].haircut == 0.5
    assert scenario.stolen_usd == 2000.0
    # a field the file leaves out can be set too, if its parent exists
    assert load_scenario(path, {"chains.eth.fee_usd": 0}).chains["eth"].fee_usd == 0.0
    assert load_scenario(path, {"clock.timeline_step": "6h"}).clock.timeline_step == 6.0


def test_set_with_a_bad_value_is_reported(tmp_path):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    p = only_problem(path, {"playbook.0.wallets": -1})
    assert p.path == "playbook.0.wallets"
    assert "greater than or equal to 1" in p.message


@pytest.mark.parametrize("field", ["clockk.horizon", "playbook.9.wallets", "name.first"])
def test_set_of_a_field_that_does_not_exist(tmp_path, field):
    p = only_problem(write(tmp_path, "s.yaml", BASE_YAML), {field: 1})
    assert "no such field" in p.message or "unknown field" in p.message
    assert field.startswith(p.path)


def test_cli_set_nested_field(tmp_path):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--set", "clock.horizon=3d",
                                       "--set", "playbook.0.wallets=4", "--set", "venues.otc_broker.haircut=0.5"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["horizon_hours"] == 72.0
    ledger = pq.read_table(out / "ledger.parquet").to_pydict()
    assert ledger["hop"].count("split") == 4
    # the desk kept half: cashed out == fees minus the 8 network fees (4 split transfers, 4 deposits)
    states = summary["states"]
    assert states["cashed_out"]["median_usd"] == pytest.approx((100_000 - 8 * 5.0) / 2)
    assert states["fees"]["median_usd"] == pytest.approx((100_000 - 8 * 5.0) / 2 + 8 * 5.0)


def test_cli_set_keeps_norway_a_string(tmp_path):
    # --set values are YAML scalars, but as in scenario files NO must stay Norway's code, not False
    path = write(tmp_path, "s.yaml", BASE_YAML)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o"), "--set", "clock.horizon=1d",
                                       "--set", "venues.otc_broker.jurisdiction=NO"])
    assert result.exit_code == 0, result.output


def test_cli_set_bad_value_exits_2(tmp_path):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o"), "--set", "playbook.0.wallets=0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "playbook.0.wallets" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_set_without_equals_is_a_usage_error(tmp_path):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    result = CliRunner().invoke(main, ["run", str(path), "--set", "clock.horizon"])
    assert result.exit_code == 2
    assert "FIELD=VALUE" in result.output


# --- the CLI's report --------------------------------------------------------------------------


def test_cli_validate_prints_one_line_per_problem(tmp_path):
    text = edit("        amount: 100\n", "        amount: -5\n")
    text = edit("  horizon: 10d\n", "  horizon: 10d\n  horizn: 12d\n", text)
    path = write(tmp_path, "bad.yaml", text)
    result = validate(path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 2
    parsed = [PROBLEM_LINE.match(line) for line in lines]
    assert all(parsed), lines
    got = {(m["file"], int(m["line"]), m["path"]) for m in parsed}
    assert got == {(str(path), line_of(text, "amount: -5"), "thefts.0.stolen.0.amount"),
                   (str(path), line_of(text, "horizn"), "clock.horizn")}
    assert f"{path}:{line_of(text, 'amount: -5')}: thefts.0.stolen.0.amount: input should be greater than 0 (got -5)" in lines


@pytest.mark.parametrize("content", [
    b"",
    b"- a\n- b\n",
    b"name: x\nname: y\n",
    b"name: \xff\n",
    b"name: tiny\nclock: {horizon: 1d\n",
    b"extends: loop.yaml\n",
])
def test_cli_validate_never_shows_a_traceback(tmp_path, content):
    path = write(tmp_path, "loop.yaml", content)
    result = validate(path)
    assert result.exit_code == 2
    first = result.output.splitlines()[0]
    m = PROBLEM_LINE.match(first)
    assert m and m["file"] == str(path), first


def test_cli_validate_many_files(tmp_path):
    good = write(tmp_path, "good.yaml", BASE_YAML)
    bad = write(tmp_path, "bad.yaml", edit("        amount: 100\n", "        amount: -5\n"))
    result = validate(good, bad, BASELINE)
    assert result.exit_code == 2
    assert f"{good}: ok" in result.output
    assert f"{BASELINE}: ok" in result.output
    assert f"{bad}:" in result.output and "thefts.0.stolen.0.amount" in result.output
    assert validate(good, BASELINE).exit_code == 0
