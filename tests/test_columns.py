"""ColumnBuffer: batches in, the same rows out, across doublings and chunk boundaries."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launderflow.model import columns
from launderflow.model.columns import ColumnBuffer


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=30))
def test_rows_come_back_in_order_whatever_the_chunking(batches: list[tuple[int, bool]]) -> None:
    with mock.patch.object(columns, "CHUNK", 16):  # small chunks: batches cross several boundaries
        _check_batches(batches)


def _check_batches(batches: list[tuple[int, bool]]) -> None:
    expected_t: list[np.ndarray] = []
    expected_k: list[np.ndarray] = []
    buffer = ColumnBuffer({"t": np.float64, "k": np.int16}, capacity=4)
    counter = 0
    for n, scalar in batches:
        t = np.arange(counter, counter + n, dtype=np.float64)
        k = 7 if scalar else (np.arange(n) % 5).astype(np.int16)
        buffer.append(n, t=t, k=k)
        expected_t.append(t)
        expected_k.append(np.full(n, 7, dtype=np.int16) if scalar else k)
        counter += n
    out = buffer.arrays()
    assert len(buffer) == counter
    assert np.array_equal(out["t"], np.concatenate(expected_t) if expected_t else np.empty(0))
    assert np.array_equal(out["k"], np.concatenate(expected_k) if expected_k else np.empty(0, dtype=np.int16))
    assert out["k"].dtype == np.int16


def test_full_chunks_are_kept_not_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "CHUNK", 16)
    buffer = ColumnBuffer({"x": np.int64}, capacity=4)
    for i in range(10):
        buffer.append(10, x=np.arange(10 * i, 10 * i + 10))
    first_chunk = buffer._sealed[0]["x"]
    buffer.append(50, x=np.arange(100, 150))  # a batch larger than a chunk gets a chunk of its own
    assert buffer._sealed[0]["x"] is first_chunk
    assert np.array_equal(buffer.arrays()["x"], np.arange(150))


def test_copy_gives_arrays_independent_of_the_buffer() -> None:
    buffer = ColumnBuffer({"x": np.int64}, capacity=8)
    buffer.append(3, x=np.array([1, 2, 3]))
    view, copied = buffer.arrays()["x"], buffer.arrays(copy=True)["x"]
    buffer._data["x"][0] = 99
    assert view[0] == 99 and copied[0] == 1


def test_a_missing_column_is_named() -> None:
    buffer = ColumnBuffer({"x": np.int64, "y": np.float64})
    with pytest.raises(KeyError, match="missing columns: \\['y'\\]"):
        buffer.append(1, x=1)
