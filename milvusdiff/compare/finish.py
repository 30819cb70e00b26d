"""The streaming pass from the engine's intermediate table to diff.parquet, and the tallies on the way.

One implementation for both engines: it normalises types (DuckDB returns vectors as plain lists),
applies the refinements, builds `changed_columns`, computes vector metrics for changed rows only and
counts everything the summary reports, one record batch at a time so memory stays bounded.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.compare.lists import align, elementwise_equal, max_abs_per_row, vector_metrics
from milvusdiff.compare.options import Tolerance
from milvusdiff.compare.plan import Column, Kind, Plan, a_col, b_col, flag_col
from milvusdiff.compare.refine import still_different

CLASSES = ("only_a", "only_b", "changed", "duplicate_a", "duplicate_b")
METRICS = ("max_abs", "l2", "cosine")
ARBITRATION_COLUMNS = ("class", "count_a", "count_b")


def metric_col(name: str, metric: str) -> str:
    return f"{name}__{metric}"


def output_schema(plan: Plan) -> pa.Schema:
    fields = [pa.field(k.name, k.arrow_type) for k in plan.keys]
    fields += [
        pa.field("class", pa.string()),
        pa.field("count_a", pa.int64()),
        pa.field("count_b", pa.int64()),
        pa.field("changed_columns", pa.list_(pa.string())),
    ]
    for column in plan.columns:
        fields += [pa.field(a_col(column.name), column.type_a), pa.field(b_col(column.name), column.type_b)]
        if column.vector:
            fields += [pa.field(metric_col(column.name, m), pa.float64()) for m in METRICS]
    fields.append(pa.field("verdict", pa.string()))
    return pa.schema(fields, metadata={"milvusdiff.key": json.dumps(plan.key_names)})


@dataclass
class ColumnTally:
    mismatches: int = 0
    max_deviation: float | None = None

    def add_deviation(self, values: np.ndarray) -> None:
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


def _deviation(column: Column, a: pa.Array, b: pa.Array) -> np.ndarray | None:
    if column.kind is Kind.FLOAT:
        x = a.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        y = b.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.abs(x - y))
    if column.kind is Kind.FLOAT_LIST and not column.vector:
        return max_abs_per_row(align(a, b))
    if column.kind is Kind.SPARSE:
        same_indices = pa.array(elementwise_equal(a.field("indices"), b.field("indices"), Tolerance()))
        return max_abs_per_row(align(a.field("values").filter(same_indices), b.field("values").filter(same_indices)))
    return None


def _changed_columns(names: list[str], flags: np.ndarray) -> pa.Array:
    rows, cols = np.nonzero(flags)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=flags.shape[0]))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.array(names, dtype=object)[cols], pa.string()))


class Finisher:
    def __init__(self, plan: Plan, sample_per_class: int = 0) -> None:
        self.plan = plan
        self.schema = output_schema(plan)
        self.tally = Tally(columns={c.name: ColumnTally() for c in plan.columns})
        self.sample_per_class = sample_per_class
        self.sample: dict[str, pa.Table] = {}  # class -> its sample rows so far, with their `__row` numbers

    def _cast(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """Engines hand out their own Arrow types (large strings, plain lists); the output has the inputs'."""
        arrays = {}
        for name in self.schema.names:
            if name in batch.schema.names:
                array, target = batch.column(name), self.schema.field(name).type
                arrays[name] = array if array.type == target else array.cast(target)
        return arrays

    def _flags(self, batch: pa.RecordBatch, arrays: dict[str, pa.Array]) -> tuple[np.ndarray, np.ndarray]:
        """Per row and column: still differs. Per column: whether refinement cleared any flag."""
        columns = self.plan.columns
        flags = np.zeros((batch.num_rows, len(columns)), dtype=bool)
        cleared = np.zeros(len(columns), dtype=bool)
        for i, column in enumerate(columns):
            flags[:, i] = batch.column(flag_col(column.name)).fill_null(False).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(flags[:, i])
            if column.needs_refinement and rows.size:
                take = pa.array(rows)
                a, b = arrays[a_col(column.name)].take(take), arrays[b_col(column.name)].take(take)
                still = still_different(column, a, b)
                cleared[i] = not still.all()
                flags[rows, i] = still
        return flags, cleared

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = self._cast(batch)
        flags, cleared = self._flags(batch, arrays)
        keep = ~pc.equal(arrays["class"], "changed").to_numpy(zero_copy_only=False) | flags.any(axis=1)
        if not keep.all():
            flags, mask = flags[keep], pa.array(keep)
            arrays = {name: array.filter(mask) for name, array in arrays.items()}
        out: dict[str, pa.Array] = {name: arrays[name] for name in [*self.plan.key_names, *ARBITRATION_COLUMNS]}
        out["changed_columns"] = _changed_columns([c.name for c in self.plan.columns], flags)
        for i, column in enumerate(self.plan.columns):
            for side in (a_col(column.name), b_col(column.name)):
                # Engines emit values only where they flagged; a cleared flag must lose its values too.
                out[side] = pc.if_else(pa.array(flags[:, i]), arrays[side], None) if cleared[i] else arrays[side]
            self._measure(column, flags[:, i], out)
        out["verdict"] = pa.nulls(len(flags), pa.string())
        result = pa.RecordBatch.from_arrays([out[n] for n in self.schema.names], schema=self.schema)
        self._pick_sample(result)
        self._count(result)
        return result

    def _pick_sample(self, result: pa.RecordBatch) -> None:
        """Keep the `sample_per_class` smallest keys of each class seen so far: engines stream rows in no
        fixed order, and a sample chosen by key is the same on every run and with either engine."""
        if not self.sample_per_class:
            return
        keys = self.plan.key_names
        order = [(k, "ascending") for k in keys]
        narrow = pa.Table.from_batches([result.select([*keys, "class"])])
        narrow = narrow.append_column("__at", pa.array(np.arange(result.num_rows, dtype=np.int64)))
        for name in CLASSES:
            candidates = narrow.filter(pc.equal(narrow.column("class"), name))
            if not candidates.num_rows:
                continue
            best = candidates.take(
                pc.select_k_unstable(candidates, min(self.sample_per_class, candidates.num_rows), order)
            )
            at = best.column("__at").combine_chunks()
            rows = pa.Table.from_batches([result.take(at)]).append_column("__row", pc.add(at, self.tally.written))
            both = pa.concat_tables([self.sample[name], rows]) if name in self.sample else rows
            self.sample[name] = both.take(pc.select_k_unstable(both, min(self.sample_per_class, both.num_rows), order))

    def sample_rows(self) -> list[tuple[int, dict[str, Any]]]:
        """(row number in diff.parquet, row) of the sample, by class then key."""
        order = [(k, "ascending") for k in self.plan.key_names]
        rows = []
        for name in CLASSES:
            if name in self.sample:
                table = self.sample[name]
                for row in table.take(pc.sort_indices(table, order)).to_pylist():
                    rows.append((row.pop("__row"), row))
        return rows

    def _measure(self, column: Column, flag: np.ndarray, out: dict[str, pa.Array]) -> None:
        tally = self.tally.columns[column.name]
        tally.mismatches += int(flag.sum())
        a, b = out[a_col(column.name)], out[b_col(column.name)]
        if column.vector:
            metrics = vector_metrics(a, b)
            for metric, values in zip(METRICS, metrics, strict=True):
                out[metric_col(column.name, metric)] = pa.array(values, pa.float64(), mask=~flag)
            tally.add_deviation(metrics[0][flag])
            return
        rows = np.flatnonzero(flag)
        if rows.size:
            deviation = _deviation(column, a.take(pa.array(rows)), b.take(pa.array(rows)))
            if deviation is not None:
                tally.add_deviation(deviation)

    def _count(self, result: pa.RecordBatch) -> None:
        tally = self.tally
        tally.written += result.num_rows
        for entry in pc.value_counts(result.column("class")).to_pylist():
            tally.classes[entry["values"]] += entry["counts"]
        is_dup = pc.starts_with(result.column("class"), "duplicate").to_numpy(zero_copy_only=False)
        count_a, count_b = result.column("count_a").to_numpy(), result.column("count_b").to_numpy()
        tally.duplicate_keys_a += int((count_a > 1).sum())
        tally.duplicate_keys_b += int((count_b > 1).sum())
        tally.duplicate_rows_a += int(count_a[is_dup].sum())
        tally.duplicate_rows_b += int(count_b[is_dup].sum())
        tally.keys.append(result.select([*self.plan.key_names, *ARBITRATION_COLUMNS]))
