"""Fault drills on real components: each fault is injected into the real write flow of a ShadowClient
(Milvus Lite or the lane's server, a real PostgreSQL, the LMDB journal), then `validate` must name exactly
the keys the fault touched with the right verdict, `repair` must bring the stores back into agreement and
clear the journal's marks (journaling what it did), and a second `validate` must find nothing.

The faults:
  a. the PostgreSQL server stops between staging a batch and calling Milvus (a server of the test's own);
  b. the PostgreSQL connection holding the staged batch is killed (pg_terminate_backend) after Milvus acked;
  c. Milvus refuses a write (a definite error): nothing changes anywhere;
  d. Milvus applies a write and the client then times out: the outcome is unknown, the keys are IN_DOUBT;
  e. the writing process is SIGKILLed between the Milvus acknowledgement and the PostgreSQL commit, then
     started again: reopening the journal turns the pending intent into IN_DOUBT.
Only the fault itself is injected (a wrapper around one real call); everything else runs for real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.agreement import assert_agreement
from helpers.schemas import create_small_collection
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.compare.summary import Summary
from milvusdiff.config import Settings, is_milvus_lite
from milvusdiff.errors import InDoubtError, SyncError
from milvusdiff.services.embedded_pg import ensure_embedded_pg, stop_embedded_pg
from milvusdiff.services.journal import Journal
from milvusdiff.services.pg import PendingWrite
from milvusdiff.workflow.repair import repair
from milvusdiff.workflow.validate import validate

COLLECTION = "drill"
DIM = 4
FIRST_ROWS = 20  # keys 0..19 exist before every fault
MILVUSDIFF = Path(sys.executable).with_name("milvusdiff")

Finding = tuple[str, str | None]  # (class, verdict) of one differing key
# Variants that differ from another only on the client side (how the timeout is raised, which source
# repairs) run on Milvus Lite only: the server lane runs one of each drill and stays within its time budget.
LITE_ONLY_VARIANT = pytest.mark.skipif(
    bool(os.environ.get("MILVUS_URI")), reason="client-side variant of a drill the server lane already runs"
)


# -- the collection and its rows ---------------------------------------------------------------


def rows(keys: Sequence[int], tag: str) -> list[dict[str, Any]]:
    """Rows whose every column depends on the key and on `tag`, so two writes of one key differ."""
    salt = float(len(tag))
    return [{"id": k, "title": f"{tag} {k}", "emb": [float(k), salt, 0.5, -1.0]} for k in keys]


def open_client(settings: Settings) -> ShadowClient:
    """A new client, with the drill collection loaded when it exists: ShadowClient.close() lets go of a Milvus
    Lite database, which a new client reopens with every collection released, as a new process would."""
    client = ShadowClient.from_settings(settings)
    if client.has_collection(COLLECTION):
        client.load_collection(COLLECTION)
    return client


def create_drill_collection(settings: Settings) -> None:
    """The collection with keys 0..19 committed through the ShadowClient, then the client closed."""
    client = open_client(settings)
    create_small_collection(client, COLLECTION, dim=DIM)
    client.insert(COLLECTION, rows(range(FIRST_ROWS), "first"))
    client.close()


@pytest.fixture
def drill(settings: Settings) -> Settings:
    create_drill_collection(settings)
    return settings


# -- validate and repair -----------------------------------------------------------------------


def findings(settings: Settings, out: Path) -> tuple[Summary, dict[int, Finding]]:
    """validate's summary and, per differing key, its class and verdict (read from diff.parquet)."""
    result = validate(COLLECTION, out=out, settings=settings)
    diff = pq.read_table(result.out / "diff.parquet", columns=["id", "class", "verdict"]).to_pylist()
    found = {row["id"]: (row["class"], row["verdict"]) for row in diff}
    assert result.exit_code == (1 if found or result.store_warnings else 0), result.summary
    return result.summary, found


def assert_clean(settings: Settings, out: Path) -> None:
    """Zero differences, and the three stores agree row for row with no IN_DOUBT or pg_missing key left."""
    summary, found = findings(settings, out)
    assert found == {} and summary.store_warnings == []
    assert summary.only_a == summary.only_b == summary.changed == 0
    assert summary.duplicate_a == summary.duplicate_b == 0
    client = open_client(settings)
    try:
        client.load_collection(COLLECTION)  # a Milvus Lite database reopened here starts with it released
        assert_agreement(client, COLLECTION)
        assert client.journal.unsettled_keys(COLLECTION, "id", pa.int64()) == []
    finally:
        client.close()


