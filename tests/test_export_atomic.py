"""An export that fails or dies midway leaves nothing that looks like a snapshot; disagreements are reported.

Faults are injected into the real read path (the conversion of a batch, the iterator itself), with
real Milvus Lite and PostgreSQL underneath.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql
from pymilvus import DataType, MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import SnapshotError
from milvusdiff.export import export_collection
from milvusdiff.export.sources import milvus as milvus_source
from milvusdiff.export.sources import pg as pg_source

ROWS = 1000
BATCH = 100


class Injected(RuntimeError):
    pass


@pytest.fixture
def filled(settings: Settings) -> Iterator[Settings]:
    """A collection 'docs' of ROWS rows in Milvus Lite, the shadow and the journal."""
    client = ShadowClient.from_settings(settings)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=16)
    index = client.prepare_index_params()
    index.add_index("vec", metric_type="L2", index_type="FLAT")
    client.create_collection("docs", schema=schema, index_params=index)
    vectors = np.random.default_rng(0).random((ROWS, 16), dtype=np.float32)
    client.insert("docs", [{"id": i, "text": f"doc {i}", "vec": vectors[i]} for i in range(ROWS)])
    client.close()
    yield settings


def fail_after(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, calls: int) -> None:
    """Make module.name raise on its call number `calls + 1`, in the middle of a real export."""
    real = getattr(module, name)
    seen = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        seen["n"] += 1
        if seen["n"] > calls:
            raise Injected(f"injected failure in {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def looks_like_snapshot(entry: Path) -> bool:
    """What compare would accept: a readable .parquet file, or a directory with a manifest or readable parts."""
    if entry.is_dir():
        if (entry / "manifest.json").exists():
            return True
        return any(looks_like_snapshot(p) for p in entry.glob("part-*.parquet"))
    try:
        pq.ParquetFile(entry)
    except Exception:
        return False
    return True


def visible(parent: Path) -> set[str]:
    return {p.name for p in parent.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize("out_name", ["snap", "snap.parquet"])
def test_milvus_reader_failure_leaves_nothing(
    filled: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out_name: str
):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fail_after(monkeypatch, milvus_source, "rows_to_table", calls=3)
    with pytest.raises(Injected):
        export_collection("docs", source="milvus", out=out_dir / out_name, settings=filled, batch_size=BATCH)
    assert list(out_dir.iterdir()) == [], "staging files must be removed after a failure"


def test_pg_reader_failure_leaves_nothing(filled: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fail_after(monkeypatch, pg_source, "coerce_pg_column", calls=7)  # mid-table: 3 columns a batch
    with pytest.raises(Injected):
        export_collection("docs", source="pg", out=out_dir / "snap", settings=filled, batch_size=BATCH)
    assert list(out_dir.iterdir()) == []


def test_failure_in_one_store_of_all_leaves_nothing(filled: Settings, tmp_path: Path, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fail_after(monkeypatch, pg_source, "coerce_pg_column", calls=4)  # milvus/ is complete by then
    with pytest.raises(Injected):
        export_collection("docs", source="all", out=out_dir / "snap", settings=filled, batch_size=BATCH)
    assert list(out_dir.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_snapshot(filled: Settings, tmp_path: Path, monkeypatch):
    out = tmp_path / "snap"
    first = export_collection("docs", source="milvus", out=out, settings=filled)
    before = (out / "manifest.json").read_text()
    fail_after(monkeypatch, milvus_source, "rows_to_table", calls=2)
    with pytest.raises(Injected):
        export_collection("docs", source="milvus", out=out, settings=filled, batch_size=BATCH, overwrite=True)
    assert (out / "manifest.json").read_text() == before
    assert visible(tmp_path) - {"milvus.db"} == {"snap", "journal"} and first.rows_written == ROWS
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".snap")] == []


def test_existing_output_needs_overwrite(filled: Settings, tmp_path: Path):
    out = tmp_path / "snap.parquet"
    export_collection("docs", source="pg", out=out, settings=filled)
    with pytest.raises(SnapshotError, match="already exists"):
        export_collection("docs", source="pg", out=out, settings=filled)
    replaced = export_collection("docs", source="milvus", out=out, settings=filled, overwrite=True)
    assert json.loads(pq.ParquetFile(out).schema_arrow.metadata[b"milvusdiff.manifest"])["source"] == "milvus"
    assert replaced.rows_written == ROWS


def record_syncs(monkeypatch: pytest.MonkeyPatch, out: Path) -> list[tuple[str, bool]]:
    """Every fsync/fdatasync the export makes (the real call still happens): the synced path, and whether
    `out` was already published at that moment."""
    synced: list[tuple[str, bool]] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def spy(fd: int, real: Any = real) -> None:
            synced.append((os.readlink(f"/proc/self/fd/{fd}"), out.exists()))
            real(fd)

        monkeypatch.setattr(os, name, spy)
    return synced


def test_fsync_makes_every_file_durable_before_the_snapshot_appears(
    filled: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "out" / "snap"
    synced = record_syncs(monkeypatch, out)
    manifest = export_collection(
        "docs", source="pg", out=out, settings=filled, batch_size=BATCH, rows_per_part=300, fsync=True
    )
    files = {f.name for f in manifest.files} | {"manifest.json"}
    assert len(files) == 5  # four parts of 300 rows or fewer, and the manifest
    before = {Path(path).name for path, published in synced if not published}
    staged = next(Path(path) for path, _ in synced if Path(path).name == "manifest.json").parent
    assert files | {staged.name} <= before, "every file and the staged directory, before the rename"
    assert (str(out.parent), True) in synced, "the rename itself, after it"
    assert manifest.options["fsync"] is True


def test_without_fsync_nothing_waits_for_the_disk(filled: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    synced = record_syncs(monkeypatch, tmp_path / "snap")
    manifest = export_collection("docs", source="pg", out=tmp_path / "snap", settings=filled, rows_per_part=300)
    assert synced == [] and manifest.options["fsync"] is False
    assert manifest.rows_written == ROWS and (tmp_path / "snap" / "manifest.json").exists()


def test_pg_count_and_rows_share_one_snapshot(filled: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Rows committed once the export has begun are neither read nor counted: the count runs in a second
    session, which is made here to start only after such a commit."""
    real = pg_source._count_in_snapshot

    def count_after_a_commit(store: Any, *args: Any) -> int:
        with psycopg.connect(store.conninfo, autocommit=True) as conn:
            table = store.table("docs")
            conn.execute(sql.SQL("DELETE FROM {} WHERE id < 10").format(table))
            conn.execute(sql.SQL("UPDATE {} SET text = 'changed' WHERE id = 500").format(table))
        return real(store, *args)

    monkeypatch.setattr(pg_source, "_count_in_snapshot", count_after_a_commit)
    manifest = export_collection("docs", source="pg", out=tmp_path / "snap", settings=filled)
    table = pq.read_table(tmp_path / "snap" / "part-00000.parquet")
    assert manifest.store_count == manifest.rows_written == ROWS and manifest.warnings == []
    assert table.column("id").to_pylist() == list(range(ROWS))
    assert table.column("text")[500].as_py() == "doc 500"


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import numpy as np
    from pymilvus import MilvusClient
    from milvusdiff.config import Settings
    from milvusdiff.export import export_collection
    from milvusdiff.export.sources import milvus as source

    lite, out, rows, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = MilvusClient(lite)
    client.create_collection("docs", dimension=16)
    vectors = np.random.default_rng(0).random((rows, 16), dtype=np.float32)
    client.insert("docs", [{"id": i, "vector": vectors[i]} for i in range(rows)])

    real, seen = source.rows_to_table, []
    def dying(*args, **kwargs):
        seen.append(1)
        if len(seen) == 4:
            os._exit(3)  # no cleanup, no finally: as if the machine lost power mid-export
        return real(*args, **kwargs)
    source.rows_to_table = dying
    settings = Settings(lite, None, None, Path(lite).parent / "journal", Path(lite).parent / "home")
    export_collection("docs", source="milvus", out=out, settings=settings, batch_size=batch)
    """
)


@pytest.mark.parametrize("out_name", ["snap", "snap.parquet"])
def test_killed_export_leaves_nothing_complete_looking(tmp_path: Path, out_name: str):
    """The process dies with no chance to clean up (Milvus Lite in the child, which owns the database)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = [tmp_path / "lite" / "milvus.db", out_dir / out_name, ROWS, BATCH]
    (tmp_path / "lite").mkdir()
    done = subprocess.run([sys.executable, "-c", CRASH, *map(str, args)], capture_output=True, timeout=300)
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    leftovers = list(out_dir.iterdir())
    assert visible(out_dir) == set(), "nothing may appear under a visible name"
    assert leftovers, "the dead process had started writing"
    assert not any(looks_like_snapshot(entry) for entry in leftovers)
    assert not any(entry.name == "manifest.json" for entry in out_dir.rglob("*"))


