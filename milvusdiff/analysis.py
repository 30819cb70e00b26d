"""Reading a diff output directory for people: the logic behind notebooks/analyze_diff.ipynb.

The notebook is documentation as much as a tool, so its cells stay short and every computation it
shows lives here, typed and tested. A directory is what `milvusdiff validate` (or `compare --out`)
writes: summary.json and diff.parquet at the top and, after validate, snapshots/journal with the
journal's key states (part-*.parquet) and operation log (oplog.parquet).

diff.parquet is scanned lazily with Polars and queried with DuckDB, so a diff of millions of rows with
vectors is never loaded whole: each function reads only the columns and rows it needs.

matplotlib is imported inside the plotting functions only: it is a notebook (dev) dependency, and
the CLI, which imports nothing from here, must not need it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq

from milvusdiff.compare.finish import METRICS, metric_col
from milvusdiff.compare.plan import a_col, b_col
from milvusdiff.compare.plan.kinds import is_sparse
from milvusdiff.compare.sample import CLASSES
from milvusdiff.compare.summary import SUMMARY_FILE, Summary
from milvusdiff.compare.tally import sparse_deviation
from milvusdiff.compare.values import describe_change, fmt
from milvusdiff.errors import ConfigError
from milvusdiff.snapshot_format import KEY_META, PART_GLOB

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DIFF_DIR_ENV = "MILVUSDIFF_DIFF_DIR"
CWD_ENV = "MILVUSDIFF_CWD"
FIGURES_DIR_ENV = "MILVUSDIFF_FIGURES_DIR"
JOURNAL_SNAPSHOT = Path("snapshots") / "journal"
OPLOG = "oplog.parquet"
RUNS = "runs"
_MAX_ABS = f"__{METRICS[0]}"


@dataclass(frozen=True)
class DiffRun:
    """One output directory: its summary and a lazy scan of its diff."""

    directory: Path
    summary: Summary
    diff: pl.LazyFrame

    @property
    def key(self) -> list[str]:
        return list(self.summary.key)

    @property
    def sides(self) -> tuple[str, str]:
        """The store names of A and B ('milvus', 'pg' after validate; 'A', 'B' for foreign inputs)."""
        return self.summary.sides.a, self.summary.sides.b

    @property
    def different(self) -> bool:
        return self.summary.different

    @property
    def journal(self) -> Path | None:
        """The journal snapshot validate stored next to the diff, when there is one."""
        path = self.directory / JOURNAL_SNAPSHOT
        return path if any(path.glob(PART_GLOB)) else None


def invocation_dir() -> Path:
    """The directory the user ran the command from, against which a relative MILVUSDIFF_DIFF_DIR is read.

    Jupyter starts every kernel in the notebook's folder (notebooks/), so the kernel's working
    directory says nothing about where the user was. `make notebook` records that directory in
    MILVUSDIFF_CWD; otherwise the shell's PWD, which Jupyter hands to its kernels unchanged.
    """
    for name in (CWD_ENV, "PWD"):
        value = os.environ.get(name)
        if value and Path(value).is_dir():
            return Path(value)
    return Path.cwd()


def _home_runs(start: Path) -> list[Path]:
    home = os.environ.get("MILVUSDIFF_HOME")
    if home:
        return [Path(home) / RUNS]
    return [folder / ".milvusdiff" / RUNS for folder in (start, *start.parents)]


def _runs_in(runs: Path) -> list[Path]:
    return [p for p in runs.glob("*") if (p / SUMMARY_FILE).is_file()] if runs.is_dir() else []


def _newest(runs: list[Path]) -> Path:
    return max(runs, key=lambda p: (p / SUMMARY_FILE).stat().st_mtime)


def latest_run(start: Path | None = None) -> Path | None:
    """The newest output directory under the milvusdiff home, looked for from `start` upwards.

    Upwards because a notebook runs in notebooks/ while `milvusdiff demo` writes under the checkout root.
    Without `start`, from both the directory the user ran the command in and the kernel's: when runs
    lie under two different homes, which one the user means is a guess, so it is refused (ConfigError
    naming both) rather than made.
    """
    starts = [start] if start is not None else [invocation_dir(), Path.cwd()]
    homes: dict[Path, list[Path]] = {}
    for origin in starts:
        for runs in _home_runs(origin.resolve()):
            found = _runs_in(runs)
            if found:
                homes.setdefault(runs.resolve(), found)
                break
    if len(homes) > 1:
        newest = "; ".join(f"{runs} (newest: {_newest(found).name})" for runs, found in homes.items())
        raise ConfigError(f"runs under more than one directory: {newest}; set {DIFF_DIR_ENV} to the run to analyse")
    return _newest(next(iter(homes.values()))) if homes else None


@dataclass(frozen=True)
class Choice:
    """The diff directory a notebook analyses, and how it was chosen (said at the top of the notebook)."""

    directory: Path
    reason: str


def choose_diff_dir(parameter: str | Path | None = None) -> Choice:
    """MILVUSDIFF_DIFF_DIR if set, else the notebook parameter, else the newest run under the home.

    A relative path is read from invocation_dir(), where the user typed it, not from notebooks/.
    """
    from_env = os.environ.get(DIFF_DIR_ENV)
    chosen, reason = (from_env, DIFF_DIR_ENV) if from_env else (str(parameter or ""), "the diff_dir parameter")
    if chosen:
        path = Path(chosen).expanduser()
        base = invocation_dir()
        if not path.is_absolute():
            path, reason = base / path, f"{reason}, relative to {base}"
    else:
        newest = latest_run()
        if newest is None:
            raise ConfigError(f"no diff directory: set {DIFF_DIR_ENV} or the diff_dir parameter")
        path, reason = newest, f"the newest run under {newest.parent}"
    if not (path / SUMMARY_FILE).is_file() or not (path / "diff.parquet").is_file():
        raise ConfigError(f"{path} is not a diff output directory (summary.json and diff.parquet expected)")
    return Choice(path.resolve(), reason)


def resolve_diff_dir(parameter: str | Path | None = None) -> Path:
    """The directory choose_diff_dir picks."""
    return choose_diff_dir(parameter).directory


def run_header(run: DiffRun, choice: Choice) -> str:
    """Markdown for the top of the notebook: which run, made when, chosen how, comparing what."""
    made = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime((run.directory / SUMMARY_FILE).stat().st_mtime))
    a, b = run.sides
    return (
        f"**Run analysed:** `{run.directory}`  \n"
        f"made {made} · chosen by {choice.reason}  \n"
        f"A = {a}, B = {b} · key: {', '.join(run.key)}"
    )


def load_diff(directory: str | Path) -> DiffRun:
    """summary.json parsed, diff.parquet scanned lazily (nothing is read until a query collects)."""
    path = Path(directory)
    return DiffRun(path, Summary.read(path / SUMMARY_FILE), pl.scan_parquet(path / "diff.parquet"))


def figures_dir(run: DiffRun, override: str | Path | None = None) -> Path:
    """Where figures go: the override, else MILVUSDIFF_FIGURES_DIR, else figures/ inside the diff directory.

    Next to the diff by default so a CI job can attach one folder; the variable lets it choose another.
    """
    chosen = override or os.environ.get(FIGURES_DIR_ENV)
    path = Path(chosen) if chosen else run.directory / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def class_labels(summary: Summary) -> dict[str, str]:
    """Diff classes in the stores' own names: 'only in milvus' reads better than 'only_a'."""
    a, b = summary.sides.a, summary.sides.b
    return {
        "only_a": f"only in {a}",
        "only_b": f"only in {b}",
        "changed": "changed",
        "duplicate_a": f"key duplicated in {a}",
        "duplicate_b": f"key duplicated in {b}",
    }


