"""The distributed engine: the same plan on Apache Spark, for snapshots one machine cannot diff in time.

Spark moves and joins rows; every equality decision is made by the shared comparator (comparator.py),
run inside Spark's Python workers on Arrow batches (`mapInArrow`), so Spark and the local engines
agree by construction. Only the differing rows come back to the driver, where the common finishing
pass (finish.py) writes diff.parquet exactly as for DuckDB and Polars.

When both snapshots carry `$digest` (milvusdiff exports do), the stages are:
  (b) join key + `$digest` only, which makes the candidates: keys on one side only, or whose digests
      differ. Equal digests mean equal rows under any tolerance, so nothing else can differ;
  (c) semi-join each side with the candidate keys and join full rows for the candidates only.
So the wide columns (vectors) cross the network only for candidate rows. Buckets whose manifests
already agree are never read at all (stage (a), `buckets.pruned_files`, decided before Spark starts).

The session: `local[*]` by default, `options.spark_master` for a cluster, and an `sc://` URL for Spark
Connect (Databricks, EMR, Dataproc, Spark on Kubernetes) with no JVM on the caller's side. PySpark is
the optional extra `milvusdiff[spark]`; `import milvusdiff` never loads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Iterator
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.compare.comparator import Kind, differs
from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan import Plan, a_col, b_col, flag_col
from milvusdiff.compare.tolerance import Tolerance
from milvusdiff.errors import CompareError, ConfigError
from milvusdiff.snapshot_format import DIGEST_COLUMN as DIGEST
from milvusdiff.snapshot_format import PARTITION_COLUMN as PARTITION

_IN_A, _IN_B = "__in_a", "__in_b"
EXTRA_HINT = "the spark engine needs PySpark: pip install 'milvusdiff[spark]'"


def _pyspark() -> Any:
    # PySpark warns about pandas 3 at every Arrow call; milvusdiff hands it Arrow only, never pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        import pyspark.sql  # noqa: F401
        from pyspark.sql import functions
    except ImportError as exc:
        raise ConfigError(EXTRA_HINT) from exc
    return functions


def session(master: str | None = None) -> Any:
    """The active SparkSession, or a new one on `master` (local[*] by default; `sc://...` is Spark Connect)."""
    _pyspark()
    from pyspark.sql import SparkSession

    # Spark's Python workers must be this interpreter, or they will not find milvusdiff and pyarrow.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName("milvusdiff")
    if master and master.startswith("sc://"):
        builder = builder.remote(master)
    else:
        builder = builder.master(master or "local[*]").config("spark.ui.enabled", "false")
        if not master or master.startswith("local"):
            # Left alone, a local driver binds to the machine's first non-loopback address.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        builder = builder.config("spark.ui.showConsoleProgress", "false").config("spark.sql.session.timeZone", "UTC")
        if not master or master.startswith("local"):
            # One machine: Spark's 200 shuffle partitions are 200 tiny tasks each; a few per core do.
            builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM or the cluster is missing: one line, not a Java stack trace
        raise ConfigError(f"cannot start Spark ({master or 'local[*]'}): {str(exc).strip().splitlines()[0]}") from exc
    if not _is_connect(spark):
        spark.sparkContext.setLogLevel("ERROR")
    # Milvus field names are case-sensitive; Spark's are not by default (`val` and `VAL` would be one).
    spark.conf.set("spark.sql.caseSensitive", "true")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    return spark


def _is_connect(spark: Any) -> bool:
    """A Spark Connect session (an `sc://` master, or one made active by SPARK_REMOTE): it has no SparkContext."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _ship(spark: Any, scratch: Path) -> None:
    """Over Spark Connect, send milvusdiff's own source to the session as a Python artifact.

    The cluster's Python workers run `decide`, which lives in milvusdiff, and a Databricks, EMR or
    Dataproc cluster does not have milvusdiff installed (or has another version). Workers put a session's
    Python artifacts ahead of their own packages, so they run the driver's comparator; what it imports
    beyond the package (numpy, pyarrow) is what PySpark's Arrow support already needs there. The file
    name carries a hash of the content: a session refuses a second, different artifact of one name."""
    import hashlib
    import zipfile

    package = Path(__file__).resolve().parents[1]
    sources = sorted(package.rglob("*.py"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    archive = scratch / f"milvusdiff-{digest.hexdigest()[:16]}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for source in sources:
            bundle.write(source, source.relative_to(package.parent))
    spark.addArtifacts(str(archive), pyfile=True)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _read(spark: Any, side: Side, plan: Plan, label: str) -> tuple[Any, Any]:
    """(rows with keys and the plan's columns renamed for the join, key + digest only or None)."""
    f = _pyspark()
    frame = spark.read.parquet(*side.file_list)
    keys = [f.col(_q(k.name if label == "a" else k.b_name)).alias(f"__k{i}_{label}") for i, k in enumerate(plan.keys)]
    rename = a_col if label == "a" else b_col
    values = [f.col(_q(c.name if label == "a" else c.b_name)).alias(rename(c.name)) for c in plan.columns]
    marker = f.lit(True).alias(_IN_A if label == "a" else _IN_B)
    rows = frame.select(*keys, *values, marker)
    digests = None
    if DIGEST in side.schema.names:
        # The digest covers every field but not the partition a row sits in: that is compared beside it.
        placed = [f.col(_q(PARTITION)).alias(f"__p_{label}")] if PARTITION in side.schema.names else []
        digests = frame.select(*keys, f.col(_q(DIGEST)).alias(f"__d_{label}"), *placed)
    return rows, digests


def _key_match(left: Any, right: Any, n: int, left_label: str, right_label: str) -> Any:
    """Null-safe equality of every key column: null keys match each other, as in the other engines."""
    return reduce(
        lambda acc, cond: acc & cond,
        [left[f"__k{i}_{left_label}"].eqNullSafe(right[f"__k{i}_{right_label}"]) for i in range(n)],
    )


def _duplicate_keys(rows_a: Any, rows_b: Any, n: int) -> Any:
    """Keys that occur more than once on either side, named __k{i}_d."""
    sides = []
    for frame, label in ((rows_a, "a"), (rows_b, "b")):
        keys = [f"__k{i}_{label}" for i in range(n)]
        counted = frame.groupBy(*keys).count().filter("count > 1").select(*keys)
        sides.append(counted.toDF(*[f"__k{i}_d" for i in range(n)]))
    return sides[0].union(sides[1]).distinct()


def _without(frame: Any, keys: Any, n: int, label: str, how: str) -> Any:
    return frame.join(keys, _key_match(frame, keys, n, label, "d"), how)


def _candidates(digests_a: Any, digests_b: Any, n: int) -> Any:
    """Stage (b): keys whose digests differ or exist on one side only, from key + digest columns alone."""
    f = _pyspark()
    joined = digests_a.join(digests_b, _key_match(digests_a, digests_b, n, "a", "b"), "full")
    differ = f.col("__d_a").isNull() | f.col("__d_b").isNull() | (f.col("__d_a") != f.col("__d_b"))
    placed_a, placed_b = "__p_a" in digests_a.columns, "__p_b" in digests_b.columns
    if placed_a or placed_b:
        partition_a = f.col("__p_a") if placed_a else f.lit(None)
        partition_b = f.col("__p_b") if placed_b else f.lit(None)
        differ = differ | ~partition_a.eqNullSafe(partition_b)
    keys = [f.coalesce(f.col(f"__k{i}_a"), f.col(f"__k{i}_b")).alias(f"__k{i}_d") for i in range(n)]
    return joined.filter(differ).select(*keys)


def _counted_duplicates(rows_a: Any, rows_b: Any, dups: Any, plan: Plan) -> Any:
    f = _pyspark()
    n = len(plan.keys)
    tagged = []
    for frame, label in ((rows_a, "a"), (rows_b, "b")):
        keys = [f.col(f"__k{i}_{label}").alias(f"__k{i}_d") for i in range(n)]
        tagged.append(frame.select(*keys, f.lit(int(label == "a")).alias("ina"), f.lit(int(label == "b")).alias("inb")))
    both = tagged[0].union(tagged[1])
    others = dups.toDF(*[f"__k{i}_x" for i in range(n)])  # distinct names: both sides are called __k{i}_d
    both = both.join(others, _key_match(both, others, n, "d", "x"), "left_semi")
    counts = both.groupBy(*[f"__k{i}_d" for i in range(n)]).agg(
        f.sum("ina").cast("long").alias("count_a"), f.sum("inb").cast("long").alias("count_b")
    )
    cls = f.when(f.col("count_a") > 1, f.lit("duplicate_a")).otherwise(f.lit("duplicate_b")).alias("class")
    names = [f.col(f"__k{i}_d").alias(k.name) for i, k in enumerate(plan.keys)]
    return counts.select(*names, cls, "count_a", "count_b")


def _rules(plan: Plan) -> list[tuple[str, str, str, Kind, Tolerance]]:
    """What the workers need of the plan, as plain picklable values."""
    return [(c.name, a_col(c.name), b_col(c.name), c.kind, c.tolerance) for c in plan.columns]


def decide(batches: Iterator[pa.RecordBatch], keys: list[str], rules: list[Any]) -> Iterator[pa.RecordBatch]:
    """Runs in Spark's Python workers: classify each joined row and decide every column with the comparator.

    Emits only differing rows, with one flag per column (null unless the key is on both sides) and the
    values of flagged columns only, as every engine hands rows to the finishing pass."""
    for batch in batches:
        in_a = batch.column(_IN_A).is_valid().to_numpy(zero_copy_only=False)
        in_b = batch.column(_IN_B).is_valid().to_numpy(zero_copy_only=False)
        both = in_a & in_b
        flags = {}
        for name, col_a, col_b, kind, tolerance in rules:
            flag = np.zeros(batch.num_rows, dtype=bool)
            rows = np.flatnonzero(both)
            if rows.size:
                take = pa.array(rows)
                flag[rows] = differs(kind, batch.column(col_a).take(take), batch.column(col_b).take(take), tolerance)
            flags[name] = flag
        keep = ~both | reduce(np.logical_or, flags.values(), np.zeros(batch.num_rows, dtype=bool))
        if not keep.any():
            continue
        mask = pa.array(keep)
        kept_both = pa.array(both[keep])
        cls = np.where(~in_b, "only_a", np.where(~in_a, "only_b", "changed"))[keep]
        out = {k: batch.column(k).filter(mask) for k in keys}
        out["class"] = pa.array(cls, pa.string())
        out["count_a"] = pa.array(in_a[keep].astype(np.int64))
        out["count_b"] = pa.array(in_b[keep].astype(np.int64))
        for name, _, _, _, _ in rules:
            out[flag_col(name)] = pc.if_else(kept_both, pa.array(flags[name][keep]), None)
        for name, col_a, col_b, _, _ in rules:
            for column in (col_a, col_b):
                out[column] = pc.if_else(pa.array(flags[name][keep]), batch.column(column).filter(mask), None)
        yield pa.RecordBatch.from_pydict(out)  # in the order of the declared schema: Spark reads by position


def unsettled(side_a: Side, side_b: Side, plan: Plan, options: CompareOptions) -> tuple[Side, Side] | None:
    """Stage (a) on co-partitioned snapshots: the sides restricted to the part files of the buckets whose
    manifests disagree (None when every bucket is settled); other inputs are returned whole."""
    from milvusdiff.compare.staged.layout import co_partitioned

    layout = co_partitioned(side_a, side_b, plan, options) if options.staged else "not staged"
    if isinstance(layout, str):
        return side_a, side_b
    buckets = layout.unsettled
    if not buckets:
        return None
    files_a = tuple(f for b in buckets for f in layout.files_a[b])
    files_b = tuple(f for b in buckets for f in layout.files_b[b])
    return dataclasses.replace(side_a, files=files_a), dataclasses.replace(side_b, files=files_b)


def build(spark: Any, plan: Plan, side_a: Side, side_b: Side, limit: int | None) -> Any:
    """The Spark DataFrame of differing rows in the engines' intermediate form (before finishing)."""
    import pyspark.sql.types as T

    f = _pyspark()
    n = len(plan.keys)
    all_a, digests_a = _read(spark, side_a, plan, "a")
    all_b, digests_b = _read(spark, side_b, plan, "b")
    rows_a, rows_b = all_a, all_b
    dups = _duplicate_keys(all_a, all_b, n).cache()
    has_dups = bool(dups.limit(1).count())
    if has_dups:
        rows_a = _without(rows_a, dups, n, "a", "left_anti")
        rows_b = _without(rows_b, dups, n, "b", "left_anti")
    if digests_a is not None and digests_b is not None:
        candidates = _candidates(digests_a, digests_b, n)
        rows_a = _without(rows_a, candidates, n, "a", "left_semi")
        rows_b = _without(rows_b, candidates, n, "b", "left_semi")
    joined = rows_a.join(rows_b, _key_match(rows_a, rows_b, n, "a", "b"), "full")
    keys = [f.coalesce(f.col(f"__k{i}_a"), f.col(f"__k{i}_b")).alias(k.name) for i, k in enumerate(plan.keys)]
    values = [f.col(name) for c in plan.columns for name in (a_col(c.name), b_col(c.name))]
    joined = joined.select(*keys, *values, _IN_A, _IN_B)
    fields = [joined.schema[k.name] for k in plan.keys]
    fields += [T.StructField("class", T.StringType()), T.StructField("count_a", T.LongType())]
    fields += [T.StructField("count_b", T.LongType())]
    fields += [T.StructField(flag_col(c.name), T.BooleanType()) for c in plan.columns]
    fields += [joined.schema[name] for c in plan.columns for name in (a_col(c.name), b_col(c.name))]
    key_names, rules = plan.key_names, _rules(plan)
    result = joined.mapInArrow(lambda batches: decide(batches, key_names, rules), T.StructType(fields))
    if limit is not None:
        result = result.limit(limit)
    if has_dups:
        result = result.unionByName(_counted_duplicates(all_a, all_b, dups, plan), allowMissingColumns=True)
    return result


@contextlib.contextmanager
def stream(
    plan: Plan, side_a: Side, side_b: Side, options: CompareOptions, scratch: Path
) -> Iterator[Iterator[pa.RecordBatch]]:
    """The differing rows, collected from Spark as Arrow (only they reach the driver)."""
    sides = unsettled(side_a, side_b, plan, options)
    if sides is None:
        yield iter(())
        return
    spark = session(options.spark_master)
    try:
        if _is_connect(spark):
            _ship(spark, scratch)
        table = build(spark, plan, *sides, options.max_diffs).toArrow()
    except ConfigError:
        raise
    except Exception as exc:
        raise CompareError(f"Spark: {reason(exc)}") from exc
    yield iter(table.to_batches())


def reason(exc: Exception) -> str:
    """One line for a failed Spark job: Spark's first line, except when a Python worker (where the comparator
    runs) failed. Then Spark's first line only says so ("An exception was thrown from the Python worker"),
    and the cause a cluster's user must act on (a package missing there) is the last line of the worker's
    traceback, before any JVM stack trace."""
    from pyspark.errors import PythonException

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, PythonException):
        worker = lines[: lines.index("JVM stacktrace:")] if "JVM stacktrace:" in lines else lines
        return f"a Python worker failed: {worker[-1]}"
    return lines[0]
