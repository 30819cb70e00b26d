"""Benchmark: milvusdiff compare vs a bare DuckDB scan (the floor) vs datacompy (the peer).

Two snapshots of --rows rows (id, 5 scalars, a 128-dim float32 vector, a JSON column), B derived
from A with 10% of vectors changed, 1% of rows missing, 1% extra, 1% scalar changes and 0.5% JSON
values whose key order alone changed (which must not count). Each contender runs in its own
subprocess so that its peak RSS is its own. Prints; asserts nothing.

    python bench/bench_compare.py              # 1M rows
    python bench/bench_compare.py --rows 100000
    python bench/bench_compare.py --rows 10000000 --skip polars,datacompy
    python bench/bench_compare.py --repeat 3   # on a shared machine: best of 3, interleaved

`--shape foreign` is the input shape of the compare-core issue, files nobody here shaped: plain
pyarrow Parquet (zstd, no milvusdiff metadata) with an int64 key, int32, float64 with 0.2% NaN, unicode
strings, bool, nullable float32, a 128-dim float32 vector and a Parquet JSON column; B in random order
(`--order shuffled`, the default) or by key (`--order sorted`), about 13% of keys differing (1% only in
A, 1% only in B, 6% vectors, 2% float64, 1% strings, 2% JSON values) and 1% JSON values whose key order
alone changed. A last row times the CLI on two 10k-row files of the same shape (the fixed cost), beside
a Python that only imports numpy, pyarrow and DuckDB (the floor under it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from peer_datacompy import peak_rss_mb  # stdlib only, shared with the peer's venv

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
DIM = 128
ROW_GROUP = 100_000
COUNTED = ("only_a", "only_b", "changed")
ENGINES = ("duckdb", "polars", "spark")


def _spec() -> Any:
    from milvusdiff.types.spec import CollectionSpec, FieldSpec

    return CollectionSpec(
        name="bench",
        fields=(
            FieldSpec("id", "INT64", is_primary=True),
            FieldSpec("i32", "INT32"),
            FieldSpec("i64", "INT64"),
            FieldSpec("f32", "FLOAT"),
            FieldSpec("f64", "DOUBLE"),
            FieldSpec("s", "VARCHAR", max_length=32),
            FieldSpec("vec", "FLOAT_VECTOR", dim=DIM),
            FieldSpec("meta", "JSON"),
        ),
    )


def _json(ids: Any, cats: Any, reordered: bool) -> Any:
    import pyarrow.compute as pc

    n, cat = pc.cast(ids, "string"), pc.cast(cats, "string")
    if reordered:
        return pc.binary_join_element_wise('{"n":', n, ',"cat":"c', cat, '"}', "")
    return pc.binary_join_element_wise('{"cat":"c', cat, '","n":', n, "}", "")


def _table(ids: Any, vectors: Any, f64: Any, reordered: Any, schema: Any) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cats = ids % 97
    meta = pc.if_else(
        pa.array(reordered), _json(pa.array(ids), pa.array(cats), True), _json(pa.array(ids), pa.array(cats), False)
    )
    columns = [
        pa.array(ids),
        pa.array((ids % 1_000_003).astype(np.int32)),
        pa.array(ids * 7),
        pa.array((ids / 3).astype(np.float32)),
        pa.array(f64),
        pc.binary_join_element_wise("name-", pc.cast(pa.array(ids % 5000), "string"), ""),
        pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
        meta,
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _writer(path: Path, schema: Any) -> Any:
    """As the snapshot writer does: no dictionary and no statistics for vector columns."""
    import pyarrow.parquet as pq

    plain = [name for name in schema.names if name != "vec"]
    return pq.ParquetWriter(path, schema, use_dictionary=plain, write_statistics=plain)


UNCHANGED, MISSING, VECTOR, SCALAR, REORDERED = range(5)


def generate(rows: int, directory: Path) -> dict[str, int]:
    """Write a.parquet and b.parquet chunk by chunk (10M rows fit in memory) and return the ground truth."""
    import numpy as np

    from milvusdiff.types.convert import snapshot_schema

    schema = snapshot_schema(_spec())
    rng = np.random.default_rng(42)
    pct = rows // 100
    fate = np.full(rows, UNCHANGED, dtype=np.int8)
    order = rng.permutation(rows)
    for what, (start, stop) in zip(
        (MISSING, VECTOR, SCALAR, REORDERED),
        ((0, pct), (pct, 11 * pct), (11 * pct, 12 * pct), (12 * pct, 12 * pct + pct // 2)),
        strict=True,
    ):
        fate[order[start:stop]] = what
    with _writer(directory / "a.parquet", schema) as out_a, _writer(directory / "b.parquet", schema) as out_b:
        for start in range(0, rows, ROW_GROUP):
            ids = np.arange(start, min(start + ROW_GROUP, rows), dtype=np.int64)
            here = fate[start : start + len(ids)]
            vectors = rng.random((len(ids), DIM), dtype=np.float32)
            f64 = ids / 7.0
            out_a.write_table(_table(ids, vectors, f64, np.zeros(len(ids), bool), schema))
            changed = np.flatnonzero(here == VECTOR)
            vectors[changed, rng.integers(0, DIM, len(changed))] += np.float32(0.001)
            f64[here == SCALAR] += 1.0
            keep = here != MISSING
            out_b.write_table(_table(ids[keep], vectors[keep], f64[keep], (here == REORDERED)[keep], schema))
        for start in range(rows, rows + pct, ROW_GROUP):
            extra = np.arange(start, min(start + ROW_GROUP, rows + pct), dtype=np.int64)
            vectors = rng.random((len(extra), DIM), dtype=np.float32)
            out_b.write_table(_table(extra, vectors, extra / 7.0, np.zeros(len(extra), bool), schema))
    truth = {"rows": rows, "only_a": pct, "only_b": pct, "changed": 11 * pct, "unchanged": rows - 12 * pct}
    (directory / "truth.json").write_text(json.dumps(truth))
    return truth


def _foreign_table(ids: Any, rng: Any, fate: Any, side: str) -> Any:
    """One chunk of the foreign shape; B's values are A's, changed where `fate` says."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(ids)
    local = np.random.default_rng(ids[0] if n else 0)  # the same base values for A and B
    f64 = ids / 7.0
    f64[local.random(n) < 0.002] = np.nan
    f32 = (ids / 3).astype(np.float32)
    f32_null = local.random(n) < 0.05
    vectors = local.random((n, DIM), dtype=np.float32)
    words = np.array(["naïve", "Straße", "東京", "café", "😀 smile", "plain", "Ελλάδα", "x"], dtype=object)
    strings = pc.binary_join_element_wise(
        pa.array(words[ids % len(words)]), pc.cast(pa.array(ids % 9973), "string"), "-"
    )
    cat, n_text = pc.cast(pa.array(ids % 97), "string"), pc.cast(pa.array(ids), "string")
    ordered = pc.binary_join_element_wise('{"cat":"c', cat, '","n":', n_text, "}", "")
    if side == "b":
        vectors[fate == F_VECTOR, 0] += np.float32(0.001)
        f64[fate == F_SCALAR] = np.where(np.isnan(f64[fate == F_SCALAR]), 1.0, f64[fate == F_SCALAR] + 1.0)
        strings = pc.if_else(pa.array(fate == F_STRING), pc.binary_join_element_wise(strings, "!", ""), strings)
        other = pc.binary_join_element_wise('{"cat":"d', cat, '","n":', n_text, "}", "")
        reordered = pc.binary_join_element_wise('{"n":', n_text, ',"cat":"c', cat, '"}', "")
        ordered = pc.if_else(pa.array(fate == F_JSON), other, ordered)
        ordered = pc.if_else(pa.array(fate == F_REORDERED), reordered, ordered)
    return pa.table(
        {
            "id": pa.array(ids),
            "i32": pa.array((ids % 1_000_003).astype(np.int32)),
            "f64": pa.array(f64),
            "s": strings,
            "flag": pa.array(ids % 3 == 0),
            "f32n": pa.array(f32, mask=f32_null),
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
            "meta": pa.ExtensionArray.from_storage(pa.json_(), ordered),
        }
    )


