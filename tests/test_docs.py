"""The documentation keeps up with the code.

* docs/scenario-reference.md is exactly what ``python sim/docgen.py`` generates now;
* every field of every scenario model has a row in it, in its model's section;
* every YAML example in it validates against the schema (cross-references included);
* docs/model.md documents every venue, hop and intervention kind of the schema;
* docs/reference/metrics.md is exactly what ``python sim/metricsdoc.py`` generates, a row per metric.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

from launderflow.scenario import schema as s

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "docs" / "scenario-reference.md"
MODEL_DOC = REPO / "docs" / "model.md"
REGENERATE = "run `python sim/docgen.py` (with the package installed) and commit docs/scenario-reference.md"

sys.path.insert(0, str(REPO / "sim"))  # the generators share sim/pagegen.py
_spec = importlib.util.spec_from_file_location("docgen", REPO / "sim" / "docgen.py")
docgen = importlib.util.module_from_spec(_spec)
sys.modules["docgen"] = docgen  # (its dataclasses look their module up)
_spec.loader.exec_module(docgen)  # type: ignore[union-attr]


def _reference() -> str:
    return REFERENCE.read_text(encoding="utf-8") if REFERENCE.is_file() else ""


# --- the reference is fresh ------------------------------------------------------------------


def test_reference_is_up_to_date():
    assert REFERENCE.is_file(), f"docs/scenario-reference.md is missing: {REGENERATE}"
    assert _reference() == docgen.scenario_reference(), f"docs/scenario-reference.md is stale: {REGENERATE}"


def test_docgen_check_mode(tmp_path):
    out = tmp_path / "ref.md"
    assert docgen.main(["--output", str(out), "--check"]) == 1  # missing file: stale
    assert docgen.main(["--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == docgen.scenario_reference()
    assert docgen.main(["--output", str(out), "--check"]) == 0


# --- every field of every model is documented ---------------------------------------------------


def _all_models() -> list[type[BaseModel]]:
    """Every model reachable from Scenario, found by walking annotations (independently of docgen)."""
    found: list[type[BaseModel]] = []

    def types_in(tp: Any) -> list[Any]:
        out = [tp]
        for arg in typing.get_args(tp):
            out += types_in(arg)
        return out

    def visit(model: type[BaseModel]) -> None:
        if model in found:
            return
        found.append(model)
        for field in model.model_fields.values():
            for tp in types_in(field.annotation):
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    visit(tp)

    visit(s.Scenario)
    return found


def _sections(text: str) -> dict[str, str]:
    """The text under each ``<a id="...">`` anchor, up to the next anchor."""
    parts = re.split(r'<a id="([^"]+)"></a>', text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_model_is_walked():
    assert {m.__name__ for m in _all_models()} == {m.__name__ for m in docgen.models()}


@pytest.mark.parametrize("model", _all_models(), ids=lambda m: m.__name__)
def test_every_field_appears_in_the_reference(model):
    sections = _sections(_reference())
    key = model.__name__.lower()
    assert key in sections, f"docs/scenario-reference.md has no section for {model.__name__}: {REGENERATE}"
    rows = {m.group(1) for m in re.finditer(r"^\| `([A-Za-z_0-9]+)` \|", sections[key], flags=re.M)}
    missing = [name for name in model.model_fields if name not in rows]
    assert not missing, f"{model.__name__} fields missing from docs/scenario-reference.md: {missing}; {REGENERATE}"


# --- every example validates ----------------------------------------------------------------------


EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```yaml\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in EXAMPLE.finditer(_reference())]


def _merge(base: Any, over: Any) -> Any:
    """Like ``extends``: mappings merge key by key, everything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return over


def _instances(value: Any, cls: type) -> int:
    if isinstance(value, cls):
        return 1
    if isinstance(value, BaseModel):
        return sum(_instances(getattr(value, f), cls) for f in type(value).model_fields)
    if isinstance(value, (list, tuple)):
        return sum(_instances(v, cls) for v in value)
    if isinstance(value, dict):
        return sum(_instances(v, cls) for v in value.values())
    return 0


