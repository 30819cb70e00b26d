"""`compare(a, b, **options)`: open both sides, plan, run an engine, finish, arbitrate, then write the outputs once."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from milvusdiff.compare.finish import Finisher
from milvusdiff.compare.inputs import open_side, verify_read
from milvusdiff.compare.options import CompareOptions, Tolerance
from milvusdiff.compare.output import workspace
from milvusdiff.compare.pipeline import finish_to_parquet
from milvusdiff.compare.plan import build_plan
from milvusdiff.compare.report import write_outputs
from milvusdiff.compare.result import DIFF_FILE, CompareResult
from milvusdiff.compare.summary import Summary, build_summary


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _tolerance(value: Tolerance | float | tuple[float, float]) -> Tolerance:
    if isinstance(value, Tolerance):
        return value
    if isinstance(value, tuple):
        return Tolerance(*value)
    return Tolerance(float(value))


def make_options(
    *,
    key: str | Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    rename: Mapping[str, str] | None = None,
    atol: float = 0.0,
    rtol: float = 0.0,
    tol: Mapping[str, Tolerance | float | tuple[float, float]] | None = None,
    journal: str | Path | None = None,
    out: str | Path | None = None,
    temp_dir: str | Path | None = None,
    **rest: Any,
) -> CompareOptions:
    """Keyword arguments as a caller would write them -> CompareOptions (see CompareOptions for the rest)."""
    return CompareOptions(
        key=_names(key),
        columns=_names(columns),
        ignore=_names(ignore),
        rename=dict(rename or {}),
        tolerance=Tolerance(atol, rtol),
        column_tolerance={name: _tolerance(value) for name, value in (tol or {}).items()},
        journal=Path(journal) if journal is not None else None,
        out=Path(out) if out is not None else None,
        temp_dir=Path(temp_dir) if temp_dir is not None else None,
        **rest,
    )


def _give_verdicts(sample: list[tuple[int, dict[str, Any]]], per_row: pa.Array) -> None:
    """The report sample was taken before arbitration; its rows get their verdicts by row number."""
    chosen = per_row.take(pa.array([index for index, _ in sample], pa.int64())).to_pylist()
    for (_, row), verdict in zip(sample, chosen, strict=True):
        row["verdict"] = verdict


def diff_into(
    a: str | Path, b: str | Path, opts: CompareOptions, outputs: Path, scratch: Path
) -> tuple[Summary, list[dict[str, Any]]]:
    """Write diff.parquet into `outputs` (spilling into `scratch`); return the summary and the report sample.

    Nothing else is written: the caller may still amend the summary (validate adds store warnings and
    names the outputs where they will end up) before `write_outputs` renders it, once."""
    started = time.perf_counter()
    side_a, side_b = open_side(a, "a"), open_side(b, "b")
    plan = build_plan(side_a, side_b, opts)
    engine = importlib.import_module(f"milvusdiff.compare.engine_{opts.engine}")
    diff = outputs / DIFF_FILE
    staged = None
    run_a, run_b = side_a, side_b  # bucketed snapshots: only the rows that may differ (compare/staged)
    # Spark runs the stages itself, on the cluster
    if opts.staged and opts.engine != "spark" and side_a.bucketed and side_b.bucketed:
        from milvusdiff.compare.staged import reduce_sides

        reduced = reduce_sides(side_a, side_b, plan, opts, scratch)
        if not isinstance(reduced, str):
            run_a, run_b, staged = reduced.side_a, reduced.side_b, reduced.stats
    if staged is None:  # staged compare checked the pages of the buckets it read, and read no others
        verify_read(plan, side_a, side_b)
    # every bucket settled from the manifests: nothing can differ, so no engine runs at all
    settled = staged is not None and staged.rows_read_a == staged.rows_read_b == 0
    nothing: contextlib.AbstractContextManager[Iterator[pa.RecordBatch]] = contextlib.nullcontext(iter(()))
    with nothing if settled else engine.stream(plan, run_a, run_b, opts, scratch) as batches:
        finisher = Finisher(plan, opts.sample_size)
        tally = finish_to_parquet(batches, diff, finisher)
    sample = finisher.sample.rows()
    verdicts: dict[str, int] | None = None
    if opts.journal is not None:
        from milvusdiff.compare.arbitrate import arbitrate

        # A truncated diff (--max-diffs) or a tolerant one leaves differing keys outside it: checking those
        # against the journal as if both sides agreed would blame the side that is right.
        truncated = opts.max_diffs is not None and tally.written >= opts.max_diffs
        three_way = opts.three_way and opts.every_column_exact and not truncated
        verdicts, per_row = arbitrate(
            diff, tally, plan, run_a, run_b, opts.journal, scratch, three_way=side_a if three_way else None
        )
        _give_verdicts(sample, per_row)
    summary = build_summary(side_a, side_b, plan, tally, opts, verdicts, time.perf_counter() - started)
    return dataclasses.replace(summary, staged=staged), [row for _, row in sample]


def compare(a: str | Path, b: str | Path, options: CompareOptions | None = None, **kwargs: Any) -> CompareResult:
    """Diff two snapshots (directories or .parquet files) by key.

    Pass either a CompareOptions or the keyword arguments of make_options (key, columns, ignore,
    rename, atol, rtol, tol, engine, max_diffs, memory_limit, temp_dir, threads, journal, out).
    """
    opts = options if options is not None else make_options(**kwargs)
    inputs = [Path(a), Path(b), *([opts.journal] if opts.journal is not None else [])]
    with workspace(opts.out, opts.temp_dir, overwrite=opts.overwrite, inputs=inputs) as space:
        summary, sample = diff_into(a, b, opts, space.outputs, space.scratch)
        write_outputs(space.outputs, summary, sample)
        if opts.out is None:
            return CompareResult.keeping(summary, space.outputs / DIFF_FILE, opts.temp_dir)
    return CompareResult(summary, opts.out)