F_SAME, F_MISSING, F_VECTOR, F_SCALAR, F_STRING, F_JSON, F_REORDERED = range(7)


def generate_foreign(rows: int, directory: Path, order: str) -> dict[str, int]:
    """a.parquet by key, b.parquet shuffled or sorted; the whole of B is shuffled in memory (1M rows: 0.6 GB)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    pct = rows // 100
    fate = np.full(rows, F_SAME, dtype=np.int8)
    shares = ((F_MISSING, 1), (F_VECTOR, 6), (F_SCALAR, 2), (F_STRING, 1), (F_JSON, 2), (F_REORDERED, 1))
    at, picked = 0, rng.permutation(rows)
    for what, share in shares:
        fate[picked[at : at + share * pct]] = what
        at += share * pct
    ids = np.arange(rows, dtype=np.int64)
    table_a = _foreign_table(ids, rng, fate, "a")
    pq.write_table(table_a, directory / "a.parquet", compression="zstd", row_group_size=ROW_GROUP)
    del table_a
    keep = fate != F_MISSING
    extra = np.arange(rows, rows + pct, dtype=np.int64)
    table_b = pa.concat_tables(
        [
            _foreign_table(ids, rng, fate, "b").filter(pa.array(keep)),
            _foreign_table(extra, rng, np.full(pct, F_SAME, dtype=np.int8), "b"),
        ]
    )
    if order == "shuffled":
        table_b = table_b.take(pa.array(rng.permutation(table_b.num_rows)))
    pq.write_table(table_b, directory / "b.parquet", compression="zstd", row_group_size=ROW_GROUP)
    changed = int(np.isin(fate, (F_VECTOR, F_SCALAR, F_STRING, F_JSON)).sum())
    truth = {"rows": rows, "only_a": pct, "only_b": pct, "changed": changed, "unchanged": rows - pct - changed}
    (directory / "truth.json").write_text(json.dumps(truth))
    return truth


def child_cli(directory: Path) -> dict[str, Any]:
    """Wall time of the CLI, process start included, on two 10k-row files of the foreign shape."""
    small = directory / "small"
    if not (small / "truth.json").exists():
        small.mkdir(parents=True, exist_ok=True)
        generate_foreign(10_000, small, "shuffled")
    argv = [sys.executable, "-m", "milvusdiff", "compare", str(small / "a.parquet"), str(small / "b.parquet")]
    argv += ["--key", "id", "--out", str(small / "diff")]
    shutil.rmtree(small / "diff", ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return {"seconds": seconds, "peak_rss_mb": float("nan"), "counts": None}


def child_imports() -> dict[str, Any]:
    """Wall time of a Python that only imports what any compare needs: the floor under `cli 10k rows`."""
    argv = [sys.executable, "-c", "import numpy, pyarrow, pyarrow.compute, pyarrow.parquet, duckdb"]
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": float("nan"), "counts": None}


# -- children: each runs one contender and prints one JSON line ------------------------------------


def child_floor(a: Path, b: Path) -> dict[str, Any]:
    """Decode every column of both files: no comparison can do less work than this."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    for path in (a, b):
        con.execute(f"SELECT bit_xor(hash(COLUMNS(*))) FROM read_parquet('{path}')").fetchall()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "counts": None}