def repeat_first_batch(monkeypatch: pytest.MonkeyPatch, *, drop_second: bool) -> None:
    """An iterator that returns its first batch twice (as real servers return kept duplicates) and may lose one."""
    real = MilvusClient.query_iterator

    def faulty(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
        iterator = real(self, *args, **kwargs)
        batches: list[list[dict[str, Any]]] = []

        class Faulty:
            def next(self) -> list[dict[str, Any]]:
                batch = iterator.next()
                batches.append(batch)
                if len(batches) == 2 and drop_second:
                    return [dict(row) for row in batches[0]]
                return batch

            def close(self) -> None:
                iterator.close()

        return Faulty()

    monkeypatch.setattr(MilvusClient, "query_iterator", faulty)


def test_duplicates_and_lost_rows_are_reported_not_hidden(filled: Settings, tmp_path: Path, monkeypatch):
    repeat_first_batch(monkeypatch, drop_second=True)
    manifest = export_collection("docs", source="milvus", out=tmp_path / "snap", settings=filled, batch_size=BATCH)
    assert manifest.store_count == ROWS and manifest.rows_written == ROWS  # one batch lost, one repeated
    assert manifest.distinct_keys == ROWS - BATCH
    assert manifest.duplicate_keys == BATCH and manifest.duplicate_rows == BATCH
    assert manifest.duplicate_key_sample == list(range(10))
    assert not manifest.consistent
    assert manifest.warnings == [
        f"milvus reports {ROWS} rows but only {ROWS - BATCH} distinct keys were read",
        f"{BATCH} primary keys occur more than once ({BATCH} extra rows, all kept): 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
    ]
    on_disk = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert on_disk["warnings"] == manifest.warnings and on_disk["duplicate_keys"] == BATCH
    table = pq.read_table(tmp_path / "snap" / "part-00000.parquet")
    assert table.num_rows == ROWS, "rows are never deduplicated"


def test_rows_missing_from_the_iterator_are_reported(filled: Settings, tmp_path: Path, monkeypatch):
    real = milvus_source.rows_to_table
    calls = {"n": 0}

    def losing(rows: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return real(rows[: len(rows) - 3] if calls["n"] == 2 else rows, *args, **kwargs)

    monkeypatch.setattr(milvus_source, "rows_to_table", losing)
    manifest = export_collection("docs", source="milvus", out=tmp_path / "snap", settings=filled, batch_size=BATCH)
    assert manifest.rows_written == ROWS - 3 and manifest.store_count == ROWS
    assert manifest.warnings == [f"milvus reports {ROWS} rows (count(*)) but {ROWS - 3} were read"]


@pytest.mark.server
def test_real_server_duplicate_keys_are_kept_and_reported(milvus_uri: str, settings: Settings, tmp_path: Path):
    """A real server keeps both rows of a re-inserted key; the export keeps them too, and says so."""
    client = MilvusClient(milvus_uri, token=settings.milvus_token or "")
    client.create_collection("dups", dimension=4, consistency_level="Strong")
    client.insert("dups", [{"id": i, "vector": [i, 0.0, 0.0, 1.0]} for i in range(100)])
    client.insert("dups", [{"id": i, "vector": [i, 1.0, 1.0, 1.0]} for i in range(5)])  # the same keys again
    client.close()
    manifest = export_collection("dups", source="milvus", out=tmp_path / "snap", settings=settings, batch_size=32)
    keys = pq.read_table(tmp_path / "snap" / "part-00000.parquet").column("id").to_pylist()
    repeated = {k for k in keys if keys.count(k) > 1}
    assert manifest.rows_written == len(keys) and manifest.distinct_keys == len(set(keys)) == 100
    assert manifest.duplicate_keys == len(repeated) and sorted(manifest.duplicate_key_sample) == sorted(repeated)[:10]
    if len(keys) != 100 or manifest.store_count != 100:  # what the server returned is recorded, never hidden
        assert not manifest.consistent and manifest.warnings
