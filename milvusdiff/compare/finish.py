"""The streaming pass from the engine's intermediate table to diff.parquet, and the tallies on the way.

One implementation for every engine: it normalises types (Polars hands out large strings, DuckDB
BLOBs for fixed-size binaries), decides every row an engine flagged with the comparator (engines only
pre-filter, see comparator.py), builds `changed_columns`, computes vector
metrics for changed rows only and counts everything the summary reports, one record batch at a
time so memory stays bounded.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.compare.comparator import differs
from milvusdiff.compare.lists import vector_metrics
from milvusdiff.compare.plan import Column, Plan, a_col, b_col, flag_col
from milvusdiff.compare.sample import Sample
from milvusdiff.compare.tally import ColumnTally, Tally, deviation
from milvusdiff.snapshot_format import KEY_META

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
    return pa.schema(fields, metadata={KEY_META: json.dumps(plan.key_names).encode()})


def _changed_columns(names: list[str], flags: np.ndarray) -> pa.Array:
    rows, cols = np.nonzero(flags)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=flags.shape[0]))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.array(names, dtype=object)[cols], pa.string()))


def cast_engine_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    """An engine's array as the output type. Spark hands vectors out as plain lists, and pyarrow 26 crashes
    (SIGSEGV) casting a list chunk whose entries are all null, with an empty values buffer, to a
    fixed-size list, so those are rebuilt from numpy instead of cast."""
    is_plain_list = pa.types.is_list(array.type) or pa.types.is_large_list(array.type)
    if not (pa.types.is_fixed_size_list(target) and is_plain_list):
        return array.cast(target)
    dim = target.list_size
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    if (lengths[valid] != dim).any():
        return array.cast(target)  # pyarrow's own error names the length mismatch
    values = np.zeros((len(array), dim), dtype=target.value_type.to_pandas_dtype())
    values[valid] = pc.list_flatten(array).to_numpy(zero_copy_only=False).reshape(-1, dim)
    flat = pa.array(values.reshape(-1), target.value_type)
    return pa.FixedSizeListArray.from_arrays(flat, dim, mask=pa.array(~valid)).cast(target)


class Finisher:
    def __init__(self, plan: Plan, sample_per_class: int = 0) -> None:
        self.plan = plan
        self.schema = output_schema(plan)
        self.tally = Tally(columns={c.name: ColumnTally() for c in plan.columns})
        self.sample = Sample(plan.key_names, sample_per_class)

    def _cast(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """Engines hand out their own Arrow types (large strings, plain lists); the output has the inputs'."""
        arrays = {}
        for name in self.schema.names:
            if name in batch.schema.names:
                array, target = batch.column(name), self.schema.field(name).type
                arrays[name] = array if array.type == target else cast_engine_array(array, target)
        return arrays

    def _flags(self, batch: pa.RecordBatch, arrays: dict[str, pa.Array]) -> tuple[np.ndarray, np.ndarray]:
        """Per row and column: differs, by the comparator. Per column: whether it cleared any engine flag."""
        columns = self.plan.columns
        flags = np.zeros((batch.num_rows, len(columns)), dtype=bool)
        cleared = np.zeros(len(columns), dtype=bool)
        for i, column in enumerate(columns):
            flags[:, i] = batch.column(flag_col(column.name)).fill_null(False).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(flags[:, i])
            if rows.size:
                take = pa.array(rows)
                a, b = arrays[a_col(column.name)].take(take), arrays[b_col(column.name)].take(take)
                still = differs(column.kind, a, b, column.tolerance)
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
        self.sample.offer(result, self.tally.written)
        self._count(result)
        return result

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
            found = deviation(column, a.take(pa.array(rows)), b.take(pa.array(rows)))
            if found is not None:
                tally.add_deviation(found)

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
