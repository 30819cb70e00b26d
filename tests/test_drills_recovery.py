"""Kill drills for recovery: a writer killed with SIGKILL while parked inside a real write.

  f. the writer runs as PID 1 of its own PID namespace (as in a container), so its recorded pid is always
     "alive" to a pid check: recovery must still find it dead (its writer lock is gone), turn its keys
     IN_DOUBT, and `repair --from journal` (even with a validate run's --diff) must keep what Milvus holds.
  g. an auto_id insert killed after Milvus applied it, before its keys came back (or whose answer timed out):
     the journal kept the rows' count and digests, so validate calls the rows Milvus holds `in_doubt` (not
     `unknown`) while leaving the journal's files byte-identical, and `repair --from journal` records their
     keys and makes them the truth in the shadow and the journal.

The writer parks itself right after Milvus applied the write and before PostgreSQL commits (a hook around the
real `_call_milvus`), says so on stdout, and waits on stdin; the test kills it from outside at that point.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers.faults import answer_lost
from helpers.files import file_hashes
from helpers.stores import lite_settings
from pymilvus import DataType, MilvusClient
from test_drills import (
    COLLECTION,
    MILVUSDIFF,
    assert_clean,
    create_drill_collection,
    findings,
    key_states,
    release_lite,
    store_env,
)

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import InDoubtError
from milvusdiff.services.journal import WRITERS_DIR, Journal
from milvusdiff.workflow.validate import validate

CAN_UNSHARE = os.geteuid() == 0 and shutil.which("unshare") is not None
needs_unshare = pytest.mark.skipif(not CAN_UNSHARE, reason="needs root and unshare(1) for a PID namespace")


def parked_writer(write: str) -> str:
    """A writer process that runs `write` through a ShadowClient and parks right after Milvus answered it."""
    return f"""
import os, sys
from milvusdiff.client.shadow import ShadowClient

client = ShadowClient()
real = client._call_milvus

def ack_then_park(seq, pending, call):
    result = real(seq, pending, call)
    print("parked", os.getpid(), flush=True)
    sys.stdin.read()  # until killed
    return result

client._call_milvus = ack_then_park
{write}
print("survived the kill", flush=True)
"""


PARKED_WRITER = parked_writer(
    """keys = [int(k) for k in sys.argv[1].split(",")]