def counts_table(summary: Summary) -> pl.DataFrame:
    """Rows per side and keys per class, as the summary counts them (`unchanged` null when unknown)."""
    a, b = summary.sides.a, summary.sides.b
    labels = class_labels(summary)
    items = [("rows_a", f"rows in {a}"), ("rows_b", f"rows in {b}")]
    items += [(name, labels[name]) for name in CLASSES]
    items.append(("unchanged", "unchanged"))
    return pl.DataFrame(
        {
            "count": [name for name, _ in items],
            "meaning": [meaning for _, meaning in items],
            "value": [getattr(summary, name) for name, _ in items],
        },
        schema={"count": pl.String, "meaning": pl.String, "value": pl.Int64},
    )


def mismatches_per_column(summary: Summary) -> pl.DataFrame:
    """Columns with at least one mismatch, most first (kind and largest deviation alongside)."""
    rows = [
        {"column": name, "kind": info.kind, "mismatches": info.mismatches, "max_deviation": info.max_deviation}
        for name, info in summary.columns.items()
        if info.mismatches
    ]
    schema = {"column": pl.String, "kind": pl.String, "mismatches": pl.Int64, "max_deviation": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort(["mismatches", "column"], descending=[True, False])


def _schema(diff: pl.LazyFrame | pl.DataFrame) -> pl.Schema:
    return diff.collect_schema() if isinstance(diff, pl.LazyFrame) else diff.schema


def deviation_columns(diff: pl.LazyFrame | pl.DataFrame) -> list[str]:
    """The vector columns of a diff: those for which compare wrote `<col>__max_abs`, `__l2`, `__cosine`."""
    names = set(_schema(diff).names())
    found = []
    for name in _schema(diff).names():
        if name.endswith(_MAX_ABS):
            column = name[: -len(_MAX_ABS)]
            if all(metric_col(column, m) in names for m in METRICS):
                found.append(column)
    return found


def deviations(diff: pl.LazyFrame | pl.DataFrame, column: str) -> np.ndarray:
    """Largest element deviation of every row whose vector `column` differs (NaN where a side held NaN)."""
    values = diff.lazy().select(pl.col(metric_col(column, METRICS[0]))).drop_nulls().collect().to_series()
    return values.to_numpy()


def sparse_columns(run: DiffRun) -> list[str]:
    """The sparse vector columns of a diff (struct<indices, values> on side A)."""
    schema = pq.read_schema(run.directory / "diff.parquet")
    suffix = a_col("")
    return [n[: -len(suffix)] for n in schema.names if n.endswith(suffix) and is_sparse(schema.field(n).type)]


def sparse_deviations(run: DiffRun, column: str) -> tuple[np.ndarray, int]:
    """(largest value deviation of every differing row with the same indices, rows whose indices differ).

    Only the two columns are read, and the engine leaves them null on rows where `column` agrees.
    """
    table = pq.read_table(run.directory / "diff.parquet", columns=[a_col(column), b_col(column)])
    a, b = table.column(0).combine_chunks(), table.column(1).combine_chunks()
    both = pc.and_(a.is_valid(), b.is_valid())
    differing = int(pc.sum(pc.or_(a.is_valid(), b.is_valid())).as_py() or 0)
    same, values = sparse_deviation(a.filter(both), b.filter(both))
    return values, differing - int(same.sum())


def vector_deviations(run: DiffRun) -> dict[str, np.ndarray]:
    """Per vector column, dense and sparse, the largest element deviation of each differing row."""
    found = {column: deviations(run.diff, column) for column in deviation_columns(run.diff)}
    found.update({column: sparse_deviations(run, column)[0] for column in sparse_columns(run)})
    return found


def verdict_counts(summary: Summary) -> pl.DataFrame | None:
    """Keys per journal verdict, worded with the store names ('pg wrong'); None when there was no journal."""
    verdicts = summary.verdicts
    if verdicts is None:
        return None
    labels = summary.verdict_labels
    return pl.DataFrame(
        {"verdict": list(verdicts), "label": [labels[v] for v in verdicts], "keys": list(verdicts.values())},
        schema={"verdict": pl.String, "label": pl.String, "keys": pl.Int64},
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _journal_key(parts: list[Path], diff_key: list[str]) -> list[str]:
    """The journal's key column names (from its metadata), which may be spelled differently from the diff's."""
    meta = pq.read_schema(parts[0]).metadata or {}
    names = json.loads(meta[KEY_META]) if KEY_META in meta else diff_key
    if len(names) != len(diff_key):
        raise ConfigError(f"journal key {names} does not match the diff key {diff_key}")
    return list(names)


def _utc_time(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Operation times in UTC: DuckDB hands a timestamptz back in the session's local time zone."""
    dtype = frame.schema.get(column)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return frame.with_columns(pl.col(column).dt.convert_time_zone("UTC"))
    return frame


def keys_with_operations(directory: str | Path) -> pl.DataFrame | None:
    """Every differing key with the journal state it should have and the operation that last wrote it.

    diff keys -> journal key states (state, last_seq, last_op, flags) -> oplog row with seq = last_seq
    (op, time, status, partition, batch size n_keys). Keys the journal never saw keep null journal columns.
    None when the directory holds no journal snapshot; the op columns are null when it has no oplog.
    """
    run = load_diff(directory)
    journal = run.journal
    if journal is None:
        return None
    parts = sorted(journal.glob(PART_GLOB))
    key = run.key
    jkey = _journal_key(parts, key)
    oplog = journal / OPLOG
    keys_sql = ", ".join(f"d.{_quote(k)}" for k in key)
    on = " AND ".join(f"d.{_quote(k)} = j.{_quote(jk)}" for k, jk in zip(key, jkey, strict=True))
    if oplog.is_file():
        op_columns = "o.op, o.time, o.status, o.partition, o.n_keys AS batch_keys"
        op_join = "LEFT JOIN read_parquet($oplog) o ON o.seq = j.last_seq"
    else:
        op_columns = "NULL AS op, NULL AS time, NULL AS status, NULL AS partition, NULL AS batch_keys"
        op_join = ""
    query = f"""
        SELECT {keys_sql}, d.class, d.changed_columns, d.verdict,
               j.state, j.last_seq, j.last_op, j.flags, {op_columns}
        FROM read_parquet($diff) d
        LEFT JOIN read_parquet($parts) j ON {on}
        {op_join}
        ORDER BY j.last_seq NULLS LAST, {keys_sql}
    """
    params: dict[str, Any] = {"diff": str(run.directory / "diff.parquet"), "parts": [str(p) for p in parts]}
    if op_join:
        params["oplog"] = str(oplog)
    with duckdb.connect() as con:
        frame = con.sql(query, params=params).pl()
    labels = run.summary.verdict_labels
    frame = frame.with_columns(pl.col("verdict").replace_strict(labels, default=pl.col("verdict")))
    return _utc_time(frame, "time")


def operations_behind(keys_ops: pl.DataFrame) -> pl.DataFrame:
    """One row per journal operation that last wrote a differing key: which batch, how many bad keys.

    A batch whose keys all went wrong together points at one failed write, scattered single keys at
    something else (a corruption, a writer that bypassed the ShadowClient).
    """
    known = keys_ops.filter(pl.col("last_seq").is_not_null())
    return (
        known.group_by("last_seq", "last_op", "status", "time", "batch_keys")
        .agg(
            pl.len().alias("differing_keys"),
            pl.col("class").unique().sort().alias("classes"),
            pl.col("verdict").unique().sort().alias("verdicts"),
        )
        .sort("last_seq")
        .rename({"last_seq": "seq", "last_op": "op"})
        .with_columns(pl.format("#{} {} ({})", "seq", "op", pl.col("status").fill_null("no oplog")).alias("operation"))
    )


def side_by_side(run: DiffRun, limit: int = 5) -> pl.DataFrame:
    """The first `limit` changed rows, one line per differing column, each store's value next to the other.

    Values are shortened as report.md shortens them, floats exact at their width; `differs` names the
    elements (positions, sparse indices) that differ, and vectors get their largest element deviation
    too, since a one-ulp change is invisible in a shortened list.
    """
    a, b = run.sides
    rows = run.diff.filter(pl.col("class") == "changed").sort(run.key).head(limit).collect()
    schema_of = pq.read_schema(run.directory / "diff.parquet")
    types = {name: schema_of.field(name).type for name in schema_of.names}
    vectors = set(deviation_columns(rows))
    lines = []
    for row in rows.iter_rows(named=True):
        for column in row["changed_columns"] or []:
            deviation = row[metric_col(column, METRICS[0])] if column in vectors else None
            kind = types.get(a_col(column))
            lines.append(
                {
                    "key": ", ".join(fmt(row[k]) for k in run.key),
                    "column": column,
                    a: fmt(row[a_col(column)], kind),
                    b: fmt(row[b_col(column)], kind),
                    "differs": describe_change(row[a_col(column)], row[b_col(column)], kind),
                    "max_abs": deviation,
                    "verdict": run.summary.verdict_labels.get(row["verdict"]) if row["verdict"] else None,
                }
            )
    schema = {"key": pl.String, "column": pl.String, a: pl.String, b: pl.String, "differs": pl.String}
    return pl.DataFrame(lines, schema={**schema, "max_abs": pl.Float64, "verdict": pl.String})


# -- figures ---------------------------------------------------------------------------------------


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> Figure:
    """Horizontal bars with their value written at the end: counts are read, not estimated."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 0.4 * len(labels) + 1.2))
    ax = fig.subplots()
    bars = ax.barh(list(labels), list(values), color="#4c72b0")
    ax.bar_label(bars, padding=3)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def deviation_histograms(
    diff: pl.LazyFrame | pl.DataFrame, columns: Sequence[str], measured: Mapping[str, np.ndarray] | None = None
) -> Figure:
    """One log-scale histogram of the largest element deviation per row, per vector column.

    Dense columns read `<col>__max_abs` from `diff`; `measured` gives the values of columns without it
    (sparse vectors: vector_deviations()).

    Log scale because deviations span from one ulp (1e-8) to gross corruption (1e3) and both matter:
    the first says a lossy path (float16, a driver) is involved, the second says the data is wrong.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 2.4 * len(columns) + 0.4))
    axes = fig.subplots(len(columns), 1, squeeze=False)[:, 0]
    for ax, column in zip(axes, columns, strict=True):
        values = measured[column] if measured and column in measured else deviations(diff, column)
        finite = values[np.isfinite(values) & (values > 0)]
        other = values.size - finite.size
        rows = f"{values.size} differing row" + ("s" if values.size != 1 else "")
        ax.set_title(f"{column}: {rows}" + (f" ({other} NaN or 0, not drawn)" if other else ""))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if finite.size:
            low, high = math.log10(finite.min()), math.log10(finite.max())
            bins = np.logspace(math.floor(low), math.ceil(high) + (high == low), 30)
            ax.hist(finite, bins=bins, color="#dd8452")
            ax.set_xscale("log")
        ax.set_xlabel("largest element deviation |a - b|")
        ax.set_ylabel("rows")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, directory: Path, name: str) -> Path:
    """Write `fig` as `<directory>/<name>.png` (what a CI job attaches) and return the path."""
    path = directory / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
