"""Deviation metrics over Arrow list columns with numpy, for the rows found to differ.

Equality is not decided here (comparator.py does that); these measure how far apart two lists are.
Rows are measured only where both sides hold a list of the same length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Aligned:
    """Flattened elements of the rows in `rows`, which have equal, non-null lengths on both sides."""

    rows: np.ndarray  # indices into the input arrays
    owner: np.ndarray  # for each element, its position in `rows`
    a: np.ndarray  # float64 elements, NaN where null
    b: np.ndarray
    a_null: np.ndarray
    b_null: np.ndarray


def _flat(array: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = array.take(pa.array(rows, pa.int64())).flatten().cast(pa.float64())
    nulls = values.is_null().to_numpy(zero_copy_only=False)
    return values.fill_null(np.nan).to_numpy(zero_copy_only=False), nulls


def align(a: pa.Array, b: pa.Array) -> Aligned:
    len_a = pc.list_value_length(a).to_numpy(zero_copy_only=False)
    len_b = pc.list_value_length(b).to_numpy(zero_copy_only=False)
    valid = a.is_valid().to_numpy(zero_copy_only=False) & b.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid & (np.nan_to_num(len_a, nan=-1) == np.nan_to_num(len_b, nan=-1)))
    lengths = len_a[rows].astype(np.int64)
    flat_a, null_a = _flat(a, rows)
    flat_b, null_b = _flat(b, rows)
    return Aligned(rows, np.repeat(np.arange(len(rows)), lengths), flat_a, flat_b, null_a, null_b)


def max_abs_per_row(aligned: Aligned) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, a deviation no number describes
        deviation = np.abs(aligned.a - aligned.b)
        result = np.full(len(aligned.rows), -np.inf)
        np.maximum.at(result, aligned.owner, deviation)
    return np.where(np.isneginf(result), 0.0, result)


def _matrix(array: pa.FixedSizeListArray, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The vectors of `rows` as a matrix (element type kept); flatten() skips null rows, so when exactly
    the wanted rows are valid (the usual case: engines null every row they did not flag) no take is needed."""
    chosen = array.flatten() if len(rows) == int(valid.sum()) else array.take(pa.array(rows)).flatten()
    if chosen.null_count:
        chosen = chosen.cast(pa.float64()).fill_null(np.nan)
    return np.asarray(chosen.to_numpy(zero_copy_only=False)).reshape(len(rows), array.type.list_size)


_CHUNK_ROWS = 1024


def vector_metrics(a: pa.FixedSizeListArray, b: pa.FixedSizeListArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max abs deviation, L2 distance and cosine distance per row (in float64), NaN where either is null.

    Worked in chunks through one small float64 buffer: fresh full-size temporaries for every batch cost
    more in page faults than the arithmetic itself."""
    valid_a = a.is_valid().to_numpy(zero_copy_only=False)
    valid_b = b.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid_a & valid_b)
    x, y = _matrix(a, rows, valid_a), _matrix(b, rows, valid_b)
    max_abs, l2, dot, norms = (np.empty(len(rows)) for _ in range(4))
    buffer = np.empty((min(_CHUNK_ROWS, len(rows)), x.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for start in range(0, len(rows), _CHUNK_ROWS):
            part = slice(start, start + _CHUNK_ROWS)
            xs, ys = x[part], y[part]
            d = buffer[: len(xs)]
            np.subtract(xs, ys, out=d, dtype=np.float64)
            l2[part] = np.sqrt(np.einsum("ij,ij->i", d, d))
            max_abs[part] = np.abs(d, out=d).max(axis=1, initial=0.0)
            dot[part] = np.einsum("ij,ij->i", xs, ys, dtype=np.float64)
            norms[part] = np.sqrt(
                np.einsum("ij,ij->i", xs, xs, dtype=np.float64) * np.einsum("ij,ij->i", ys, ys, dtype=np.float64)
            )
    out = [np.full(len(a), np.nan) for _ in range(3)]
    out[0][rows], out[1][rows] = max_abs, l2
    with np.errstate(invalid="ignore", divide="ignore"):
        out[2][rows] = 1.0 - dot / norms
    return out[0], out[1], out[2]
