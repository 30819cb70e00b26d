"""A rename_collection whose outcome is in doubt is settled when a ShadowClient next opens, by what Milvus holds.

The fault is injected into the real flow: pymilvus' rename raises a timeout after or before it really renamed,
the writer is killed right after Milvus renamed (before PostgreSQL commits), or PostgreSQL's commit fails after
Milvus renamed. Recovery then finishes the shadow's rename, or keeps the old name, and validate finds the stores
in agreement; when Milvus holds both names it guesses nothing, and validate says so, until Milvus holds exactly
one. Recovery asks Milvus which name it holds, so these run on Milvus Lite and again on the real-server lane
(conftest's `settings`; Milvus 2.3.5 renames within a database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.faults import answer_lost
from helpers.schemas import create_small_collection
from pymilvus import MilvusClient
from test_drills import release_lite
from test_drills_recovery import parked_writer, run_parked_and_kill
from test_shadow_client import terminate_before_commit

from milvusdiff.client.renames import RenameRecovery
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import InDoubtError, SyncError
from milvusdiff.services.journal import Journal
from milvusdiff.services.pg import PendingWrite
from milvusdiff.workflow.validate import validate

KILLED_RENAME = parked_writer('client.rename_collection("before", "after")')


@pytest.fixture
def before(settings: Settings) -> Iterator[Settings]:
    """Collection `before` with keys 0..19, written through a ShadowClient that is closed again."""
    client = ShadowClient.from_settings(settings)
    try:
        create_small_collection(client, "before")
        client.insert("before", rows(range(20)))
    finally:
        client.close()
    yield settings


def rows(keys: range, tag: str = "v1") -> list[dict[str, Any]]:
    return [{"id": k, "title": f"{tag} {k}", "emb": [float(k), 1.0, 0.0, 0.5]} for k in keys]


def rename_in_doubt(settings: Settings, monkeypatch: pytest.MonkeyPatch, *, applied: bool) -> int:
    """rename_collection("before", "after") whose answer is lost to a timeout, after (`applied`) or before pymilvus
    really renamed; returns its journal sequence number."""
    client = ShadowClient.from_settings(settings)
    try:
        with answer_lost(monkeypatch, "rename_collection", applied=applied), pytest.raises(InDoubtError):
            client.rename_collection("before", "after")
        (record,) = client.journal.renames_in_doubt()
        assert record["status"] == "in_doubt" and client.shadow.collections() == ["before"]
        return int(record["seq"])
    finally:
        client.close()


def reopen_and_write(settings: Settings, name: str) -> list[RenameRecovery]:
    """Open a ShadowClient (its recovery runs), write 5 more rows to `name`, close; returns its rename_recovery."""
    client = ShadowClient.from_settings(settings)
    try:
        client.load_collection(name)  # Milvus Lite releases a renamed collection, and every reopened one
        client.insert(name, rows(range(20, 25)))
        assert client.shadow.collections() == [name] and client.journal.collections() == [name]
        return client.rename_recovery
    finally:
        client.close()


def settled(settings: Settings, seq: int) -> dict[str, Any]:
    """The op record of rename `seq`, once no rename is in doubt any more."""
    with Journal(settings.journal_path, readonly=True) as journal:
        assert journal.renames_in_doubt() == []
        record = journal.op(seq)
    assert record is not None
    return record


def assert_agree(settings: Settings, name: str, out: Path) -> None:
    release_lite(settings)
    result = validate(name, out=out, settings=settings)
    assert result.exit_code == 0, (result.summary, result.store_warnings)
    assert result.summary.rows_a == result.summary.rows_b == 25


def assert_renamed_at_reopen(settings: Settings, seq: int, out: Path) -> None:
    """The next ShadowClient finishes rename `seq` to `after`, and the stores then agree."""
    (recovery,) = reopen_and_write(settings, "after")
    assert (recovery.seq, recovery.outcome) == (seq, "renamed")
    assert settled(settings, seq)["status"] == "committed"
    assert_agree(settings, "after", out)


@pytest.mark.parametrize("applied", [True, False], ids=["milvus-renamed", "milvus-did-not"])
def test_a_rename_whose_answer_was_lost_is_settled_by_what_milvus_holds(
    before: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: bool
) -> None:
    seq = rename_in_doubt(before, monkeypatch, applied=applied)
    if not applied:  # the stores agree on `before`, yet validate must not call it clean while the rename is open
        result = validate("before", out=tmp_path / "open", settings=before)
        assert result.exit_code == 1 and result.summary.changed == result.summary.only_a == 0
        assert any(f"(operation {seq}) is in doubt" in w for w in result.store_warnings), result.store_warnings

    name = "after" if applied else "before"
    (recovery,) = reopen_and_write(before, name)
    assert (recovery.seq, recovery.outcome) == (seq, "renamed" if applied else "not renamed")
    record = settled(before, seq)
    assert record["status"] == ("committed" if applied else "failed")
    assert record["recovery"] == recovery.why and f"Milvus holds {name!r}" in recovery.why
    assert_agree(before, name, tmp_path / "run")
    assert reopen_and_write(before, name) == []  # settled once, for good


def test_a_rename_whose_writer_was_killed_after_milvus_renamed_is_finished(before: Settings, tmp_path: Path) -> None:
    run_parked_and_kill(before, KILLED_RENAME, "", pid_namespace=False)
    with Journal(before.journal_path, readonly=True) as journal:
        (pending,) = journal.renames_in_doubt()  # a reader sees it in doubt; only a writer's recovery settles it
        assert pending["status"] == "pending"

    assert_renamed_at_reopen(before, pending["seq"], tmp_path / "run")


def test_a_rename_whose_shadow_commit_failed_after_milvus_renamed_is_finished(
    before: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert before.pg_conn is not None
    client = ShadowClient.from_settings(before)
    try:
        with monkeypatch.context() as patch, pytest.raises(SyncError, match="PostgreSQL could not commit"):
            patch.setattr(PendingWrite, "commit", terminate_before_commit(before.pg_conn))
            client.rename_collection("before", "after")
        (record,) = client.journal.renames_in_doubt()
        assert record["status"] == "pg_missing" and client.shadow.collections() == ["before"]
    finally:
        client.close()

    assert_renamed_at_reopen(before, record["seq"], tmp_path / "run")


def test_a_rename_is_never_guessed_while_milvus_holds_both_names(
    before: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seq = rename_in_doubt(before, monkeypatch, applied=True)
    stray = MilvusClient(uri=before.milvus_uri)
    try:
        create_small_collection(stray, "before")  # made behind the ShadowClient's back: both names exist
    finally:
        stray.close()

    client = ShadowClient.from_settings(before)
    try:
        (recovery,) = client.rename_recovery
        assert recovery.outcome == "undecided" and "both" in recovery.why
        assert client.shadow.collections() == ["before"] and client.journal.collections() == ["before"]
        (record,) = client.journal.renames_in_doubt()
        assert (record["seq"], record["status"], record["recovery"]) == (seq, "in_doubt", recovery.why)
    finally:
        client.close()
    release_lite(before)
    result = validate("before", out=tmp_path / "undecided", settings=before)
    assert result.exit_code == 1
    assert any(f"(operation {seq}) is in doubt" in w for w in result.store_warnings), result.store_warnings

    stray = MilvusClient(uri=before.milvus_uri)
    try:
        stray.drop_collection("before")  # Milvus holds only the new name again: the next client settles it
    finally:
        stray.close()
    (recovery,) = reopen_and_write(before, "after")
    assert (recovery.seq, recovery.outcome) == (seq, "renamed")
    assert_agree(before, "after", tmp_path / "run")