def _base_scenario() -> dict[str, Any]:
    bases = [text for name, text in _examples() if name == "Scenario"]
    assert len(bases) == 1, "the reference should have exactly one complete example (<!-- example: Scenario -->)"
    return yaml.safe_load(bases[0])


def test_every_yaml_block_is_a_checked_example():
    blocks = re.findall(r"^```yaml$", _reference(), flags=re.M)
    assert len(blocks) == len(_examples()), "every ```yaml block must follow an <!-- example: Model --> marker"


def test_every_union_member_has_an_example():
    named = {name for name, _ in _examples()}
    members = [m.__name__ for u in docgen.unions() for m in u.members]
    assert [m for m in members if m not in named] == []


def test_the_complete_example_is_a_valid_scenario():
    scenario = s.Scenario.model_validate(_base_scenario())
    assert s.reference_problems(scenario) == []


FRAGMENTS = [e for e in _examples() if e[0] != "Scenario"]


@pytest.mark.parametrize("name,text", FRAGMENTS, ids=[name for name, _ in FRAGMENTS])
def test_example_validates(name, text):
    fragment = yaml.safe_load(text)
    assert isinstance(fragment, dict) and fragment, f"the {name} example must be a mapping of scenario fields"
    cls = getattr(s, name)
    found = 0
    for key, value in fragment.items():
        field = s.Scenario.model_fields.get(key)
        assert field is not None, f"the {name} example uses {key!r}, which is not a scenario field"
        annotation = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        adapter = TypeAdapter(annotation)
        found += _instances(adapter.validate_python(value), cls)
    assert found, f"the {name} example contains no {name}"
    scenario = s.Scenario.model_validate(_merge(copy.deepcopy(_base_scenario()), fragment))
    assert s.reference_problems(scenario) == [], f"the {name} example has dangling references"


# --- model.md covers every kind -------------------------------------------------------------------


def _kinds(union: Any, field: str) -> list[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return [typing.get_args(m.model_fields[field].annotation)[0] for m in members]


@pytest.mark.parametrize("what,union,field", [("venue", s.Venue, "kind"), ("hop", s.Hop, "hop"),
                                               ("intervention", s.Intervention, "kind")], ids=["venue", "hop", "intervention"])
def test_model_doc_mentions_every_kind(what, union, field):
    assert MODEL_DOC.is_file(), "docs/model.md is missing"
    text = MODEL_DOC.read_text(encoding="utf-8")
    missing = [k for k in _kinds(union, field) if f"`{k}`" not in text]
    assert not missing, f"docs/model.md does not document these {what} kinds (write them as `kind`): {missing}"


# --- the metric reference is fresh ------------------------------------------------------------------

_mspec = importlib.util.spec_from_file_location("metricsdoc", REPO / "sim" / "metricsdoc.py")
metricsdoc = importlib.util.module_from_spec(_mspec)
_mspec.loader.exec_module(metricsdoc)  # type: ignore[union-attr]
METRICS_DOC = REPO / "docs" / "reference" / "metrics.md"


def test_metric_reference_is_up_to_date():
    assert METRICS_DOC.is_file() and METRICS_DOC.read_text(encoding="utf-8") == metricsdoc.page(), \
        "docs/reference/metrics.md is stale: run `python sim/metricsdoc.py` and commit it"


def test_every_metric_has_a_row():
    """Independently of the generator: one row per registered metric, with its unit and description."""
    from launderflow.metrics import METRICS

    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", METRICS_DOC.read_text(encoding="utf-8"), flags=re.M)}
    assert set(rows) == set(METRICS)
    for name, metric in METRICS.items():
        assert f"| {metric.unit.name} |" in rows[name] and metric.doc.replace("|", "\\|") in rows[name], name


def test_metricsdoc_check_mode(tmp_path):
    out = tmp_path / "metrics.md"
    assert metricsdoc.main(["--output", str(out), "--check"]) == 1
    assert metricsdoc.main(["--output", str(out)]) == 0 and out.read_text(encoding="utf-8") == metricsdoc.page()
    out.write_text(out.read_text(encoding="utf-8").replace("`lots`", "`plots`"), encoding="utf-8")
    assert metricsdoc.main(["--output", str(out), "--check"]) == 1
