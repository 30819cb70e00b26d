"""Benchmark: a concurrent mixed write load through one ShadowClient against the same load through a bare
pymilvus MilvusClient, in the same run; then validate the shadowed collections.

The load: --threads threads (default 4) share one client; each performs --ops row operations (default
50,000) on two collections, alternating between them call by call, in calls of --batch rows (default
100). The mix, counted in rows: 50% inserts of new keys, 25% upserts of live keys, 15% deletes by ids,
10% deletes by filter (half `id in [...]`, half a key range holding exactly the chosen live keys). Every
thread owns a key block per collection and tracks its live keys while the calls are planned, so the calls
are computed once, before any timing, and replayed identically against both clients; the final key count
of each collection is known in advance. With --overlap every thread plans on the same key block instead, so
threads insert, upsert and delete the same keys at once (the final count is then not known in advance):
the case where shadow writes race each other in PostgreSQL (row locks, deadlocks).

Each contender writes to a fresh Milvus Lite database. The shadow uses the PostgreSQL server in PG_CONN
(else 127.0.0.1:5432/test), or an embedded server with --embedded. The bare client runs first and last
(a drift check: the machine is shared). Prints throughputs, the overhead ratio and the validate outcome
(zero differences expected) and the SyncErrors the ShadowClient raised (zero expected: a bare client
accepts every one of these writes); asserts nothing.

    python bench/bench_concurrent.py
    python bench/bench_concurrent.py --ops 5000 --embedded
    python bench/bench_concurrent.py --ops 5000 --overlap
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from pymilvus import DataType, MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import SyncError

SERVER_PG = "postgresql://postgres@127.0.0.1:5432/test"
COLLECTIONS = ("bench_concurrent_a", "bench_concurrent_b")
MIX = {"insert": 0.50, "upsert": 0.25, "delete_ids": 0.15, "delete_filter": 0.10}
KEY_BLOCK = 1 << 32  # keys of one (thread, collection): [block * KEY_BLOCK, (block + 1) * KEY_BLOCK)


@dataclass(frozen=True)
class Call:
    op: str
    collection: str
    rows: int  # rows this call writes or deletes
    data: list[dict[str, Any]] | None = None
    ids: list[int] | None = None
    filter: str | None = None


class KeyBlock:
    """The live keys of one thread in one collection, as the planned calls leave them."""

    def __init__(self, first: int) -> None:
        self.next = first
        self.live = np.zeros(0, dtype=np.int64)

    def new(self, n: int) -> np.ndarray:
        keys = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        self.live = np.concatenate([self.live, keys])
        return keys

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.sort(rng.choice(self.live, size=n, replace=False))

    def window(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n consecutive live keys: the key range from the first to the last holds exactly them."""
        ordered = np.sort(self.live)
        start = int(rng.integers(len(ordered) - n + 1))
        return ordered[start : start + n]

    def drop(self, keys: np.ndarray) -> None:
        self.live = np.setdiff1d(self.live, keys, assume_unique=True)


def rows_for(keys: np.ndarray, rng: np.random.Generator, dim: int, version: int) -> list[dict[str, Any]]:
    vectors = rng.standard_normal((len(keys), dim), dtype=np.float32)
    prices = rng.random(len(keys)) * 100
    return [
        {"id": int(k), "title": f"item {k} v{version}", "price": float(p), "emb": v}
        for k, p, v in zip(keys.tolist(), prices.tolist(), vectors, strict=True)
    ]


