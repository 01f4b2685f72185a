"""sim/bench.py as a user runs it: the quick taint figure, and a clear refusal of bad options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "sim" / "bench.py"


def test_quick_taint_figure_matches_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--skip", "a", "--skip", "b", "--skip", "d",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert set(figures) == {"c_taint"}
    policies = figures["c_taint"]["policies"]
    assert set(policies) == {"poison", "haircut", "fifo"}
    for name, fig in policies.items():
        assert fig["max_abs_diff"] <= 1e-9, name  # the kernels agree with the reference on the sample (to rounding)
        assert fig["speedup"] > 1.0, name


def test_repeat_below_one_is_refused() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--repeat", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--repeat must be at least 1" in done.stderr
