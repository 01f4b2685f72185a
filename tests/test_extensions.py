"""One extension protocol and a typed model boundary.

A new venue, hop, intervention or delay kind is a schema model, one module, one registry entry,
its docs and its tests: every check below fails when one of them is missing. And the model's
parts reach the world only through ``model/ops.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import yaml

from launderflow.model import ops
from launderflow.model.distributions import DISTRIBUTIONS
from launderflow.model.hops import STEPS
from launderflow.model.interventions import ACTIONS
from launderflow.model.venues import VENUES
from launderflow.model.world import World
from launderflow.scenario import schema as s
from launderflow.scenario.loader import load_scenario

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "src" / "launderflow" / "model"
ALL_VENUES = REPO / "tests" / "scenarios" / "all_venues.yaml"
POLICIES = REPO / "tests" / "scenarios" / "policy_all_interventions.yaml"

REGISTRIES = [
    ("venue", VENUES, s.Venue, "kind"),
    ("hop", STEPS, s.Hop, "hop"),
    ("intervention", ACTIONS, s.Intervention, "kind"),
    ("delay", DISTRIBUTIONS, s.Delay, "dist"),
]


@pytest.mark.parametrize("what,registry,union,field", REGISTRIES, ids=[r[0] for r in REGISTRIES])
def test_every_schema_kind_has_exactly_one_runtime_class(what, registry, union, field):
    schema_tags = set(s.union_tags(union, field))
    assert set(registry.tags()) == schema_tags, (
        f"{what} kinds in the schema without a registered class: {sorted(schema_tags - set(registry.tags()))}; "
        f"registered without a schema model: {sorted(set(registry.tags()) - schema_tags)}")


def test_registering_a_tag_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        VENUES.register("otc")(type("Another", (), {}))


@pytest.mark.parametrize("kind,model", list(s.union_tags(s.Venue, "kind").items()))
def test_every_venue_kind_declares_its_budget_terms(kind, model):
    assert model.budget_terms is not s.VenueBase.budget_terms, (
        f"venue kind {kind!r} uses no budget terms of its own: define budget_terms on {model.__name__}")


def test_a_venue_kind_without_budget_terms_is_an_error_not_a_silent_default():
    class Unbounded(s.VenueBase):
        kind: str = "unbounded"

    with pytest.raises(NotImplementedError, match="declares no budget terms"):
        Unbounded(jurisdiction="US").budget_terms(None, "mix", 0)


def test_every_venue_kind_is_exercised_by_the_all_venues_test_scenario():
    kinds = {v["kind"] for v in yaml.safe_load(ALL_VENUES.read_text())["venues"].values()}
    assert kinds == set(s.union_tags(s.Venue, "kind")), "add the new venue kind to tests/scenarios/all_venues.yaml"


def test_every_intervention_kind_is_exercised_by_the_policy_test_scenario():
    kinds = {i["kind"] for i in yaml.safe_load(POLICIES.read_text())["interventions"]}
    assert kinds == set(s.union_tags(s.Intervention, "kind"))


def test_the_world_and_its_venues_implement_the_typed_boundary():
    world = World(load_scenario(ALL_VENUES), np.random.default_rng(np.random.SeedSequence(1)))
    assert isinstance(world, ops.World)
    assert world.venues and all(isinstance(v, ops.Venue) for v in world.venues)
    for name in ("move", "fork", "divide", "merge", "relocate", "spend", "hop_knowledge", "record", "schedule", "at"):
        assert name in ops.World.__dict__, f"{name} belongs to the model boundary"


def _imports(path: Path) -> set[str]:
    """Modules a file imports, resolved relative to launderflow.model."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            out.add("." * node.level + node.module)
        elif isinstance(node, ast.ImportFrom):
            out.update("." * node.level + a.name for a in node.names)
    return out


def test_hops_venues_tracing_and_interventions_reach_the_world_only_through_ops():
    parts = [MODEL / "hops.py", MODEL / "tracing.py", MODEL / "interventions.py", *sorted((MODEL / "venues").glob("*.py"))]
    for path in parts:
        last = {m.split(".")[-1] for m in _imports(path)}
        assert "world" not in last, f"{path.relative_to(REPO)} imports the world: use launderflow.model.ops instead"
        if path.parent.name == "venues":
            assert "hops" not in last, f"{path.relative_to(REPO)} imports the hops (a circle): steps reach venues, not back"


def test_the_model_finds_capabilities_through_hooks_not_hasattr():
    offenders = [str(p.relative_to(REPO)) for p in MODEL.rglob("*.py") if "hasattr(" in p.read_text(encoding="utf-8")]
    assert offenders == [], "declare a hook with a default on the base class instead of probing with hasattr"
