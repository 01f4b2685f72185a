"""sim/bench.py as a user runs it: the quick taint figure, and a clear refusal of bad options."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "sim" / "bench.py"


def quick_bench(tmp_path: Path, only: str, timeout: int) -> tuple[subprocess.CompletedProcess, dict]:
    """``sim/bench.py --quick`` with every figure but ``only`` skipped; the process and its --json figures."""
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--quick", *[a for s in "abcdef" if s != only for a in ("--skip", s)],
                           "--json", str(out)], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done, json.loads(out.read_text())


def test_quick_taint_figure_matches_the_reference(tmp_path: Path) -> None:
    done, figures = quick_bench(tmp_path, "c", timeout=300)
    assert set(figures) == {"c_taint"}
    taint = figures["c_taint"]
    # the work, not its speed (sim/bench.py reports that): --quick taints 200,000 transfers over
    # 20,000 addresses and checks every one of them against the pure-Python reference
    assert (taint["n_transfers"], taint["n_addresses"], taint["sample"]) == (200_000, 20_000, 200_000)
    policies = taint["policies"]
    assert set(policies) == {"poison", "haircut", "fifo"}
    for name, fig in policies.items():
        assert fig["max_abs_diff"] <= 1e-9, name  # the kernels agree with the reference on the sample (to rounding)
        assert 0 < fig["tainted_fraction"] <= 1, name
        assert math.isfinite(fig["speedup"]) and fig["speedup"] > 0, name  # measured and reported
    # poison taints a whole transfer when any of it is stolen: never less than the proportional policies
    assert policies["poison"]["tainted_fraction"] >= max(policies["haircut"]["tainted_fraction"],
                                                         policies["fifo"]["tainted_fraction"])


def test_repeat_below_one_is_refused() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--repeat", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--repeat must be at least 1" in done.stderr


def _instructions_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("instructions", BENCH.parent / "instructions.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# callgrind_annotate's layout: a totals line, then "Ir (share) file:function [library]" rows
ANNOTATED_BUILD = """\
9,000 (100.0%)  PROGRAM TOTALS
1,000 (11.1%)  ???:ufunc_generic_fastcall [/venv/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so]
5,000 (55.5%)  ceval.c:_PyEval_EvalFrameDefault [/usr/lib/libpython3.11.so.1.0]
  300 ( 3.3%)  ???:memcpy [/usr/lib/x86_64-linux-gnu/libc.so.6]
"""
ANNOTATED_RUN = """\
29,000 (100.0%)  PROGRAM TOTALS
9,000 (31.0%)  ???:ufunc_generic_fastcall [/venv/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so]
3,000 (10.3%)  ???:mapiter_trivial_get [/venv/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so]
9,000 (31.0%)  ceval.c:_PyEval_EvalFrameDefault [/usr/lib/libpython3.11.so.1.0]
1,300 ( 4.5%)  ???:memcpy [/usr/lib/x86_64-linux-gnu/libc.so.6]
  200 ( 0.7%)  ???:random_standard_exponential [/venv/numpy/random/_generator.cpython-311-x86_64-linux-gnu.so]
   50 ( 0.2%)  ???:0x0000000004936718 [???]
  700 ( 2.4%)  python-build.1/Python-3.11.7/./Include/object.h:_PyFrame_Clear
   20 ( 0.1%)  somewhere.c:mystery
"""


def test_instruction_split_subtracts_the_build_and_groups_by_library() -> None:
    instructions = _instructions_module()
    build, run = instructions.by_library(ANNOTATED_BUILD), instructions.by_library(ANNOTATED_RUN)
    assert build["libc.so.6"] == 300 and run["_multiarray_umath.cpython-311-x86_64-linux-gnu.so"] == 12_000
    assert "PROGRAM TOTALS" not in " ".join(run)  # the totals line is not a library's
    split = dict(instructions.simulation_split(build, run))
    # rows without a library: code inlined from CPython's headers is the interpreter's
    assert split == {"numpy core": 11_000, "Python interpreter": 4_700, "libc (malloc, memcpy, ...)": 1_000,
                     "numpy random": 200, "???": 50, "(unknown)": 20}
    assert next(iter(split)) == "numpy core"  # largest first


def test_instructions_refuses_a_bad_horizon_naming_its_option() -> None:
    done = subprocess.run([sys.executable, str(BENCH.parent / "instructions.py"), "--horizon", "soon"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("--horizon soon: clock.horizon: 'soon' is not a duration") and "Traceback" not in done.stderr


def test_engine_figures_are_written_under_the_engine_key(tmp_path: Path) -> None:
    """--json FILE keeps issue 23's figures under a top-level ``engine`` key; both engines gave the
    same bytes, and what is not measured yet is null with its reason (no wall-clock asserts)."""
    done, figures = quick_bench(tmp_path, "f", timeout=600)
    assert set(figures) == {"engine"}
    engine = figures["engine"]
    assert engine["same_bytes"] is True
    for name in ("replication_seconds", "reference_replication_seconds", "per_batch_us", "large_transfers_per_second",
                 "simpy_ceiling_events_per_second", "compile_seconds", "peak_rss_mib"):
        assert math.isfinite(engine[name]) and engine[name] > 0, name
    assert engine["batches"]["5min"] > engine["batches"]["15min"] > engine["batches"]["1h"] > 0
    assert engine["large_transfers"] > 1_000_000
    for name, why in engine["not_measured"].items():
        assert engine[name] is None and why, name
    assert "(f) engines on bybit_2025.yaml" in done.stdout and "same bytes: True" in done.stdout