def child_compare(a: Path, b: Path, engine: str, scratch: Path) -> dict[str, Any]:
    import importlib

    from milvusdiff.compare import compare

    # Imports are outside the timing for every contender (the floor imports duckdb first too, datacompy
    # pandas). pyarrow imports pandas, when installed, at its first numpy conversion: in a notebook it is
    # loaded already, and the CLI keeps it out (cli/lean.py); here it would add 0.2-0.3 s to the first call.
    modules = [f"milvusdiff.compare.engine_{engine}", "milvusdiff.compare.report", "milvusdiff.types.canonical"]
    for module in [*modules, *(["pandas"] if importlib.util.find_spec("pandas") else [])]:
        importlib.import_module(module)
    out = scratch / f"diff-{engine}"
    shutil.rmtree(out, ignore_errors=True)  # deleting the previous run's 100+ MB diff is no part of this one
    started = time.perf_counter()
    summary = compare(a, b, key="id", engine=engine, out=out).summary
    seconds = time.perf_counter() - started
    counts = {name: getattr(summary, name) for name in (*COUNTED, "unchanged")}
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "counts": counts}


def _run_child(argv: list[str]) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _matches(counts: dict[str, int] | None, truth: dict[str, int], names: tuple[str, ...]) -> str:
    if counts is None:
        return "-"
    wrong = [f"{n} {counts.get(n)} != {truth[n]}" for n in names if counts.get(n) != truth[n]]
    return "exact" if not wrong else "; ".join(wrong)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shape", choices=("snapshot", "foreign"), default="snapshot")
    parser.add_argument("--order", choices=("shuffled", "sorted"), default="shuffled", help="B's row order (foreign)")
    parser.add_argument(
        "--skip", default="", help="comma-separated: floor,duckdb,polars,spark,datacompy,cli 10k rows,imports only"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    name = f"rows-{args.rows}" if args.shape == "snapshot" else f"foreign-{args.order}-{args.rows}"
    directory = args.dir or OUT / name
    a, b = directory / "a.parquet", directory / "b.parquet"
    if args.child:
        if args.child == "floor":
            result = child_floor(a, b)
        elif args.child == "cli":
            result = child_cli(OUT)
        elif args.child == "imports":
            result = child_imports()
        else:
            result = child_compare(a, b, args.child, directory)
        print(json.dumps(result))
        return
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if (directory / "truth.json").exists():
        truth = json.loads((directory / "truth.json").read_text())
        print(f"reusing {directory}")
    else:
        truth = (
            generate(args.rows, directory)
            if args.shape == "snapshot"
            else generate_foreign(args.rows, directory, args.order)
        )
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s: {directory}")
    print(f"ground truth: {truth}")
    skip = set(filter(None, args.skip.split(",")))
    me = [sys.executable, __file__, "--rows", str(args.rows), "--dir", str(directory), "--child"]
    commands = {name: [*me, name] for name in ("floor", "duckdb", "polars", "spark")}
    commands["datacompy"] = [str(PEER_PYTHON), str(ROOT / "bench" / "peer_datacompy.py"), str(a), str(b)]
    if args.shape == "foreign":
        commands["cli 10k rows"] = [*me, "cli"]
        commands["imports only"] = [*me, "imports"]
    results: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeat):  # interleaved, so a busy moment on a shared machine hits every contender
        for name, command in commands.items():
            if name in skip:
                continue
            if name == "spark" and importlib.util.find_spec("pyspark") is None:
                results[name] = {"error": "PySpark is not installed: `make test-spark` installs the spark extra"}
                continue
            if name == "datacompy" and not PEER_PYTHON.exists():
                results[name] = {"error": "no .venv-peer: run `make .venv-peer/.installed`"}
                continue
            results[name] = _best(results.get(name), _run_child(command))
    _print(results, truth)


