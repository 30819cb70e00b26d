"""Benchmark: inserts through the ShadowClient against the same inserts through a bare MilvusClient.

Same run, same data (numpy rows: an int64 id and a 128-dim float32 vector, from one seed), a fresh
Milvus Lite database for each contender, batches of 10,000. Milvus Lite is Python running inside the
client process and keeps working in background threads after an insert, so each contender runs in a
fresh subprocess (nothing left over from the one before), and the contenders are interleaved over
--repeat rounds to spread the noise of a shared machine. The shadow writes to the PostgreSQL server
(PG_CONN, else 127.0.0.1:5432/test) and, with --embedded, to the embedded server too.

Prints, per run, wall seconds, rows/s and the client process's CPU seconds (Milvus Lite included,
PostgreSQL's own processes not), then the ratio of median throughputs (goal: shadow >= 0.7x bare)
and, with --phases, where the shadow's time went. Asserts nothing.

    python bench/bench_insert.py
    python bench/bench_insert.py --rows 30000 --repeat 1 --embedded --phases --profile
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import functools
import json
import logging
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SERVER_PG = "postgresql://postgres@127.0.0.1:5432/test"
COLLECTION = "bench_insert"


# -- one contender, in its own process ------------------------------------------------------------------


def make_batches(rows: int, batch: int, dim: int) -> list[list[dict[str, Any]]]:
    import numpy as np

    vectors = np.random.default_rng(42).standard_normal((rows, dim), dtype=np.float32)
    return [
        [{"id": i, "vector": vectors[i]} for i in range(start, min(start + batch, rows))]
        for start in range(0, rows, batch)
    ]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_timers() -> collections.defaultdict[str, float]:
    """Wrap the steps of a shadow write with wall-clock accumulators (the phases of --phases)."""
    import pymilvus

    from milvusdiff.client import shadow
    from milvusdiff.services import journal, pg

    spent: collections.defaultdict[str, float] = collections.defaultdict(float)

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        setattr(owner, name, timed)

    wrap(shadow, "rows_to_table", "rows_to_table")
    wrap(shadow, "row_digests", "row_digests")
    wrap(journal.Journal, "begin", "journal intent (fsync)")
    wrap(pg.ShadowStore, "stage_upsert", "PostgreSQL stage (COPY + upsert)")
    wrap(pymilvus.MilvusClient, "insert", "Milvus insert")
    wrap(pg.PendingWrite, "commit", "PostgreSQL commit")
    wrap(journal.Journal, "commit", "journal commit (fsync)")
    return spent


def worker(args: argparse.Namespace) -> dict[str, Any]:
    logging.disable(logging.WARNING)
    spent = phase_timers() if args.phases and args.contender == "shadow" else None
    from pymilvus import MilvusClient

    from milvusdiff.client.shadow import ShadowClient

    batches = make_batches(args.rows, args.batch, args.dim)
    workdir = Path(args.workdir)
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_{tag}"
    client: MilvusClient
    if args.contender == "bare":
        client = MilvusClient(str(workdir / f"bare-{tag}.db"))
    else:
        client = ShadowClient(
            str(workdir / f"shadow-{tag}.db"),
            pg_conn=args.pg,
            journal_path=workdir / f"journal-{tag}",
            pg_schema=schema,
        )
    client.create_collection(COLLECTION, dimension=args.dim, metric_type="L2")
    if spent is not None:
        spent.clear()
    profiler = cProfile.Profile() if args.profile else None
    cpu_before, started = cpu_seconds(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for batch in batches:
        client.insert(COLLECTION, batch)
    if profiler is not None:
        profiler.disable()
    result: dict[str, Any] = {"seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu_before}
    if isinstance(client, ShadowClient):
        statuses = sorted({op["status"] for op in client.journal.iter_ops(COLLECTION)})
        result["check"] = f"PostgreSQL rows {client.shadow.count(COLLECTION)}, journal ops {statuses}"
        with client.shadow.connection() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if spent is not None:
        result["phases"] = dict(spent)
    client.close()
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        print(f"--- profile of the {args.contender} inserts (main thread), by own time ---", file=sys.stderr)
        stats.sort_stats("tottime").print_stats(15)
        print("--- by cumulative time ---", file=sys.stderr)
        stats.sort_stats("cumulative").print_stats(25)
    return result


# -- the driver -----------------------------------------------------------------------------------------


def run_contender(args: argparse.Namespace, contender: str, pg: str, workdir: str) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        contender,
        "--rows",
        str(args.rows),
        "--batch",
        str(args.batch),
        "--dim",
        str(args.dim),
        "--pg",
        pg,
        "--workdir",
        workdir,
    ]
    command += ["--phases"] if args.phases else []
    command += ["--profile"] if args.profile else []
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of every contender")
    parser.add_argument("--pg", default=os.environ.get("PG_CONN") or SERVER_PG, help="the PostgreSQL server")
    parser.add_argument("--embedded", action="store_true", help="also run the shadow on the embedded PostgreSQL")
    parser.add_argument("--phases", action="store_true", help="time each step of the shadow writes")
    parser.add_argument("--profile", action="store_true", help="cProfile each contender's main thread (stderr)")
    parser.add_argument("--worker", choices=["bare", "shadow"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.contender = args.worker
        print(json.dumps(worker(args)))
        return

    print(f"{args.rows:,} rows of {args.dim}-dim float32 vectors in batches of {args.batch:,} (numpy rows)")
    print(f"each contender in a fresh process, {args.repeat} interleaved round(s); load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench_insert_") as workdir:
        contenders: list[tuple[str, str, str]] = [
            ("bare MilvusClient", "bare", ""),
            ("shadow, PG server", "shadow", args.pg),
        ]
        if args.embedded:
            from milvusdiff.services.embedded_pg import ensure_embedded_pg, stop_embedded_pg

            embedded = ensure_embedded_pg(Path(workdir) / "pg")
            contenders.append(("shadow, embedded PG", "shadow", embedded))
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in contenders}
        for _ in range(args.repeat):
            for label, contender, pg in contenders:
                result = run_contender(args, contender, pg or args.pg, workdir)
                results[label].append(result)
                rate = args.rows / result["seconds"]
                print(
                    f"  {label:<22} {result['seconds']:7.2f} s  {rate:9,.0f} rows/s  cpu {result['cpu']:6.2f} s  "
                    f"{result.get('check', '')}",
                    flush=True,
                )
                for phase, seconds in sorted(result.get("phases", {}).items(), key=lambda kv: -kv[1]):
                    print(f"      {phase:<34} {seconds:6.2f} s")
        if args.embedded:
            stop_embedded_pg(Path(workdir) / "pg")

    def median_rate(label: str) -> float:
        return args.rows / statistics.median(r["seconds"] for r in results[label])

    def median_cpu(label: str) -> float:
        return statistics.median(r["cpu"] for r in results[label])

    bare_rate, bare_cpu = median_rate("bare MilvusClient"), median_cpu("bare MilvusClient")
    print("medians:")
    for label, _, _ in contenders:
        print(
            f"  {label:<22} {median_rate(label):9,.0f} rows/s  ratio {median_rate(label) / bare_rate:4.2f}x bare  "
            f"(client CPU ratio {bare_cpu / median_cpu(label):4.2f}x)"
        )


if __name__ == "__main__":
    main()