client.upsert("drill", [{"id": k, "title": f"killed {k}", "emb": [float(k), 6.0, 0.5, -1.0]} for k in keys])"""
)


@pytest.fixture
def settings(pg_conn: str, journal_path: Path, tmp_path: Path) -> Settings:
    """The test's stores, with Milvus Lite (overriding conftest's `settings`): what is tested here happens in
    the client (journal, shadow), so it stays out of the real-server lane and its time budget."""
    return lite_settings(tmp_path, pg_conn, journal_path)


@pytest.fixture
def drill(settings: Settings) -> Settings:
    create_drill_collection(settings)
    return settings


def namespace_child(unshare_pid: int) -> int:
    """The process unshare forked into the new PID namespace, by its pid outside it."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def run_parked_and_kill(settings: Settings, code: str, argument: str, *, pid_namespace: bool = True) -> str:
    """Start `code` (as PID 1 of a new PID namespace, by default), wait until it parks inside its write,
    SIGKILL it; returns what it printed when it parked."""
    release_lite(settings)
    namespace = ["unshare", "-pf", "--mount-proc"] if pid_namespace else []
    unshare = subprocess.Popen(
        [*namespace, sys.executable, "-c", code, argument],
        env=store_env(settings),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert unshare.stdout is not None
        parked = unshare.stdout.readline()
        assert parked.startswith("parked"), parked + (unshare.stderr.read() if unshare.stderr else "")
        os.kill(namespace_child(unshare.pid) if pid_namespace else unshare.pid, signal.SIGKILL)
        out, _ = unshare.communicate(timeout=60)
    finally:
        if unshare.poll() is None:
            unshare.kill()
            unshare.wait()
    assert "survived" not in out
    return parked


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    release_lite(settings)
    return subprocess.run(
        [str(MILVUSDIFF), *args], env=store_env(settings), capture_output=True, text=True, timeout=180
    )


def milvus_titles(settings: Settings, keys: list[int]) -> list[tuple[int, str]]:
    milvus = MilvusClient(uri=settings.milvus_uri, token=settings.milvus_token or "")
    try:
        milvus.load_collection(COLLECTION)
        held = milvus.query(COLLECTION, filter=f"id in {keys}", output_fields=["id", "title"])
    finally:
        milvus.close()
    return sorted((r["id"], r["title"]) for r in held)


@needs_unshare
def test_writer_killed_as_pid_1_is_recovered_and_milvus_keeps_its_rows(drill: Settings, tmp_path: Path) -> None:
    batch = [3, 4, 60, 61]
    parked = run_parked_and_kill(drill, PARKED_WRITER, ",".join(map(str, batch)))
    assert parked.split() == ["parked", "1"]  # it really was PID 1, which is always alive to a pid check

    with Journal(drill.journal_path) as journal:
        assert len(journal.recovered) == 1
        op = journal.op(journal.recovered[0])
        assert op is not None and op["status"] == "in_doubt" and op["pid"] == 1
    assert key_states(drill, batch) == {k: ("IN_DOUBT", ()) for k in batch}
    assert list((drill.journal_path / WRITERS_DIR).glob("*.lock")) == []  # the dead writer's lock file is gone

    _, found = findings(drill, tmp_path / "v1")
    assert found == {3: ("changed", "in_doubt"), 4: ("changed", "in_doubt")} | {
        k: ("only_a", "in_doubt") for k in (60, 61)
    }

    # The operator's repair names the validate run: its differing keys must follow the journal (IN_DOUBT:
    # Milvus holds the outcome), never PostgreSQL's old rows written back over Milvus.
    done = cli(drill, "repair", "--collection", COLLECTION, "--from", "journal", "--diff", str(tmp_path / "v1"))
    assert done.returncode == 0, done.stderr
    done = cli(drill, "repair", "--collection", COLLECTION, "--from", "journal", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["keys_examined"] == 0  # nothing left unsettled
    assert milvus_titles(drill, batch) == [(k, f"killed {k}") for k in batch]
    assert key_states(drill, batch) == {k: ("EXISTS", ()) for k in batch}
    assert_clean(drill, tmp_path / "v2")


AUTO = "drill_auto"
AUTO_WRITER = parked_writer(
    """n = int(sys.argv[1])
client.insert("drill_auto", [{"title": f"killed {i}", "emb": [float(i), 6.0, 0.5, -1.0]} for i in range(n)])"""
)


def create_auto_collection(settings: Settings, rows: int) -> None:
    client = ShadowClient.from_settings(settings)
    try:
        schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("title", DataType.VARCHAR, max_length=256)
        schema.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
        index = client.prepare_index_params()
        index.add_index("emb", index_type="FLAT", metric_type="L2")
        client.create_collection(AUTO, schema=schema, index_params=index, consistency_level="Strong")
        client.insert(AUTO, [{"title": f"first {i}", "emb": [float(i), 1.0, 0.5, -1.0]} for i in range(rows)])
    finally:
        client.close()


def leave_auto_id_insert_in_doubt(settings: Settings, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An auto_id insert of 40 rows that Milvus applied and whose keys never came back: its writer killed in
    flight (the intent stays pending), or Milvus' answer lost to a timeout (settled in doubt in-process)."""
    if how == "killed":
        run_parked_and_kill(settings, AUTO_WRITER, "40", pid_namespace=False)
        return
    client = ShadowClient.from_settings(settings)
    try:
        with answer_lost(monkeypatch, "insert", applied=True), pytest.raises(InDoubtError):
            client.insert(AUTO, [{"title": f"lost {i}", "emb": [float(i), 6.0, 0.5, -1.0]} for i in range(40)])
    finally:
        client.close()


def in_doubt_rows(run: Path) -> list[int]:
    """The keys a validate run reports, all of them `only_a` (Milvus holds them) with the verdict `in_doubt`."""
    diff = pq.read_table(run / "diff.parquet", columns=["id", "class", "verdict"]).to_pylist()
    assert {(r["class"], r["verdict"]) for r in diff} == {("only_a", "in_doubt")}
    return sorted(r["id"] for r in diff)


@pytest.mark.parametrize("how", ["killed", "timed_out"])
def test_auto_id_insert_in_doubt_is_reported_by_validate_without_a_journal_write_and_settled_by_repair(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    create_auto_collection(settings, 5)
    leave_auto_id_insert_in_doubt(settings, how, monkeypatch)
    status = "pending" if how == "killed" else "in_doubt"  # a kill is settled only by a writer's recovery

    release_lite(settings)
    before = file_hashes(settings.journal_path)
    result = validate(AUTO, out=tmp_path / "v1", settings=settings)
    assert result.exit_code == 1
    adopted = in_doubt_rows(result.out)
    assert len(adopted) == 40  # the rows Milvus holds, found by their digests: in doubt, not unknown
    assert file_hashes(settings.journal_path) == before
    done = cli(settings, "validate", "--collection", AUTO, "--out", str(tmp_path / "v1-cli"), "--quiet")
    assert done.returncode == 1, done.stderr
    assert in_doubt_rows(tmp_path / "v1-cli") == adopted
    assert file_hashes(settings.journal_path) == before
    with Journal(settings.journal_path, readonly=True) as journal:
        (op,) = [op for op in journal.iter_ops(AUTO) if op["status"] == status]
        assert op["auto_id"] is True and op["n_rows"] == 40  # recorded at intent time, before Milvus was called
        assert op["n_keys"] == 0 and "adopted_rows" not in op  # validate recorded nothing

    done = cli(settings, "repair", "--collection", AUTO, "--from", "journal", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["written_to_pg"]) == adopted and report["unresolved"] == {}
    with Journal(settings.journal_path) as journal:
        (op,) = [op for op in journal.iter_ops(AUTO) if op["status"] == "in_doubt"]
        assert op["adopted_rows"] == 40 and op["n_keys"] == 40  # repair recorded the keys it settled
        states = journal.states(AUTO, adopted)
        assert {s.state for s in states.values()} == {"EXISTS"} and len(states) == 40
        assert journal.unkeyed_in_doubt(AUTO) == {}

    release_lite(settings)
    result = validate(AUTO, out=tmp_path / "v2", settings=settings)
    assert result.exit_code == 0, result.summary
    assert result.summary.rows_a == result.summary.rows_b == 45