def plan_thread(
    index: int, ops: int, batch: int, dim: int, seed: int, overlap: bool = False
) -> tuple[list[Call], list[int]]:
    """The calls of one thread, and how many of its keys each collection holds at the end (as if alone: with
    `overlap`, every thread plans on the same key block)."""
    rng = np.random.default_rng([seed, index])
    owner = 0 if overlap else index
    blocks = [KeyBlock((owner * len(COLLECTIONS) + c + 1) * KEY_BLOCK) for c in range(len(COLLECTIONS))]
    names, weights = list(MIX), np.array(list(MIX.values()))
    calls: list[Call] = []
    done = 0
    while done < ops:
        which = len(calls) % len(COLLECTIONS)
        block, collection = blocks[which], COLLECTIONS[which]
        n = min(batch, ops - done)
        op = names[int(rng.choice(len(names), p=weights))]
        if op != "insert" and len(block.live) < n:
            op = "insert"
        if op == "insert":
            calls.append(Call("insert", collection, n, data=rows_for(block.new(n), rng, dim, len(calls))))
        elif op == "upsert":
            calls.append(Call("upsert", collection, n, data=rows_for(block.sample(rng, n), rng, dim, len(calls))))
        elif op == "delete_ids":
            keys = block.sample(rng, n)
            block.drop(keys)
            calls.append(Call("delete_ids", collection, n, ids=keys.tolist()))
        else:
            if rng.random() < 0.5:
                keys = block.sample(rng, n)
                expr = f"id in {keys.tolist()}"
            else:
                keys = block.window(rng, n)
                expr = f"id >= {keys[0]} and id <= {keys[-1]}"
            block.drop(keys)
            calls.append(Call("delete_filter", collection, n, filter=expr))
        done += n
    return calls, [len(b.live) for b in blocks]


def create_collections(client: MilvusClient, dim: int) -> None:
    for name in COLLECTIONS:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("title", DataType.VARCHAR, max_length=64)
        schema.add_field("price", DataType.DOUBLE)
        schema.add_field("emb", DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        index.add_index("emb", index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=schema, index_params=index)


def send(client: MilvusClient, call: Call) -> None:
    if call.op == "insert":
        client.insert(call.collection, call.data)
    elif call.op == "upsert":
        client.upsert(call.collection, call.data)
    elif call.op == "delete_ids":
        client.delete(call.collection, ids=call.ids)
    else:
        client.delete(call.collection, filter=call.filter)


def timed_load(client: MilvusClient, plans: list[list[Call]]) -> tuple[float, int]:
    """Seconds from the moment every thread may start to the moment the last one ends, and the number of
    calls that raised SyncError (counted, and the thread goes on; any other error stops the run)."""
    start = threading.Barrier(len(plans) + 1)
    failures: list[BaseException] = []
    sync_errors: list[SyncError] = []

    def worker(calls: list[Call]) -> None:
        start.wait()
        try:
            for call in calls:
                try:
                    send(client, call)
                except SyncError as exc:
                    sync_errors.append(exc)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in plans]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} thread(s) failed; first: {failures[0]!r}") from failures[0]
    if sync_errors:
        print(f"  first SyncError: {sync_errors[0]}")
    return seconds, len(sync_errors)


def run_bare(workdir: Path, plans: list[list[Call]], dim: int) -> tuple[float, int]:
    client = MilvusClient(str(workdir / f"bare-{uuid.uuid4().hex[:8]}.db"))
    try:
        create_collections(client, dim)
        return timed_load(client, plans)
    finally:
        client.close()


def run_shadow(workdir: Path, settings: Settings, plans: list[list[Call]], dim: int) -> tuple[float, int]:
    client = ShadowClient.from_settings(settings)
    try:
        create_collections(client, dim)
        return timed_load(client, plans)
    finally:
        client.close()


def report(
    label: str, rows: int, calls: int, seconds: float, sync_errors: int, bare_seconds: float | None = None
) -> None:
    overhead = (
        f"  {bare_seconds / seconds:.2f}x bare throughput, {seconds / bare_seconds:.2f}x its time"
        if bare_seconds
        else ""
    )
    print(
        f"{label:<34} {seconds:8.2f} s  {rows / seconds:9,.0f} rows/s  {calls / seconds:7,.1f} calls/s  "
        f"SyncErrors {sync_errors}{overhead}"
    )


