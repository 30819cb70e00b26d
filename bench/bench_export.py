"""Benchmark: milvusdiff export vs the bare driver it is built on, per source. Prints; asserts nothing.

Milvus Lite against a bare query_iterator loop at the same batch size; PostgreSQL against a bare ADBC
fetch of the same shadow table in the same key order (at 100k and at 4x the rows, to show peak RSS
flat as rows grow); the journal against a bare iter_state_batches loop. Both sides start from a fresh
connection and include it, and import their drivers before the clock starts. Every run is its own
subprocess, so each peak RSS is its own (VmHWM: ru_maxrss would include the forking parent's). Raw
and export runs alternate, and the ratio is the median of the pairs, so that load from other work on
a shared machine falls on both. Goals: Milvus >= 0.9x the raw iterator,
PostgreSQL >= 0.8x the raw ADBC fetch. Exports run as by default (no fsync); the `+fsync` rows show
what a durable export (`--fsync`) pays on top: the disk's write time for the whole snapshot. The
`pg floor` rows are the least any PostgreSQL export to this format can do: the same key-ordered ADBC
fetch, its bytea vectors viewed as fixed_size_list<float>, written with pyarrow's ParquetWriter, and
nothing else (no checksum, key census, manifest, or anything milvusdiff's own).

A second table sets export variants against each other: without the `$digest` column against with it
(the cost of hashing every row; goal: the digest must not halve the export, ratio >= 0.5), and
`--buckets 64` against unbucketed, for Milvus Lite and PostgreSQL.

    python bench/bench_export.py                  # 100k x 128-dim rows
    python bench/bench_export.py --rows 20000 --repeat 1
    python bench/bench_export.py --keep   # prints the data directory it kept, DIR
    python bench/bench_export.py --reuse DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

COLLECTION = "bench_export"
PG_SCHEMA = "bench_export"
INSERT_BATCH = 10_000


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def _spec(name: str, dim: int) -> Any:
    from milvusdiff.types.spec import CollectionSpec, FieldSpec

    return CollectionSpec(name, (FieldSpec("id", "INT64", is_primary=True), FieldSpec("vec", "FLOAT_VECTOR", dim=dim)))


# -- setup (each in its own process: Milvus Lite allows one process per database) -----------------


def setup_milvus(lite: str, rows: int, dim: int) -> None:
    import numpy as np
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(lite)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("vec", metric_type="L2", index_type="FLAT")
    client.create_collection(COLLECTION, schema=schema, index_params=index)
    rng = np.random.default_rng(0)
    for start in range(0, rows, INSERT_BATCH):
        vectors = rng.random((min(INSERT_BATCH, rows - start), dim), dtype=np.float32)
        client.insert(COLLECTION, [{"id": start + i, "vec": v} for i, v in enumerate(vectors)])
    client.flush(COLLECTION)
    client.close()


def setup_pg(pg: str, name: str, rows: int, dim: int) -> None:
    import numpy as np
    import pyarrow as pa

    from milvusdiff.services.pg import ShadowStore
    from milvusdiff.types.convert import snapshot_schema

    spec = _spec(name, dim)
    schema = snapshot_schema(spec)
    store = ShadowStore(pg)
    store.create_table(spec)
    rng = np.random.default_rng(1)
    for start in range(0, rows, INSERT_BATCH):
        n = min(INSERT_BATCH, rows - start)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * dim, dtype=np.float32)), dim)
        table = pa.Table.from_arrays([pa.array(np.arange(start, start + n)), vectors], schema=schema)
        store.stage_upsert(spec, table, "_default").commit()
    store.close()


def setup_journal(path: str, rows: int, dim: int) -> None:
    import numpy as np

    from milvusdiff.services.journal import Journal

    with Journal(path, sync=False) as journal:
        journal.register_collection(_spec(COLLECTION, dim))
        digests = np.random.default_rng(2).bytes(16 * rows)
        for start in range(0, rows, INSERT_BATCH):
            keys = list(range(start, min(start + INSERT_BATCH, rows)))
            seq = journal.begin(COLLECTION, "insert", keys, [digests[16 * k : 16 * k + 16] for k in keys])
            journal.commit(seq)


# -- measured runs -----------------------------------------------------------------------------


def raw_milvus(lite: str, batch: int) -> int:
    from pymilvus import MilvusClient

    client = MilvusClient(lite)
    client.load_collection(COLLECTION)
    iterator = client.query_iterator(COLLECTION, batch_size=batch, output_fields=["*"])
    rows = 0
    while page := iterator.next():
        rows += len(page)
    iterator.close()
    return rows


def raw_pg(pg: str, name: str) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    # The export's query shape: it reads ORDER BY the key (an index scan), so the bare fetch does too.
    with adbc.connect(pg) as conn, conn.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{PG_SCHEMA}"."{name}" ORDER BY id')
        return sum(batch.num_rows for batch in cursor.fetch_record_batch())


def floor_pg(pg: str, name: str, out: str, dim: int) -> int:
    import queue
    import threading

    import adbc_driver_postgresql.dbapi as adbc
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("vec", pa.list_(pa.float32(), dim))])
    batches: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=2)

    failed: list[BaseException] = []

    def fetch() -> None:  # in a thread of its own, so that fetching and writing overlap
        try:
            read()
        except BaseException as exc:
            failed.append(exc)
        finally:
            batches.put(None)

    def read() -> None:
        with adbc.connect(pg) as conn, conn.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(4 << 20)})
            cursor.execute(f'SELECT id, vec FROM "{PG_SCHEMA}"."{name}" ORDER BY id')
            for batch in cursor.fetch_record_batch():
                vec = batch.column(1)
                first = int(np.frombuffer(vec.buffers()[1], np.int32)[vec.offset]) // 4
                floats = pa.Array.from_buffers(pa.float32(), len(vec) * dim, [None, vec.buffers()[2]], offset=first)
                vectors = pa.FixedSizeListArray.from_arrays(floats, dim)
                batches.put(pa.RecordBatch.from_arrays([batch.column(0), vectors], schema=schema))

    reader = threading.Thread(target=fetch)
    reader.start()
    # The cheapest settings: no dictionary, statistics or compression anywhere.
    cheapest = {"use_dictionary": False, "write_statistics": False, "compression": "none", "write_batch_size": 65536}
    rows = 0
    with pq.ParquetWriter(_output(out), schema, **cheapest) as writer:
        while (batch := batches.get()) is not None:
            writer.write_batch(batch)
            rows += batch.num_rows
    reader.join()
    if failed:
        raise failed[0]
    return rows


def raw_journal(path: str) -> int:
    import pyarrow as pa

    from milvusdiff.services.journal import Journal

    with Journal(path) as journal:
        return sum(b.num_rows for b in journal.iter_state_batches(COLLECTION, "id", pa.int64()))


def _output(out: str) -> str:
    return f"{out}-{os.getpid()}"


def export(
    source: str,
    name: str,
    settings_args: list[str],
    out: str,
    batch: int,
    fsync: bool,
    buckets: int | None = None,
    digest: bool = True,
) -> int:
    from milvusdiff.config import Settings
    from milvusdiff.export import api, export_collection
    from milvusdiff.export.prepare import Preparer

    if not digest:  # the export as it was before rows carried `$digest`: what hashing costs
        api.Preparer = lambda spec, digest, buckets: Preparer(spec, digest=False, buckets=buckets)  # type: ignore[assignment,misc]

    lite, pg, journal, home = settings_args
    settings = Settings(lite, None, pg, Path(journal), Path(home))
    target = _output(out)  # a new output per run: replacing the previous one is not the export's cost
    manifest = export_collection(
        name, source=source, out=target, settings=settings, batch_size=batch, fsync=fsync, buckets=buckets
    )
    return manifest.rows_written


def measure(argv: list[str]) -> None:
    """Child process entry: run one contender after its imports, print rows, seconds and peak RSS."""
    kind, args = argv[0], json.loads(argv[1])
    # Each side imports its drivers before the clock starts (importing ADBC alone took 0.2s, which
    # counted against the raw fetch only and made the 100k PostgreSQL ratio look twice as good).
    import adbc_driver_postgresql.dbapi  # noqa: F401

    if kind.startswith("export"):
        import milvusdiff.export.sources.milvus
        import milvusdiff.export.sources.pg  # noqa: F401  (imports are not what is measured)
    else:
        import pymilvus  # noqa: F401
    started = time.perf_counter()
    contenders: dict[str, Callable[..., int]] = {
        "raw_milvus": raw_milvus,
        "raw_pg": raw_pg,
        "raw_journal": raw_journal,
        "floor_pg": floor_pg,
    }
    rows = {**contenders, "export": export}[kind](*args)
    seconds = time.perf_counter() - started
    if kind == "export":
        # Off the clock, and before the next run: left in place, each run's unsynced output would be
        # written back by the kernel during the runs that follow, on the same two cores and disk.
        shutil.rmtree(_output(args[3]))
    if kind == "floor_pg":
        os.unlink(_output(args[2]))
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def child(kind: str, *args: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(args)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired(repeat: int, raw_args: tuple[Any, ...], export_args: tuple[Any, ...]) -> dict[str, Any]:
    """Raw and export runs alternate, so both see the same load on a shared machine; the ratio is the
    median of the pairs' ratios, the speeds and peaks are the best run of each."""
    raws, exports = [], []
    for _ in range(repeat):
        raws.append(child(*raw_args))
        exports.append(child(*export_args))
    ratios = sorted(r["seconds"] / e["seconds"] for r, e in zip(raws, exports, strict=True))
    return {
        "raw": min(raws, key=lambda r: r["seconds"]),
        "export": min(exports, key=lambda r: r["seconds"]),
        "ratio": ratios[len(ratios) // 2],
        "rows": {r["rows"] for r in raws + exports},
        "raw_peak": max(r["peak_rss_mb"] for r in raws),
        "export_peak": max(r["peak_rss_mb"] for r in exports),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        measure(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--setup-milvus":
        setup_milvus(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--repeat", type=int, default=3, help="raw/export pairs per case")
    parser.add_argument("--pg-conn", default=os.environ.get("PG_CONN"), help="default: embedded PostgreSQL")
    parser.add_argument("--reuse", type=Path, help="work directory of an earlier --keep run with the same --rows")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (for --reuse)")
    parser.add_argument("--variants-only", action="store_true", help="only the second table (export variants)")
    options = parser.parse_args()
    os.environ["MILVUSDIFF_PG_SCHEMA"] = PG_SCHEMA
    work = options.reuse or Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        run(options, work)
    finally:
        if not options.keep:
            _clean(options.pg_conn, work)


def _clean(pg_conn: str | None, work: Path) -> None:
    """Remove the data: the work directory, and the benchmark's schema on a PostgreSQL that outlives it."""
    if pg_conn:
        import psycopg

        with psycopg.connect(pg_conn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE')
    else:
        from milvusdiff.services.embedded_pg import stop_embedded_pg

        stop_embedded_pg(work / "pg")
    shutil.rmtree(work, ignore_errors=True)


def run(options: argparse.Namespace, work: Path) -> None:
    lite, journal, home = str(work / "milvus.db"), str(work / "journal"), str(work / "home")
    pg = options.pg_conn
    if pg is None:
        from milvusdiff.services.embedded_pg import ensure_embedded_pg

        pg = ensure_embedded_pg(work / "pg")
    rows, big, dim, batch = options.rows, 4 * options.rows, options.dim, options.batch_size
    started = time.perf_counter()
    if not options.reuse:
        subprocess.run([sys.executable, __file__, "--setup-milvus", lite, str(rows), str(dim)], check=True)
        setup_pg(pg, COLLECTION, rows, dim)
        setup_pg(pg, f"{COLLECTION}_big", big, dim)
        setup_journal(journal, rows, dim)
    print(
        f"setup: {rows:,} x {dim}-dim rows in Milvus Lite, the shadow and the journal "
        f"(+{big:,} in the shadow) in {time.perf_counter() - started:.0f}s; work dir {work}"
    )
    settings = [lite, pg, journal, home]

    def exported(
        source: str, name: str, fsync: bool = False, buckets: int | None = None, digest: bool = True
    ) -> tuple[Any, ...]:
        return ("export", source, name, settings, str(work / f"out-{source}-{name}"), batch, fsync, buckets, digest)

    def floor(name: str) -> tuple[Any, ...]:
        return ("floor_pg", pg, name, str(work / f"floor-{name}.parquet"), dim)

    def raw_pg_of(name: str) -> tuple[Any, ...]:
        return ("raw_pg", pg, name)

    cases = [
        ("milvus", rows, ("raw_milvus", lite, batch), exported("milvus", COLLECTION), 0.9),
        ("pg", rows, raw_pg_of(COLLECTION), exported("pg", COLLECTION), 0.8),
        ("pg", big, raw_pg_of(f"{COLLECTION}_big"), exported("pg", f"{COLLECTION}_big"), 0.8),
        ("pg+fsync", rows, raw_pg_of(COLLECTION), exported("pg", COLLECTION, fsync=True), None),
        ("pg+fsync", big, raw_pg_of(f"{COLLECTION}_big"), exported("pg", f"{COLLECTION}_big", fsync=True), None),
        ("pg floor", rows, raw_pg_of(COLLECTION), floor(COLLECTION), None),
        ("pg floor", big, raw_pg_of(f"{COLLECTION}_big"), floor(f"{COLLECTION}_big"), None),
        ("journal", rows, ("raw_journal", journal), exported("journal", COLLECTION), None),
    ]
    print(
        f"{'source':<9}{'rows':>9}{'raw rows/s':>13}{'export rows/s':>15}{'ratio':>7}{'goal':>7}"
        f"{'raw peak MB':>13}{'export peak MB':>16}"
    )
    for label, n, raw_args, export_args, goal in [] if options.variants_only else cases:
        result = paired(options.repeat, raw_args, export_args)
        assert result["rows"] == {n}, result
        goal_text = f">={goal}" if goal else "-"
        print(
            f"{label:<9}{n:>9,}{n / result['raw']['seconds']:>13,.0f}{n / result['export']['seconds']:>15,.0f}"
            f"{result['ratio']:>7.2f}{goal_text:>7}{result['raw_peak']:>13.0f}{result['export_peak']:>16.0f}"
        )
    big_name = f"{COLLECTION}_big"
    variants = [
        ("milvus", "$digest", rows, exported("milvus", COLLECTION, digest=False), exported("milvus", COLLECTION), 0.5),
        ("pg", "$digest", big, exported("pg", big_name, digest=False), exported("pg", big_name), 0.5),
        (
            "milvus",
            "buckets 64",
            rows,
            exported("milvus", COLLECTION),
            exported("milvus", COLLECTION, buckets=64),
            None,
        ),
        ("pg", "buckets 64", big, exported("pg", big_name), exported("pg", big_name, buckets=64), 0),
    ]
    print(f"\n{'source':<9}{'variant':<12}{'rows':>9}{'base rows/s':>13}{'variant rows/s':>16}{'ratio':>7}{'goal':>7}")
    print(f"{'':<21}(base: the export without the variant; ratio = base time / variant time)")
    for label, variant, n, base_args, variant_args, goal in variants:
        result = paired(options.repeat, base_args, variant_args)
        assert result["rows"] == {n}, result
        goal_text = f">={goal}" if goal else "-"
        print(
            f"{label:<9}{variant:<12}{n:>9,}{n / result['raw']['seconds']:>13,.0f}"
            f"{n / result['export']['seconds']:>16,.0f}{result['ratio']:>7.2f}{goal_text:>7}"
            f"   peak MB {result['raw_peak']:.0f} -> {result['export_peak']:.0f}"
        )


if __name__ == "__main__":
    main()
