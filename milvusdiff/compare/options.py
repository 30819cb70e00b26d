"""What a comparison was asked to do, parsed once so engines never see raw CLI strings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from milvusdiff.compare.tolerance import EXACT, Tolerance
from milvusdiff.errors import CompareError, ToleranceError

ENGINES = ("duckdb", "polars", "spark")
# DuckDB's own default is 80% of RAM. Its limit bounds DuckDB's buffers only; the process adds about
# 0.4 GB (Arrow batches, the finishing pass), so 1.5GB keeps a 10M-row join of two shuffled files with
# 128-dim vectors under 2 GB of RSS (measured: 1.88 GB; 2.35 GB at a 2GB limit, and no slower), while
# leaving the positional path 0.75 GB to hold a shuffled side (1M rows x 128 dims: 0.6 GB).
DEFAULT_MEMORY_LIMIT = "1.5GB"


@dataclass(frozen=True)
class CompareOptions:
    key: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)
    tolerance: Tolerance = EXACT
    column_tolerance: dict[str, Tolerance] = field(default_factory=dict)
    engine: str = "duckdb"
    max_diffs: int | None = None
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    temp_dir: Path | None = None
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    journal: Path | None = None
    three_way: bool = False  # with journal: also check the keys both sides agree on against it (validate)
    out: Path | None = None
    overwrite: bool = False  # replace an earlier compare output at `out` (milvusdiff.destination)
    sample_size: int = 20
    spark_master: str | None = None  # engine "spark": local[*] by default, a cluster URL, or sc:// (Spark Connect)
    json_columns: tuple[str, ...] = ()  # text columns compared as JSON (A-side names), beside typed ones
    staged: bool = True  # bucketed snapshots with the same layout: compare only the buckets that differ
    jobs: int = 1  # worker processes for the buckets of a staged compare

    def tolerance_for(self, column: str) -> Tolerance:
        return self.column_tolerance.get(column, self.tolerance)

    @property
    def every_column_exact(self) -> bool:
        """Whether a key outside the diff holds the same bits on both sides (every column compared, exactly):
        only then does one side's row digest stand for both (the three-way check relies on it)."""
        exact = Tolerance()
        tolerances = (self.tolerance, *self.column_tolerance.values())
        return not self.columns and not self.ignore and all(t == exact for t in tolerances)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise CompareError(f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.max_diffs is not None and self.max_diffs < 1:
            raise CompareError("`max_diffs` must be at least 1")
        if self.jobs < 1:
            raise CompareError("`jobs` must be at least 1")
        if self.threads < 1:
            raise CompareError(f"`threads` must be at least 1, got {self.threads}")


def parse_rename(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`a_name=b_name` pairs, as `--map` takes them."""
    rename: dict[str, str] = {}
    for item in items:
        a_name, sep, b_name = item.partition("=")
        if not sep or not a_name or not b_name:
            raise CompareError(f"--map expects A_NAME=B_NAME, got {item!r}")
        rename[a_name] = b_name
    return rename


def parse_column_tolerance(items: list[str] | tuple[str, ...]) -> dict[str, Tolerance]:
    """`COL=ATOL[,RTOL]` pairs, as `--tol` takes them."""
    result: dict[str, Tolerance] = {}
    for item in items:
        column, sep, values = item.partition("=")
        parts = values.split(",")
        try:
            if not sep or not column or len(parts) > 2:
                raise ValueError
            numbers = [float(part) for part in parts]
        except ValueError:
            raise CompareError(f"--tol expects COL=ATOL[,RTOL], got {item!r}") from None
        try:
            result[column] = Tolerance(numbers[0], numbers[1] if len(numbers) > 1 else 0.0)
        except ToleranceError as exc:
            raise ToleranceError(f"--tol {column}: {exc}") from None
    return result