def _best(kept: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The fastest run's time and counts, the largest peak RSS of all runs."""
    if kept is None or "error" in new:
        return new if kept is None or "error" not in kept else kept
    best = dict(new if new["seconds"] < kept["seconds"] else kept)
    best["peak_rss_mb"] = max(kept["peak_rss_mb"], new["peak_rss_mb"])
    return best


def _print(results: dict[str, dict[str, Any]], truth: dict[str, int]) -> None:
    floor = results.get("floor", {}).get("seconds")
    peer = results.get("datacompy", {}).get("seconds")
    print(f"\n{'contender':<22}{'seconds':>9}{'peak RSS MB':>13}{'x floor':>9}{'peer / it':>11}  counts")
    for name, result in results.items():
        if "error" in result:
            print(f"{name:<22}  error: {result['error']}")
            continue
        seconds = result["seconds"]
        names = (*COUNTED, "unchanged") if name in ENGINES else COUNTED
        label = f"milvusdiff {name}" if name in ENGINES else name
        ratio = f"{seconds / floor:.2f}" if floor and name not in ("cli 10k rows", "imports only") else "-"
        speedup = f"{peer / seconds:.2f}" if peer and name in ENGINES else "-"
        print(
            f"{label:<22}{seconds:>9.2f}{result['peak_rss_mb']:>13.0f}{ratio:>9}{speedup:>11}  "
            f"{_matches(result['counts'], truth, names)}"
        )
    duckdb, spark = (results.get(n, {}).get("seconds") for n in ("duckdb", "spark"))
    if duckdb and spark:
        print(f"\nspark local[*] / duckdb: {spark / duckdb:.1f}x (Spark's peak RSS is the driver's; the JVM is apart)")
    print(
        "\ngoals: milvusdiff duckdb <= 1.5x floor, >= 2x faster than datacompy, peak RSS <= 1.2 GB at 1M rows "
        "(<= 2 GB at 10M), counts exact; cli 10k rows <= 0.5 s wall (imports only: the libraries' import time alone)"
    )


if __name__ == "__main__":
    main()