def release_lite(settings: Settings) -> None:
    """Milvus Lite serves a database from inside the process that opened it, holding a file lock until that
    process ends; let go of it so that a child process can open the database, as it could a server."""
    if is_milvus_lite(settings.milvus_uri):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(settings.milvus_uri)


def cli_repair(settings: Settings, source: str, keys: Sequence[int] = ()) -> dict[str, Any]:
    """`milvusdiff repair` in a process of its own, as an operator would run it; returns its JSON report."""
    release_lite(settings)
    command = [str(MILVUSDIFF), "repair", "--collection", COLLECTION, "--from", source, "--format", "json"]
    if keys:
        command += ["--keys", ",".join(map(str, keys))]
    done = subprocess.run(command, env=store_env(settings), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def store_env(settings: Settings) -> dict[str, str]:
    """The environment of a child process that must use exactly this test's stores (and shadow schema)."""
    assert settings.pg_conn is not None
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_TOKEN", "MILVUSDIFF_HOME")}
    env.update(
        MILVUS_URI=settings.milvus_uri,
        PG_CONN=settings.pg_conn,
        MILVUSDIFF_JOURNAL=str(settings.journal_path),
    )
    if settings.milvus_token:
        env["MILVUS_TOKEN"] = settings.milvus_token
    return env


def repair_ops(settings: Settings) -> list[dict[str, Any]]:
    with Journal(settings.journal_path) as journal:
        return [op for op in journal.iter_ops(COLLECTION) if op["op"] in ("repair", "repair_delete")]


def key_states(settings: Settings, keys: Sequence[int]) -> dict[int, tuple[str, tuple[str, ...]]]:
    with Journal(settings.journal_path) as journal:
        return {int(k): (s.state, s.flags) for k, s in journal.states(COLLECTION, keys).items()}


# -- fault injection ---------------------------------------------------------------------------


def after_milvus(client: ShadowClient, action: Callable[[], None]) -> None:
    """Run `action` right after Milvus answered a write and before PostgreSQL commits."""
    real = client._call_milvus

    def hooked(seq: int, pending: PendingWrite | None, call: Callable[[], Any]) -> Any:
        result = real(seq, pending, call)
        action()
        return result

    client._call_milvus = hooked  # type: ignore[method-assign]


def before_milvus(client: ShadowClient, action: Callable[[], None]) -> None:
    """Run `action` once the batch is staged in PostgreSQL, right before Milvus is called."""
    real = client._call_milvus

    def hooked(seq: int, pending: PendingWrite | None, call: Callable[[], Any]) -> Any:
        action()
        return real(seq, pending, call)

    client._call_milvus = hooked  # type: ignore[method-assign]


class DeadlineExceeded(grpc.RpcError):
    """What pymilvus lets through when a call's deadline passes: a gRPC error with DEADLINE_EXCEEDED."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "Deadline Exceeded"


TIMEOUTS: dict[str, Callable[[], Exception]] = {
    "grpc-deadline": DeadlineExceeded,
    "pymilvus-retry-timeout": lambda: MilvusException(message="[insert] Retry timeout: 5s, message=server busy"),
}


Arm = Callable[..., None]


@pytest.fixture
def milvus_times_out(monkeypatch: pytest.MonkeyPatch) -> Iterator[Arm]:
    """arm(op, timeout, applied=True): the next MilvusClient.<op> raises `timeout()`, after going through to
    Milvus (which applies the write) or, with applied=False, before sending anything."""

    def arm(op: str, timeout: Callable[[], Exception], applied: bool = True) -> None:
        real = getattr(MilvusClient, op)

        def unanswered(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
            monkeypatch.setattr(MilvusClient, op, real)  # only the next call times out
            if applied:
                real(self, *args, **kwargs)
            raise timeout()

        monkeypatch.setattr(MilvusClient, op, unanswered)

    yield arm


# -- a: the PostgreSQL server stops in the middle of a batch ------------------------------------


def test_pg_server_stopped_mid_batch(settings: Settings, make_pg_home: Callable[[], Path], tmp_path: Path) -> None:
    pg_data = make_pg_home() / "pg"
    own = replace(settings, pg_conn=ensure_embedded_pg(pg_data))
    try:
        create_drill_collection(own)
        client = open_client(own)
        before_milvus(client, lambda: stop_embedded_pg(pg_data))
        batch = [*range(15, 20), *range(20, 25)]  # 5 existing keys changed, 5 new keys
        with pytest.raises(SyncError, match="PostgreSQL could not commit") as raised:
            client.upsert(COLLECTION, rows(batch, "second"))
        assert not isinstance(raised.value, InDoubtError)  # Milvus answered: the outcome is known
        client.close()

        own = replace(own, pg_conn=ensure_embedded_pg(pg_data))  # PostgreSQL is back
        assert key_states(own, batch) == {k: ("EXISTS", ("pg_missing",)) for k in batch}
        summary, found = findings(own, tmp_path / "v1")
        expected = {k: ("changed", "b_wrong") for k in range(15, 20)} | {
            k: ("only_a", "b_wrong") for k in range(20, 25)
        }
        assert found == expected
        assert summary.verdict_labels["b_wrong"] == "pg wrong"

        report = cli_repair(own, "journal")  # no --keys: the journal's pg_missing keys
        assert sorted(report["written_to_pg"]) == batch
        assert report["written_to_milvus"] == report["deleted_from_milvus"] == report["deleted_from_pg"] == []
        assert [op["status"] for op in repair_ops(own)] == ["committed"]
        assert key_states(own, batch) == {k: ("EXISTS", ()) for k in batch}
        assert_clean(own, tmp_path / "v2")
    finally:
        stop_embedded_pg(pg_data)


# -- b: the PostgreSQL connection is killed between write and commit -----------------------------


def terminate_backend(pg_conn: str, pending: list[PendingWrite]) -> Callable[[], None]:
    """pg_terminate_backend, from a connection of its own, of the backend holding the staged write."""

    def kill() -> None:
        connection = pending[-1]._conn
        assert connection is not None
        pid = connection.info.backend_pid
        with psycopg.connect(pg_conn, autocommit=True) as admin:
            row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
            assert row is not None and row[0] is True

    return kill


def record_staged(client: ShadowClient) -> list[PendingWrite]:
    """Keep the PendingWrite of every staged write, to know which backend holds it."""
    staged: list[PendingWrite] = []
    for name in ("stage_upsert", "stage_delete"):
        real = getattr(client.shadow, name)

        def keep(*args: Any, _real: Callable[..., PendingWrite] = real, **kwargs: Any) -> PendingWrite:
            staged.append(_real(*args, **kwargs))
            return staged[-1]

        setattr(client.shadow, name, keep)
    return staged


@pytest.mark.parametrize("op", ["upsert", "delete"])
def test_pg_connection_killed_between_write_and_commit(drill: Settings, tmp_path: Path, op: str) -> None:
    assert drill.pg_conn is not None
    client = open_client(drill)
    after_milvus(client, terminate_backend(drill.pg_conn, record_staged(client)))
    if op == "upsert":
        batch = [5, 6, 7, 30, 31]
        with pytest.raises(SyncError, match="PostgreSQL could not commit"):
            client.upsert(COLLECTION, rows(batch, "second"))
        expected = {5: ("changed", "b_wrong"), 6: ("changed", "b_wrong"), 7: ("changed", "b_wrong")}
        expected |= {30: ("only_a", "b_wrong"), 31: ("only_a", "b_wrong")}
        state = "EXISTS"
    else:
        batch = [2, 3, 4]
        with pytest.raises(SyncError, match="PostgreSQL could not commit"):
            client.delete(COLLECTION, filter="id in [2, 3, 4]")
        expected = {k: ("only_b", "b_wrong") for k in batch}
        state = "DELETED"
    client.close()
    assert key_states(drill, batch) == {k: (state, ("pg_missing",)) for k in batch}

    _, found = findings(drill, tmp_path / "v1")
    assert found == expected

    client = open_client(drill)
    try:
        report = repair(client, COLLECTION, "milvus")  # no keys: the journal's pg_missing keys
    finally:
        client.close()
    assert report.keys_examined == len(batch)
    if op == "upsert":
        assert sorted(report.written_to_pg) == batch and report.deleted_from_pg == []
    else:
        assert report.written_to_pg == [] and sorted(report.deleted_from_pg) == batch
    assert report.written_to_milvus == report.deleted_from_milvus == [] and report.unresolved == {}
    assert [op["status"] for op in repair_ops(drill)] == ["committed"]
    assert_clean(drill, tmp_path / "v2")


# -- c: Milvus raises a definite error -----------------------------------------------------------


def test_milvus_definite_error_changes_nothing(drill: Settings, tmp_path: Path) -> None:
    client = open_client(drill)
    with pytest.raises(SyncError, match="Milvus rejected") as raised:
        # A partition that does not exist: Milvus refuses the whole batch, changed and new keys alike.
        client.upsert(COLLECTION, rows([1, 2, 40, 41], "second"), partition_name="no_such_partition")
    assert not isinstance(raised.value, InDoubtError)
    failed = [op for op in client.journal.iter_ops(COLLECTION) if op["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["keys_sample"] == [1, 2, 40, 41]
    assert client.journal.states(COLLECTION, [40, 41]) == {}  # a failed write leaves no key state
    assert {k: s.last_op for k, s in client.journal.states(COLLECTION, [1, 2]).items()} == {1: "insert", 2: "insert"}
    client.close()

    summary, found = findings(drill, tmp_path / "v1")
    assert found == {} and summary.rows_a == summary.rows_b == FIRST_ROWS

    client = open_client(drill)
    try:
        report = repair(client, COLLECTION, "journal")
    finally:
        client.close()
    assert report.keys_examined == 0 and report.journal_ops == []
    assert_clean(drill, tmp_path / "v2")


# -- d: Milvus applies the write, then the client times out ---------------------------------------


@pytest.mark.parametrize(
    ("op", "source", "timeout"),
    [
        ("insert", "journal", "grpc-deadline"),
        pytest.param("upsert", "milvus", "pymilvus-retry-timeout", marks=LITE_ONLY_VARIANT),
        ("delete", "pg", "grpc-deadline"),
        pytest.param("delete", "journal", "pymilvus-retry-timeout", marks=LITE_ONLY_VARIANT),
    ],
)
def test_milvus_applied_then_timeout(
    drill: Settings,
    tmp_path: Path,
    milvus_times_out: Arm,
    op: str,
    source: str,
    timeout: str,
) -> None:
    client = open_client(drill)
    milvus_times_out(op, TIMEOUTS[timeout])
    with pytest.raises(InDoubtError):
        if op == "insert":
            client.insert(COLLECTION, rows([50, 51, 52], "second"))
        elif op == "upsert":
            client.upsert(COLLECTION, rows([8, 9, 53], "second"))
        else:
            client.delete(COLLECTION, ids=[10, 11, 12])
    client.close()
    batch, classes = {
        "insert": ([50, 51, 52], ["only_a"] * 3),
        "upsert": ([8, 9, 53], ["changed", "changed", "only_a"]),
        "delete": ([10, 11, 12], ["only_b"] * 3),
    }[op]
    assert key_states(drill, batch) == {k: ("IN_DOUBT", ()) for k in batch}

    _, found = findings(drill, tmp_path / "v1")
    assert found == {k: (c, "in_doubt") for k, c in zip(batch, classes, strict=True)}

    report = cli_repair(drill, source, keys=batch)
    assert report["keys_examined"] == len(batch) and report["unresolved"] == {}
    if source in ("milvus", "journal"):  # what Milvus holds wins: the write happened
        moved = report["written_to_pg"] + report["deleted_from_pg"]
        expected_rows = rows(batch, "second") if op != "delete" else []
    else:  # PostgreSQL wins: the write is undone in Milvus
        moved = report["written_to_milvus"] + report["deleted_from_milvus"]
        expected_rows = rows(batch, "first")
    assert sorted(moved) == batch
    assert repair_ops(drill) and all(o["status"] == "committed" for o in repair_ops(drill))
    assert all(state != "IN_DOUBT" for state, _ in key_states(drill, batch).values())

    assert_clean(drill, tmp_path / "v2")
    milvus = MilvusClient(uri=drill.milvus_uri, token=drill.milvus_token or "")
    try:
        milvus.load_collection(COLLECTION)
        held = milvus.query(COLLECTION, filter=f"id in {batch}", output_fields=["id", "title"])
    finally:
        milvus.close()
    assert sorted((r["id"], r["title"]) for r in held) == [(r["id"], r["title"]) for r in expected_rows]


@pytest.mark.parametrize("op", ["upsert", pytest.param("delete", marks=LITE_ONLY_VARIANT)])
def test_milvus_timeout_before_applying_is_not_passed_silently(
    drill: Settings, tmp_path: Path, milvus_times_out: Arm, op: str
) -> None:
    """The call timed out before Milvus applied anything: the stores still agree row for row, but nobody can
    know that at write time, so validate must still say so (exit 1, a warning), until repair settles it."""
    client = open_client(drill)
    milvus_times_out(op, DeadlineExceeded, applied=False)
    with pytest.raises(InDoubtError):
        if op == "upsert":
            client.upsert(COLLECTION, rows([5, 70], "second"))
        else:
            client.delete(COLLECTION, ids=[6])
    client.close()
    batch = [5, 70] if op == "upsert" else [6]
    assert key_states(drill, batch) == {k: ("IN_DOUBT", ()) for k in batch}

    summary, found = findings(drill, tmp_path / "v1")
    assert found == {}  # the rows agree...
    assert len(summary.store_warnings) == 1  # ...and the journal's doubt is reported all the same
    assert f"{len(batch)} keys are IN_DOUBT" in summary.store_warnings[0]
    # summary.json, report.md and the exit code say the same thing: exit 1, never "no differences".
    written = tmp_path / "v1"
    assert Summary.read(written) == summary and summary.exit_code == 1
    report_md = (written / "report.md").read_text(encoding="utf-8")
    assert "no differences" not in report_md and "the stores raised 1 warning" in report_md
    assert summary.store_warnings[0] in report_md and summary.store_warnings[0] in (written / "report.html").read_text()

    report = cli_repair(drill, "journal")  # settled by what Milvus holds: the old 5 (or 6), no 70
    assert sorted(report["written_to_pg"]) == [k for k in batch if k < FIRST_ROWS]
    assert report["deleted_from_pg"] == [k for k in batch if k >= FIRST_ROWS]
    assert key_states(drill, batch) == {k: ("EXISTS" if k < FIRST_ROWS else "DELETED", ()) for k in batch}
    assert_clean(drill, tmp_path / "v2")


# -- e: the process is killed between the Milvus acknowledgement and the PostgreSQL commit ------------

KILLED_WRITER = """
import os, signal, sys
from milvusdiff.client.shadow import ShadowClient

client = ShadowClient()
real = client._call_milvus

def ack_then_die(seq, pending, call):
    real(seq, pending, call)
    os.kill(os.getpid(), signal.SIGKILL)

client._call_milvus = ack_then_die
keys = [int(k) for k in sys.argv[1].split(",")]
client.upsert("drill", [{"id": k, "title": f"killed {k}", "emb": [float(k), 6.0, 0.5, -1.0]} for k in keys])
print("survived the kill", flush=True)
"""


def test_process_killed_between_milvus_ack_and_pg_commit(drill: Settings, tmp_path: Path) -> None:
    batch = [3, 4, 60, 61]
    release_lite(drill)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, ",".join(map(str, batch))],
        env=store_env(drill),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "survived" not in done.stdout

    # Started again: the first open of the journal finds the dead process's intent and settles it IN_DOUBT.
    with Journal(drill.journal_path) as journal:
        assert len(journal.recovered) == 1
        op = journal.op(journal.recovered[0])
        assert op is not None and op["status"] == "in_doubt" and op["keys_sample"] == batch
    assert key_states(drill, batch) == {k: ("IN_DOUBT", ()) for k in batch}

    _, found = findings(drill, tmp_path / "v1")
    assert found == {3: ("changed", "in_doubt"), 4: ("changed", "in_doubt")} | {
        k: ("only_a", "in_doubt") for k in (60, 61)
    }

    report = cli_repair(drill, "journal")  # no --keys: the journal's IN_DOUBT keys
    assert sorted(report["written_to_pg"]) == batch
    assert_clean(drill, tmp_path / "v2")
