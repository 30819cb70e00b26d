"""The second engine: the same plan as lazy Polars expressions, collected in batches by the streaming engine.

It mirrors engine_duckdb clause for clause (null keys match each other, duplicate keys leave the join
and are counted apart) so both produce the same intermediate table; its mismatch flags are a
pre-filter that the comparator (comparator.py) decides in the finishing pass, as for every engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan import Column, Kind, Plan, a_col, b_col, flag_col
from milvusdiff.errors import CompareError

BATCH_ROWS = 65536


def _join_dtype(arrow_type: pa.DataType) -> pl.DataType | None:
    if pa.types.is_integer(arrow_type):
        return pl.Int64()
    if pa.types.is_string(arrow_type):
        return pl.String()
    if pa.types.is_binary(arrow_type):
        return pl.Binary()
    return None


def _keys(plan: Plan, side: str) -> list[pl.Expr]:
    exprs = []
    for key in plan.keys:
        expr = pl.col(key.name if side == "a" else key.b_name)
        dtype = _join_dtype(key.arrow_type)
        exprs.append((expr.cast(dtype) if dtype is not None else expr).alias(key.name))
    return exprs


def _value(side: Side, column: Column, label: str) -> pl.Expr:
    name = column.name if label == "a" else column.b_name
    # Extension types (the Parquet JSON type) are compared by their storage, the text, as in DuckDB.
    extension = isinstance(side.schema.field(name).type, pa.BaseExtensionType)
    return pl.col(name).ext.storage() if extension else pl.col(name)


def _scan(side: Side, plan: Plan, label: str) -> pl.LazyFrame:
    rename = a_col if label == "a" else b_col
    values = [_value(side, c, label).alias(rename(c.name)) for c in plan.columns]
    return pl.scan_parquet(side.file_list).select(*_keys(plan, label), *values, pl.lit(True).alias(f"__in_{label}"))


def _comparable(column: Column, x: pl.Expr, y: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Polars compares only equal dtypes; DuckDB casts implicitly, so cast the way DuckDB would."""
    if column.type_a.equals(column.type_b):
        return x, y
    if column.kind is Kind.FLOAT_LIST:
        return x.cast(pl.List(pl.Float64)), y.cast(pl.List(pl.Float64))
    if pa.types.is_integer(column.type_a) and pa.types.is_integer(column.type_b):
        return x.cast(pl.Int64), y.cast(pl.Int64)
    return x, y


def _inverse(expr: pl.Expr, arrow_type: pa.DataType) -> pl.Expr:
    """1/e for every element: -0.0 and 0.0 become -inf and +inf, which equality tells apart."""
    if pa.types.is_fixed_size_list(arrow_type):
        return expr.arr.eval(1.0 / pl.element())
    return expr.list.eval(1.0 / pl.element())


def _mismatch(column: Column) -> pl.Expr:
    """A pre-filter for the comparator: it may flag more rows than the rule, never fewer."""
    x, y = pl.col(a_col(column.name)), pl.col(b_col(column.name))
    tol = column.tolerance
    if column.kind is not Kind.FLOAT:
        x, y = _comparable(column, x, y)
        distinct = ~x.eq_missing(y)
        if not tol.exact:
            return distinct
        same_type = column.type_a.equals(column.type_b)
        if column.kind is Kind.FLOAT_LIST and pa.types.is_floating(column.type_a.value_type):
            list_type = column.type_a if same_type else pa.list_(pa.float64())
            return distinct | ~_inverse(x, list_type).eq_missing(_inverse(y, list_type))
        if column.kind is Kind.SPARSE:
            values_x, values_y = x.struct.field("values"), y.struct.field("values")
            signs = ~_inverse(values_x, pa.list_(pa.float32())).eq_missing(_inverse(values_y, pa.list_(pa.float32())))
            return distinct | signs.fill_null(False)
        return distinct
    x, y = x.cast(pl.Float64), y.cast(pl.Float64)
    # eq_missing calls -0.0 and 0.0 equal (and NaN equal to NaN): 1/x tells the zeros apart.
    differs = ~x.eq_missing(y) | ((x == 0) & (1.0 / x != 1.0 / y)).fill_null(False)
    if tol.exact:
        return differs
    # Infinities and NaN stay out of the formula: abs(0 - inf) <= rtol * inf would hold.
    within = (x.is_finite() & y.is_finite() & ((x - y).abs() <= tol.atol + tol.rtol * y.abs())).fill_null(False)
    return differs & ~within


