"""On a real Milvus server (the `make test-server` lane): duplicate primary keys are kept by the server and
reported by export, compare and validate, never hidden.

The scenario of the field notes: 1000 inserts, 5 re-inserts of existing keys, 3 deletes of re-inserted keys,
written through the ShadowClient. A server keeps both copies of a re-inserted key and counts both in
count(*) (1000 + 5 - 2 x 3 = 999); the shadow and the journal hold one row per key (997) with the last
write. What the server returns when read depends on the server: Milvus 2.3.5 serves one copy per key (the
first written) to query and query_iterator, so its rows (997) disagree with its own count(*) (999), and the
two keys still duplicated differ from what was written last; a server that returned every copy would put
both copies in the snapshot, where compare counts them as duplicate_a. The test asserts whichever the
server does, exactly, and that either way validate fails with the evidence in the manifest and summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers.schemas import create_small_collection
from pymilvus import MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.workflow.validate import validate

pytestmark = pytest.mark.server

COLLECTION = "dups"
INSERTS = 1000
REINSERTED = [10, 11, 12, 13, 14]
DELETED = [10, 11, 12]
STILL_DUPLICATED = [13, 14]
STORE_COUNT = INSERTS + len(REINSERTED) - 2 * len(DELETED)  # both copies of a deleted key go
DISTINCT = INSERTS - len(DELETED)


def rows(keys: list[int], tag: str) -> list[dict[str, Any]]:
    return [{"id": k, "title": f"{tag} {k}", "emb": [float(k), 1.0 if tag == "again" else 0.0, 0.0, 1.0]} for k in keys]


def write_scenario(settings: Settings) -> None:
    client = ShadowClient.from_settings(settings)
    try:
        create_small_collection(client, COLLECTION)
        for start in range(0, INSERTS, 250):
            client.insert(COLLECTION, rows(list(range(start, start + 250)), "first"))
        client.insert(COLLECTION, rows(REINSERTED, "again"))  # existing keys, inserted again
        client.delete(COLLECTION, ids=DELETED)
        states = client.journal.states(COLLECTION, REINSERTED)
    finally:
        client.close()
    # The journal saw the re-insert for what it is, and the shadow keeps one row per key.
    assert {k: s.flags for k, s in states.items() if s.state == "EXISTS"} == {
        k: ("duplicate_insert",) for k in STILL_DUPLICATED
    }
    assert {k for k, s in states.items() if s.state == "DELETED"} == set(DELETED)


def served(settings: Settings) -> tuple[int, dict[int, list[str]]]:
    """count(*) as the server reports it, and the titles it serves for the re-inserted keys."""
    client = MilvusClient(uri=settings.milvus_uri, token=settings.milvus_token or "")
    try:
        count = int(client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"])
        found: dict[int, list[str]] = {}
        for row in client.query(COLLECTION, filter=f"id in {REINSERTED}", output_fields=["id", "title"]):
            found.setdefault(row["id"], []).append(row["title"])
    finally:
        client.close()
    return count, found


def test_duplicate_primary_keys_are_reported_by_export_compare_and_validate(
    milvus_uri: str, settings: Settings, tmp_path: Path
) -> None:
    write_scenario(settings)
    count, titles = served(settings)
    assert count == STORE_COUNT  # the server kept both copies of each re-inserted key that was not deleted
    assert set(titles) == set(STILL_DUPLICATED)

    result = validate(COLLECTION, out=tmp_path / "run", settings=settings)
    milvus = json.loads((result.out / "snapshots" / "milvus" / "manifest.json").read_text(encoding="utf-8"))
    pg = json.loads((result.out / "snapshots" / "pg" / "manifest.json").read_text(encoding="utf-8"))
    summary = result.summary
    diff = {r["id"]: r for r in pq.read_table(result.out / "diff.parquet").to_pylist()}

    assert milvus["store_count"] == STORE_COUNT and milvus["distinct_keys"] == DISTINCT
    assert (pg["store_count"], pg["rows_written"], pg["distinct_keys"], pg["warnings"]) == (
        DISTINCT,
        DISTINCT,
        DISTINCT,
        [],
    )
    if milvus["rows_written"] == STORE_COUNT:  # the server returned every copy: duplicate rows in the snapshot
        assert milvus["duplicate_keys"] == len(STILL_DUPLICATED)
        assert sorted(milvus["duplicate_key_sample"]) == STILL_DUPLICATED
        assert summary.duplicate_a == len(STILL_DUPLICATED) and summary.rows_a == STORE_COUNT
        assert {k: r["class"] for k, r in diff.items()} == dict.fromkeys(STILL_DUPLICATED, "duplicate_a")
    else:  # Milvus 2.3.5: one copy per key is served, the first one written; count(*) says otherwise
        assert milvus["rows_written"] == DISTINCT and milvus["duplicate_keys"] == 0
        assert milvus["warnings"] == [f"milvus reports {STORE_COUNT} rows (count(*)) but {DISTINCT} were read"]
        assert summary.rows_a == DISTINCT and summary.duplicate_a == 0
        assert titles == {k: [f"first {k}"] for k in STILL_DUPLICATED}
        # Milvus serves the first copy, the shadow and the journal hold the second: Milvus is wrong.
        assert {k: (r["class"], r["verdict"]) for k, r in diff.items()} == dict.fromkeys(
            STILL_DUPLICATED, ("changed", "a_wrong")
        )
    assert any(w.startswith("milvus: ") for w in summary.store_warnings)
    assert result.exit_code == 1

    # The compare CLI on the same snapshots says the same thing: the evidence is in its summary, not lost.
    snapshots = result.out / "snapshots"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("milvusdiff")),
            "compare",
            str(snapshots / "milvus"),
            str(snapshots / "pg"),
            "--journal",
            str(snapshots / "journal"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    cli_summary = json.loads(done.stdout)
    for name in ("rows_a", "rows_b", "changed", "duplicate_a", "only_a", "only_b"):
        assert cli_summary[name] == getattr(summary, name)
    assert cli_summary["inputs"]["a"]["manifest"]["store_count"] == STORE_COUNT
