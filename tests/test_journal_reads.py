"""The journal's on-disk versions and read-only reads, through the commands a user runs.

- A journal of an unknown or newer format, digest layout or operation code is refused with exit 2 by
  `compare --journal`, `export --source journal` and `validate`: never read into a wrong verdict.
- Those three commands leave the LMDB files byte-identical, run no recovery, and report the keys of a
  write still pending as IN_DOUBT without settling it.
"""

from __future__ import annotations

import json
from pathlib import Path

import lmdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers.files import file_hashes
from helpers.schemas import create_small_collection

from milvusdiff.cli.main import main
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.export import export_collection
from milvusdiff.services.journal import OP_CODES, Journal
from milvusdiff.types.digest import DIGEST_VERSION_KEY

COLLECTION = "reads"


def rows(keys: range | list[int], tag: str) -> list[dict[str, object]]:
    return [{"id": k, "title": f"{tag} {k}", "emb": [float(k), 1.0, 0.5, -1.0]} for k in keys]


@pytest.fixture
def stores(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Keys 0..9 written through the ShadowClient (then closed), snapshots of Milvus and PostgreSQL taken,
    and the environment pointing the CLI at these stores."""
    client = ShadowClient.from_settings(settings)
    create_small_collection(client, COLLECTION, dim=4)
    client.insert(COLLECTION, rows(range(10), "first"))
    client.close()
    export_collection(COLLECTION, source="milvus", out=tmp_path / "milvus", settings=settings, quiet=True)
    export_collection(COLLECTION, source="pg", out=tmp_path / "pg", settings=settings, quiet=True)
    monkeypatch.setenv("MILVUS_URI", settings.milvus_uri)
    monkeypatch.setenv("PG_CONN", str(settings.pg_conn))
    monkeypatch.setenv("MILVUSDIFF_JOURNAL", str(settings.journal_path))
    monkeypatch.setenv("MILVUSDIFF_HOME", str(settings.home))
    return settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0), capsys.readouterr().err


def commands(tmp_path: Path, journal: Path) -> dict[str, list[str]]:
    return {
        "compare": ["compare", str(tmp_path / "milvus"), str(tmp_path / "pg"), "--journal", str(journal)],
        "export": ["export", "-c", COLLECTION, "--source", "journal", "--out", str(tmp_path / "j-out")],
        "validate": ["validate", "--collection", COLLECTION, "--out", str(tmp_path / "v-out"), "--quiet"],
    }


def raw_put(journal: Path, db: bytes, key: bytes, value: bytes) -> None:
    env = lmdb.open(str(journal), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(key, value, db=env.open_db(db, txn=txn))
    env.close()


@pytest.mark.parametrize("meta_key", [b"format_version", b"digest_version"])
@pytest.mark.parametrize("command", ["compare", "export", "validate"])
def test_a_newer_version_is_refused_with_exit_two(
    stores: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], meta_key: bytes, command: str
) -> None:
    raw_put(stores.journal_path, b"meta", meta_key, (2).to_bytes(4, "big"))
    code, err = run(commands(tmp_path, stores.journal_path)[command], capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and "version 2" in err and "Traceback" not in err
    assert not (tmp_path / "j-out").exists() and not (tmp_path / "v-out").exists()


@pytest.mark.parametrize("command", ["compare", "export", "validate"])
def test_an_unknown_operation_code_is_refused_with_exit_two(
    stores: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    env = lmdb.open(str(stores.journal_path), max_dbs=4)
    with env.begin(write=True) as txn:
        keys = env.open_db(b"keys", txn=txn)
        full = next(k for k, _ in txn.cursor(db=keys) if k.startswith(COLLECTION.encode() + b"\0"))  # key 0
        state = bytearray(txn.get(full, default=b"", db=keys))
        state[9] = 200  # the op code byte of the packed state (state, seq, op, ...)
        txn.put(full, bytes(state), db=keys)
    env.close()
    assert 200 not in OP_CODES.values()
    argv = commands(tmp_path, stores.journal_path)[command]
    if command == "compare":  # compare consults the journal for differing keys: make key 0 differ
        pg = pq.read_table(next((tmp_path / "pg").glob("part-*.parquet")))
        pq.write_table(pg.filter(pc.not_equal(pg.column("id"), 0)), tmp_path / "pg0.parquet")
        argv[2] = str(tmp_path / "pg0.parquet")
    code, err = run(argv, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and "operation code 200" in err


def test_a_journal_snapshot_of_another_digest_layout_is_refused(
    stores: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "journal-snapshot"
    export_collection(COLLECTION, source="journal", out=snapshot, settings=stores, quiet=True)
    part = next(snapshot.glob("part-*.parquet"))
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, DIGEST_VERSION_KEY.encode(): b"9"}), part)
    manifest = json.loads((snapshot / "manifest.json").read_text())  # the file list agrees: only the layout differs
    manifest["files"] = [
        {**e, "bytes": part.stat().st_size} if e["name"] == part.name else e for e in manifest["files"]
    ]
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    code, err = run(["compare", str(tmp_path / "milvus"), str(tmp_path / "pg"), "--journal", str(snapshot)], capsys)
    assert code == 2 and "row-digest version 9" in err


def test_reads_leave_the_journal_byte_identical_and_report_pending_writes_in_doubt(
    stores: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Journal(stores.journal_path) as journal:  # a write begun and never settled: key 3 and new key 50
        pending = journal.begin(COLLECTION, "upsert", [3, 50], [b"\x07" * 16, b"\x08" * 16])
    before = file_hashes(stores.journal_path)

    code, _ = run(commands(tmp_path, stores.journal_path)["compare"], capsys)
    assert code == 0  # the snapshots agree; no key differs, so the journal is not consulted per key
    code, _ = run(commands(tmp_path, stores.journal_path)["export"], capsys)
    assert code == 0
    states = pq.read_table(next((tmp_path / "j-out").glob("part-*.parquet")), columns=["id", "state"]).to_pylist()
    assert {r["id"]: r["state"] for r in states if r["state"] != "EXISTS"} == {3: "IN_DOUBT", 50: "IN_DOUBT"}
    code, _ = run(commands(tmp_path, stores.journal_path)["validate"], capsys)
    assert code == 1  # the stores agree, but two keys are in doubt
    summary = json.loads((tmp_path / "v-out" / "summary.json").read_text())
    assert any("2 keys are IN_DOUBT" in w for w in summary["store_warnings"])
    assert summary["against_journal"] == 0  # in doubt is not a finding against either store

    assert file_hashes(stores.journal_path) == before
    with Journal(stores.journal_path, readonly=True) as journal:
        op = journal.op(pending)
        assert op is not None and op["status"] == "pending"  # nobody settled it


def test_a_reader_beside_a_live_writer_uses_the_reader_table(stores: Settings) -> None:
    """While a writer has the journal open, a reader needs LMDB's locks to see a consistent snapshot."""
    writer = Journal(stores.journal_path)
    try:
        with Journal(stores.journal_path, readonly=True) as reader:
            assert reader._env is writer._env  # one process: the reader shares the writer's handle
    finally:
        writer.close()
    with Journal(stores.journal_path, readonly=True) as reader:
        assert reader._unlocked and reader.states(COLLECTION, [0])[0].state == "EXISTS"


HOLD_OPEN = """
import sys
from milvusdiff.services.journal import Journal
journal = Journal(sys.argv[1])
print("open", flush=True)
sys.stdin.read()  # until the test closes our stdin
journal.close()
"""


def test_a_reader_beside_a_writer_of_another_process_takes_lmdb_locks(stores: Settings) -> None:
    """A reader invisible to a live writer could see pages the writer reuses; beside one, it registers."""
    import subprocess
    import sys

    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(stores.journal_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"open\n"
        with Journal(stores.journal_path, readonly=True) as reader:
            assert not reader._unlocked and reader.states(COLLECTION, [0])[0].state == "EXISTS"
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(timeout=60)


def test_a_digest_column_of_another_layout_is_refused(
    stores: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pq.read_table(next((tmp_path / "milvus").glob("part-*.parquet")))
    at = table.schema.get_field_index("$digest")
    tampered = table.schema.set(at, table.schema.field(at).with_metadata({DIGEST_VERSION_KEY.encode(): b"2"}))
    pq.write_table(table.cast(tampered), tmp_path / "milvus-v2.parquet")
    argv = ["compare", str(tmp_path / "milvus-v2.parquet"), str(tmp_path / "pg"), "--journal", str(stores.journal_path)]
    code, err = run(argv, capsys)
    assert code == 2 and "row-digest version 2" in err
