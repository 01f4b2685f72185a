"""Golden scenarios: the summaries of three small bundled scenarios are pinned, field by field.

``tests/golden/<name>.yaml`` is run through the library (``sim/regen_golden.py``'s
``golden_summary``: a fixed master seed, a few replications, in process) and its summary compared
with ``tests/golden/<name>.summary.json``. Any change of a number — a model change, a changed
default, a reordered random draw — fails with the path of every differing field, its pinned and its
new value. If the change is intended, regenerate the pinned files with ``python sim/regen_golden.py``
and commit them with the change. The numbers depend on numpy's random streams, so they are pinned
for the numpy of this environment (``tests/golden/ENVIRONMENT.json``).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

_spec = importlib.util.spec_from_file_location("regen_golden", REPO / "sim" / "regen_golden.py")
regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regen)  # type: ignore[union-attr]

REL = 1e-9  # floats agree to this relative tolerance
ABS = 1e-12  # ... or this absolute one (for values that should be 0)
GOLDEN = regen.scenarios()
MAX_TRANSFERS, MAX_LOTS = 20_000, 2_000  # per replication: the largest today makes 6,387 and 923
HOW_TO_REGENERATE = "if the change is intended, regenerate the pinned files: python sim/regen_golden.py"


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Every difference between two JSON values, as ``path: old -> new`` lines."""
    here = path or "(top)"
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in old:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{sub}: {_show(old[key])} -> (missing)")
            else:
                out += differences(old[key], new[key], sub)
        for key in new:
            if key not in old:
                out.append(f"{path}.{key}: (missing) -> {_show(new[key])}" if path else f"{key}: (missing) -> {_show(new[key])}")
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        if len(old) != len(new):
            out.append(f"{here}: {len(old)} items -> {len(new)} items")
        for i, (a, b) in enumerate(zip(old, new)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    if _is_number(old) and _is_number(new):
        if isinstance(old, int) and isinstance(new, int):
            return [] if old == new else [f"{here}: {old} -> {new}"]
        if math.isclose(old, new, rel_tol=REL, abs_tol=ABS):
            return []
        rel = abs(new - old) / max(abs(old), abs(new))
        return [f"{here}: {old!r} -> {new!r} (relative difference {rel:.2e})"]
    if type(old) is not type(new) or old != new:
        return [f"{here}: {_show(old)} -> {_show(new)}"]
    return []


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


@pytest.mark.parametrize("scenario", GOLDEN, ids=lambda p: p.stem)
def test_golden_summary_is_unchanged(scenario: Path):
    pinned_file = regen.summary_path(scenario)
    assert pinned_file.exists(), f"{pinned_file} is missing; write it with: python sim/regen_golden.py"
    pinned = json.loads(pinned_file.read_text(encoding="utf-8"))
    fresh = regen.golden_summary(scenario)
    diffs = differences(pinned, fresh)
    shown = "\n  ".join(diffs[:40]) + (f"\n  ... and {len(diffs) - 40} more" if len(diffs) > 40 else "")
    assert not diffs, (f"the summary of {scenario.name} differs from {pinned_file.name} in {len(diffs)} field(s) "
                       f"(pinned -> now):\n  {shown}\n{HOW_TO_REGENERATE}")
    # golden scenarios must stay small (the work, not the machine's speed: well under 2 s each today)
    for rep in fresh["replications"]:
        assert rep["transfers"] <= MAX_TRANSFERS and rep["lots"] <= MAX_LOTS, (
            f"{scenario.name}: replication {rep['index']} made {rep['transfers']:,} transfers and {rep['lots']:,} "
            f"lots (golden scenarios stay within {MAX_TRANSFERS:,} and {MAX_LOTS:,})")


def test_there_are_three_golden_scenarios_with_pinned_summaries():
    assert len(GOLDEN) >= 3
    for scenario in GOLDEN:
        assert regen.summary_path(scenario).exists(), scenario


def test_the_diff_names_every_changed_field():
    old = {"a": 1.0, "b": {"c": [1, 2, 3], "d": "x", "e": None}, "f": 0.0, "g": 5}
    new = {"a": 1.0 + 1e-12, "b": {"c": [1, 2], "d": "y", "e": 0.5}, "f": 1e-3, "h": True}
    diffs = differences(old, new)
    assert "b.c: 3 items -> 2 items" in diffs
    assert 'b.d: "x" -> "y"' in diffs
    assert "b.e: null -> 0.5" in diffs
    assert any(d.startswith("f: 0.0 -> 0.001") for d in diffs)
    assert "g: 5 -> (missing)" in diffs
    assert "h: (missing) -> true" in diffs
    assert not any(d.startswith("a:") for d in diffs)  # within rel 1e-9
    assert differences(old, old) == []