def build_frame(plan: Plan, side_a: Side, side_b: Side, limit: int | None) -> pl.LazyFrame:
    keys = plan.key_names
    key_only = [
        pl.scan_parquet(side.file_list).select(_keys(plan, label)) for side, label in ((side_a, "a"), (side_b, "b"))
    ]
    dups = (
        pl.concat([frame.group_by(keys).len().filter(pl.col("len") > 1).select(keys) for frame in key_only])
        .unique()
        .collect()
    )
    frame_a, frame_b = _scan(side_a, plan, "a"), _scan(side_b, plan, "b")
    if dups.height:
        frame_a = frame_a.join(dups.lazy(), on=keys, how="anti", nulls_equal=True)
        frame_b = frame_b.join(dups.lazy(), on=keys, how="anti", nulls_equal=True)
    both = pl.col("__in_a").fill_null(False) & pl.col("__in_b").fill_null(False)
    joined = frame_a.join(frame_b, on=keys, how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.when(both).then(_mismatch(c)).alias(flag_col(c.name)) for c in plan.columns
    )
    differs = pl.any_horizontal(
        pl.col("__in_a").is_null(), pl.col("__in_b").is_null(), *(pl.col(flag_col(c.name)) for c in plan.columns)
    ).fill_null(False)
    result = joined.filter(differs).select(
        *keys,
        pl.when(pl.col("__in_b").is_null())
        .then(pl.lit("only_a"))
        .when(pl.col("__in_a").is_null())
        .then(pl.lit("only_b"))
        .otherwise(pl.lit("changed"))
        .alias("class"),
        pl.col("__in_a").is_not_null().cast(pl.Int64).alias("count_a"),
        pl.col("__in_b").is_not_null().cast(pl.Int64).alias("count_b"),
        *(pl.col(flag_col(c.name)) for c in plan.columns),
        *(
            pl.when(pl.col(flag_col(c.name))).then(pl.col(side(c.name))).alias(side(c.name))
            for c in plan.columns
            for side in (a_col, b_col)
        ),
    )
    if limit is not None:
        result = result.head(limit)
    if not dups.height:
        return result
    counted = (
        pl.concat(
            [
                frame.with_columns(pl.lit(int(i == 0)).alias("ina"), pl.lit(int(i == 1)).alias("inb"))
                for i, frame in enumerate(key_only)
            ]
        )
        .join(dups.lazy(), on=keys, how="semi", nulls_equal=True)
        .group_by(keys)
        .agg(pl.col("ina").sum().cast(pl.Int64).alias("count_a"), pl.col("inb").sum().cast(pl.Int64).alias("count_b"))
        .with_columns(
            pl.when(pl.col("count_a") > 1).then(pl.lit("duplicate_a")).otherwise(pl.lit("duplicate_b")).alias("class")
        )
    )
    return pl.concat([result, counted], how="diagonal_relaxed")


@contextlib.contextmanager
def stream(
    plan: Plan, side_a: Side, side_b: Side, options: CompareOptions, scratch: Path
) -> Iterator[Iterator[pa.RecordBatch]]:
    """The differing rows, in no particular order (as engine_duckdb)."""
    try:
        frames = build_frame(plan, side_a, side_b, options.max_diffs).collect_batches(chunk_size=BATCH_ROWS)
        yield _batches(frames)
    except pl.exceptions.PolarsError as exc:
        raise CompareError(f"Polars: {str(exc).strip().splitlines()[0]}") from exc


def _batches(frames: Iterable[pl.DataFrame]) -> Iterator[pa.RecordBatch]:
    for frame in frames:
        yield from frame.to_arrow().to_batches()