def validate_shadow(settings: Settings, expected: dict[str, int] | None, workdir: Path) -> None:
    """`milvusdiff validate` in a process of its own, as after any real load. (In this process, pymilvus' cached
    channel to the in-process Milvus Lite server tends to be closed by then, GOAWAY "too many pings".)"""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(settings.milvus_uri)  # let the child open the Lite database
    env = {
        **os.environ,
        "MILVUS_URI": settings.milvus_uri,
        "PG_CONN": str(settings.pg_conn),
        "MILVUSDIFF_JOURNAL": str(settings.journal_path),
    }
    command = [str(Path(sys.executable).with_name("milvusdiff")), "validate", "--format", "json"]  # --quiet: no JSON
    for collection in COLLECTIONS:
        began = time.perf_counter()
        out = workdir / f"validate-{collection}"
        done = subprocess.run(
            [*command, "--collection", collection, "--out", str(out)], env=env, capture_output=True, text=True
        )
        if done.returncode not in (0, 1):
            print(f"validate {collection}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
            continue
        s = json.loads(done.stdout)
        differences = s["only_a"] + s["only_b"] + s["changed"] + s["duplicate_a"] + s["duplicate_b"]
        print(
            f"validate {collection}: {differences} differences (only_a {s['only_a']}, only_b {s['only_b']}, "
            f"changed {s['changed']}, duplicates {s['duplicate_a']}/{s['duplicate_b']}), "
            f"rows milvus {s['rows_a']} / pg {s['rows_b']} / planned "
            f"{expected[collection] if expected else 'n/a (overlapping keys)'}, "
            f"exit {done.returncode}, {time.perf_counter() - began:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ops", type=int, default=50_000, help="row operations per thread")
    parser.add_argument("--batch", type=int, default=100, help="rows per call")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default=os.environ.get("PG_CONN") or SERVER_PG, help="PostgreSQL server")
    parser.add_argument("--embedded", action="store_true", help="shadow into an embedded PostgreSQL instead")
    parser.add_argument("--overlap", action="store_true", help="every thread writes the same keys")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    planned = [plan_thread(t, args.ops, args.batch, args.dim, args.seed, args.overlap) for t in range(args.threads)]
    plans = [calls for calls, _ in planned]
    expected = None if args.overlap else {c: sum(live[i] for _, live in planned) for i, c in enumerate(COLLECTIONS)}
    rows = sum(call.rows for calls in plans for call in calls)
    n_calls = sum(len(calls) for calls in plans)
    by_op: dict[str, int] = {}
    for call in (c for calls in plans for c in calls):
        by_op[call.op] = by_op.get(call.op, 0) + call.rows
    mix = ", ".join(f"{op} {n:,}" for op, n in by_op.items())
    keys = "the same keys" if args.overlap else "keys of their own"
    print(f"{args.threads} threads x {args.ops:,} row operations on {len(COLLECTIONS)} collections, {keys},")
    print(f"  {n_calls:,} calls of up to {args.batch} rows, {args.dim}-dim vectors; rows: {mix}")

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    os.environ["MILVUSDIFF_PG_SCHEMA"] = schema  # the shadow and validate's export both read it
    with tempfile.TemporaryDirectory(prefix="bench_concurrent_") as tmp:
        workdir = Path(tmp)
        if args.embedded:
            from milvusdiff.services.embedded_pg import ensure_embedded_pg

            pg_conn, pg_label = ensure_embedded_pg(workdir / "pg"), "embedded PostgreSQL"
        else:
            pg_conn, pg_label = args.pg, "PostgreSQL server"
        settings = Settings(
            milvus_uri=str(workdir / "shadow.db"),
            milvus_token=None,
            pg_conn=pg_conn,
            journal_path=workdir / "journal",
            home=workdir,
        )
        try:
            contenders: list[tuple[str, Callable[[], tuple[float, int]], bool]] = [
                ("bare MilvusClient", lambda: run_bare(workdir, plans, args.dim), True),
                (f"ShadowClient, {pg_label}", lambda: run_shadow(workdir, settings, plans, args.dim), False),
                ("bare MilvusClient (again)", lambda: run_bare(workdir, plans, args.dim), True),
            ]
            bare: float | None = None
            for label, run, is_bare in contenders:
                seconds, sync_errors = run()
                report(label, rows, n_calls, seconds, sync_errors, None if is_bare else bare)
                bare = seconds if is_bare and bare is None else bare
            validate_shadow(settings, expected, workdir)
        finally:
            with psycopg.connect(pg_conn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
