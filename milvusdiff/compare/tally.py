"""What the finishing pass counts on its way: classes, duplicates, and per column mismatches and deviation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.compare.comparator import equal
from milvusdiff.compare.histogram import DeviationHistogram
from milvusdiff.compare.lists import align, max_abs_per_row
from milvusdiff.compare.plan import Column, Kind


@dataclass
class ColumnTally:
    mismatches: int = 0
    max_deviation: float | None = None
    histogram: DeviationHistogram = field(default_factory=DeviationHistogram)

    def add_deviation(self, values: np.ndarray) -> None:
        self.histogram.add(values)
        values = values[~np.isnan(values)]
        if values.size:
            top = float(values.max())
            self.max_deviation = top if self.max_deviation is None else max(self.max_deviation, top)


@dataclass
class Tally:
    classes: Counter[str] = field(default_factory=Counter)
    columns: dict[str, ColumnTally] = field(default_factory=dict)
    duplicate_keys_a: int = 0
    duplicate_keys_b: int = 0
    duplicate_rows_a: int = 0  # rows held under duplicated keys: they are outside the join
    duplicate_rows_b: int = 0
    written: int = 0
    keys: list[pa.RecordBatch] = field(default_factory=list)
    against_journal: int | None = None  # keys both sides agree on, against the journal; None: not checked


def deviation(column: Column, a: pa.Array, b: pa.Array) -> np.ndarray | None:
    if column.kind is Kind.FLOAT:
        x = a.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        y = b.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.abs(x - y))
    if column.kind is Kind.FLOAT_LIST and not column.vector:
        return max_abs_per_row(align(a, b))
    if column.kind is Kind.SPARSE:
        return sparse_deviation(a, b)[1]
    return None


def sparse_deviation(a: pa.Array, b: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(per row: both sides hold the same indices, the largest |a - b| of the values of those rows).

    Rows whose indices differ have no element deviation: the vectors differ in which dimensions they
    hold, which no number on one scale describes. The notebook's sparse section reads both parts."""
    indices_a, indices_b = pc.struct_field(a, "indices"), pc.struct_field(b, "indices")
    same = equal(Kind.EXACT, indices_a, indices_b) & a.is_valid().to_numpy(zero_copy_only=False)
    mask = pa.array(same)
    values_a, values_b = pc.struct_field(a, "values"), pc.struct_field(b, "values")
    return same, max_abs_per_row(align(values_a.filter(mask), values_b.filter(mask)))
