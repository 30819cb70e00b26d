"""Concurrent load: four writer threads through one ShadowClient on two collections at once, then
validate both: Milvus, the PostgreSQL shadow and the journal must agree exactly, with no difference.

The two collections differ on purpose (an INT64 key and a VARCHAR key with user partitions), so the
threads interleave writes of different shapes through the same connection pool, the same Milvus
client and the same LMDB environment. The sizes keep the test well under a minute on two cores; the
full 4 x 50k operations run in bench/bench_concurrent.py.

Milvus Lite here (a path of the test's own, from the workload tests' fixtures): the presets use types the 2.3
server of the server lane lacks.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from helpers.agreement import assert_agreement
from helpers.schemas import create_small_collection

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.workflow.validate import validate
from milvusdiff.workload.report import WorkloadReport
from milvusdiff.workload.runner import run_workload
from milvusdiff.workload.schemas import create_from_preset, load_preset

pytest_plugins = ["test_workload_support"]  # lite_settings, lite_client

# (collection, preset): two runs at once, two threads each, on one client
RUNS = (("orders_int", "ecommerce"), ("orders_str", "varchar_partitions"))
THREADS_PER_RUN = 2
ROWS = 800  # initial load per collection
BATCH = 10  # rows per write call
OPERATIONS = 300  # mixed insert/upsert/delete operations per collection, after the load


def run_concurrently(client: ShadowClient) -> dict[str, WorkloadReport]:
    """Both workloads at the same time, each with its own worker threads, all through `client`."""
    reports: dict[str, WorkloadReport] = {}
    failures: list[BaseException] = []

    def run(collection: str, preset: str, seed: int) -> None:
        try:
            reports[collection] = run_workload(
                client,
                preset,
                collection,
                rows=ROWS,
                batch=BATCH,
                threads=THREADS_PER_RUN,
                operations=OPERATIONS,
                seed=seed,
                progress=False,
            )
        except BaseException as exc:
            failures.append(exc)

    for collection, preset in RUNS:
        create_from_preset(client, load_preset(preset), collection)
    runners = [threading.Thread(target=run, args=(c, p, i)) for i, (c, p) in enumerate(RUNS)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    if failures:
        raise failures[0]
    return reports


def test_four_threads_on_two_collections_leave_no_difference(
    lite_client: ShadowClient, lite_settings: Settings, tmp_path: Path
) -> None:
    client = lite_client
    reports = run_concurrently(client)

    for collection, _ in RUNS:
        report = reports[collection]
        assert report.sync_errors == 0 and not report.uncertain_keys and report.stopped_early is None
        assert report.threads == THREADS_PER_RUN
        mixed = sum(n for op, n in report.ops.items() if op != "load")
        assert mixed == OPERATIONS
        assert {op.split(":")[0] for op in report.ops} == {"load", "insert", "upsert", "delete"}
        stores = assert_agreement(client, collection)  # rows, values, partitions, journal states and digests
        assert stores.keys(stores.milvus) == report.live_keys
    client.close()  # validate reads the stores on its own; the Lite database stays served by this process

    for collection, _ in RUNS:
        result = validate(collection, out=tmp_path / f"validate-{collection}", settings=lite_settings)
        summary = result.summary
        assert result.exit_code == 0, summary
        assert summary.only_a == summary.only_b == summary.changed == 0
        assert summary.duplicate_a == summary.duplicate_b == 0
        assert summary.rows_a == summary.rows_b == len(reports[collection].live_keys)
        assert summary.unchanged == summary.rows_a


OVERLAP_THREADS = 4
OVERLAP_KEYS = 60  # every thread writes and deletes keys of this one small range
OVERLAP_CALLS = 60  # calls per thread
OVERLAP_BATCH = 20


def test_threads_writing_the_same_keys_in_any_order_get_no_sync_error(
    lite_client: ShadowClient, lite_settings: Settings, tmp_path: Path
) -> None:
    """Overlapping keys, each batch in its own random order: PostgreSQL would deadlock between two staged writes
    (each holding the rows the other wants until Milvus answers) unless rows are locked in key order, and any
    deadlock or serialization failure left is retried before Milvus is called. A bare MilvusClient accepts every
    one of these writes, so the ShadowClient must too, and the stores must end in agreement."""
    client = lite_client
    create_small_collection(client, "overlap")
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        rng = np.random.default_rng([11, index])
        try:
            for call in range(OVERLAP_CALLS):
                keys = rng.permutation(OVERLAP_KEYS)[:OVERLAP_BATCH].tolist()  # not sorted
                if call % 3 == 2:
                    client.delete("overlap", ids=keys)
                else:
                    client.upsert(
                        "overlap",
                        [
                            {"id": k, "title": f"w{index} c{call}", "emb": [float(k), float(index), 0.0, 1.0]}
                            for k in keys
                        ],
                    )
        except BaseException as exc:  # a SyncError here is the failure under test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(OVERLAP_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [type(e).__name__ + ": " + str(e) for e in errors] == []
    assert_agreement(client, "overlap")
    client.close()
    result = validate("overlap", out=tmp_path / "validate-overlap", settings=lite_settings)
    assert result.exit_code == 0, result.summary
