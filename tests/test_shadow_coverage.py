"""The ShadowClient covers every MilvusClient method: each public method of the installed pymilvus is
mirrored, refused before Milvus is touched, or passes through because it changes no row and no schema.
The collection-level writes it mirrors (rename, truncate, aliases, databases) leave Milvus, the shadow
and the journal in agreement, as `validate` proves.

Tests that request `settings` run on Milvus Lite here and again on the real-server lane (Milvus 2.3.5),
which skips, saying why, what that server lacks (TruncateCollection; DescribeDatabase, which use_database
calls). The ones that build a Lite path from tmp_path test refusals, which never reach Milvus, or Lite itself.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pymilvus
import pytest
from helpers.schemas import create_small_collection
from pymilvus import MilvusClient
from test_workload_support import connection_args

from milvusdiff import ShadowUnsupportedError as ExportedError
from milvusdiff.cli.main import main
from milvusdiff.client.coverage import MIRRORED, PASS_THROUGH, REFUSED
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import ShadowUnsupportedError, SyncError, first_line
from milvusdiff.workflow.validate import validate
from milvusdiff.workload.corrupt import corrupt


def rows(keys: range | list[int], tag: str = "v1") -> list[dict[str, Any]]:
    return [{"id": k, "title": f"{tag} {k}", "emb": [float(k), 1.0, 0.0, 0.5]} for k in keys]


def agree(settings: Settings, collection: str, out: Path) -> int:
    """validate the collection; it must find no difference and nothing in doubt. Returns the rows compared."""
    result = validate(collection, out=out, settings=settings)
    assert result.exit_code == 0, (result.summary, result.store_warnings)
    assert result.summary.rows_a == result.summary.rows_b
    return int(result.summary.rows_a)


def ops(journal: Any, collection: str) -> list[tuple[str, str]]:
    return [(op["op"], op["status"]) for op in journal.iter_ops(collection)]


@pytest.fixture
def client(settings: Settings) -> Iterator[ShadowClient]:
    shadow = ShadowClient.from_settings(settings)
    yield shadow
    shadow.close()


@pytest.fixture
def lite(tmp_path: Path, pg_conn: str, journal_path: Path) -> Iterator[tuple[ShadowClient, Settings]]:
    """A ShadowClient on a Milvus Lite database of its own, and the settings that reach the same stores."""
    settings = Settings(
        milvus_uri=str(tmp_path / "lite.db"),
        milvus_token=None,
        pg_conn=pg_conn,
        journal_path=journal_path,
        home=tmp_path / "home",
    )
    shadow = ShadowClient.from_settings(settings)
    yield shadow, settings
    shadow.close()


# -- the classification ----------------------------------------------------------------------------


def public_methods() -> set[str]:
    return {name for name, member in inspect.getmembers(MilvusClient) if not name.startswith("_") and callable(member)}


def test_every_public_milvusclient_method_is_read_mirrored_or_refused() -> None:
    refused = set(REFUSED)
    assert not (MIRRORED & refused) and not (MIRRORED & PASS_THROUGH) and not (refused & PASS_THROUGH)
    methods = public_methods()
    unclassified = sorted(methods - MIRRORED - refused - PASS_THROUGH)
    assert not unclassified, (
        f"pymilvus {pymilvus.__version__} has MilvusClient methods the ShadowClient has not classified: "
        f"{unclassified}; decide in milvusdiff/client/coverage.py whether each is mirrored, refused or passes through"
    )
    assert not sorted((MIRRORED | refused | PASS_THROUGH) - methods), "classified methods pymilvus no longer has"


def test_the_readme_names_every_mirrored_and_refused_method() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What the ShadowClient mirrors", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(\w+)[`(]", section))  # `insert`, or `delete(ids=...)`
    assert not sorted(MIRRORED - named) and not sorted(set(REFUSED) - named)


def test_every_mirrored_and_refused_method_is_the_shadow_clients_own() -> None:
    inherited = sorted(m for m in MIRRORED | set(REFUSED) if getattr(ShadowClient, m) is getattr(MilvusClient, m))
    assert not inherited


@pytest.mark.parametrize("method", sorted(REFUSED))
def test_a_refused_method_raises_before_milvus_is_touched(
    lite: tuple[ShadowClient, Settings], monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    client, _ = lite
    before = len(list(client.journal.iter_ops()))

    def milvus_touched() -> None:
        raise AssertionError(f"{method} reached Milvus")

    monkeypatch.setattr(client, "_get_connection", milvus_touched)
    with pytest.raises(ShadowUnsupportedError, match=method) as refused:
        getattr(client, method)("docs", "field", timeout=1)
    assert REFUSED[method] in str(refused.value)
    assert len(list(client.journal.iter_ops())) == before
    assert ExportedError is ShadowUnsupportedError


def test_add_collection_field_is_refused_and_the_stores_still_agree(
    lite: tuple[ShadowClient, Settings], tmp_path: Path
) -> None:
    client, settings = lite
    create_small_collection(client, "docs")
    client.insert("docs", rows(range(10)))
    fields = [f["name"] for f in client.describe_collection("docs")["fields"]]
    with pytest.raises(ShadowUnsupportedError, match="add_collection_field"):
        client.add_collection_field("docs", "extra", pymilvus.DataType.INT64, nullable=True)
    assert [f["name"] for f in client.describe_collection("docs")["fields"]] == fields
    assert agree(settings, "docs", tmp_path / "run") == 10


def test_a_ttl_is_refused_other_collection_properties_pass(lite: tuple[ShadowClient, Settings]) -> None:
    client, _ = lite
    create_small_collection(client, "docs")
    with pytest.raises(ShadowUnsupportedError, match=r"collection\.ttl\.seconds"):
        client.alter_collection_properties("docs", {"collection.ttl.seconds": 60, "mmap.enabled": True})
    assert "collection.ttl.seconds" not in client.describe_collection("docs").get("properties", {})


# -- rename and truncate ---------------------------------------------------------------------------


def test_rename_collection_moves_the_shadow_table_and_the_journal(
    client: ShadowClient, settings: Settings, tmp_path: Path
) -> None:
    create_small_collection(client, "before")
    client.insert("before", rows(range(20)))
    client.rename_collection("before", "after")
    client.load_collection("after")  # Milvus Lite releases a renamed collection
    client.insert("after", rows(range(20, 25)))
    client.delete("after", filter="id < 5")

    assert client.shadow.spec("before") is None and client.journal.collection_spec("before") is None
    assert client.shadow.collections() == ["after"] and client.journal.collections() == ["after"]
    states = client.journal.states("after", [0, 10, 24])
    assert [states[k].state for k in (0, 10, 24)] == ["DELETED", "EXISTS", "EXISTS"]
    assert client.journal.states("before", [10]) == {}
    assert ("rename_collection", "committed") in ops(client.journal, "before")
    client.close()
    assert agree(settings, "after", tmp_path / "run") == 20


def test_rename_into_another_database_is_refused_before_milvus(client: ShadowClient) -> None:
    create_small_collection(client, "docs")
    with pytest.raises(ShadowUnsupportedError, match="another database"):
        client.rename_collection("docs", "moved", target_db="elsewhere_db")
    assert client.has_collection("docs") and not client.has_collection("moved")
    assert client.shadow.collections() == ["docs"]


def test_truncate_collection_empties_every_store_and_milvus_is_not_blamed(
    client: ShadowClient, settings: Settings, tmp_path: Path
) -> None:
    create_small_collection(client, "logs")
    client.insert("logs", rows(range(30)))
    try:
        client.truncate_collection("logs")
    except SyncError as exc:
        if "UNIMPLEMENTED: unknown method TruncateCollection" not in str(exc):
            raise
        # A server without the method (the lane's Milvus 2.3.5) rejects it: the journal says so, nothing changed.
        assert ops(client.journal, "logs")[-1] == ("truncate_collection", "failed")
        client.close()
        assert agree(settings, "logs", tmp_path / "run") == 30
        pytest.skip(f"this Milvus server has no TruncateCollection; the rejected truncate changed no store ({exc})")
    states = client.journal.states("logs", list(range(30)))
    assert {(s.state, s.last_op) for s in states.values()} == {("DELETED", "truncate_collection")}
    client.insert("logs", rows(range(100, 105)))
    client.close()
    assert agree(settings, "logs", tmp_path / "run") == 5


# -- aliases ---------------------------------------------------------------------------------------


def test_writes_through_an_alias_land_on_its_collections_shadow(
    client: ShadowClient, settings: Settings, tmp_path: Path
) -> None:
    create_small_collection(client, "blue")
    create_small_collection(client, "green")
    client.create_alias("blue", "live")
    client.insert("live", rows(range(10)))
    client.delete("live", filter="id < 2")
    client.alter_alias("green", "live")
    client.upsert("live", rows(range(100, 105)))
    client.drop_alias("live")

    assert client.shadow.spec("live") is None and sorted(client.shadow.collections()) == ["blue", "green"]
    assert ("create_alias", "committed") in ops(client.journal, "blue")
    assert ("alter_alias", "committed") in ops(client.journal, "green")
    assert ("drop_alias", "committed") in ops(client.journal, "green")
    client.close()
    assert agree(settings, "blue", tmp_path / "blue") == 8
    assert agree(settings, "green", tmp_path / "green") == 5


# -- databases -------------------------------------------------------------------------------------


def test_one_collection_name_in_two_databases_has_two_shadows(
    client: ShadowClient, settings: Settings, tmp_path: Path
) -> None:
    other = f"other_{uuid.uuid4().hex[:8]}"
    client.create_database(other)
    create_small_collection(client, "docs")
    create_small_collection(client, "docs", db_name=other)
    client.insert("docs", rows(range(10)))
    client.insert("docs", rows(range(100, 104), "other"), db_name=other)
    client.delete("docs", ids=[100], db_name=other)
    client.upsert("docs", rows([101], "again"), db_name=other)

    assert client.spec("docs").name == client.spec("docs", db_name=other).name == "docs"
    shadow, journal = client.stores(other)
    assert shadow.collections() == ["docs"] and journal.states("docs", [100])[100].state == "DELETED"
    assert client.journal.states("docs", [100]) == {}
    client.close()
    assert agree(settings, "docs", tmp_path / "here") == 10
    assert agree(settings, f"{other}.docs", tmp_path / "there") == 3
    # Its snapshots name it `other.docs`, as the journal does: compare finds its key states in the LMDB journal.
    snapshots = tmp_path / "there" / "snapshots"
    with pytest.raises(SystemExit) as exited:
        main(["compare", str(snapshots / "milvus"), str(snapshots / "pg"), "--journal", str(settings.journal_path)])
    assert exited.value.code == 0

    again = ShadowClient.from_settings(settings)
    try:
        again.drop_collection("docs", db_name=other)
        again.drop_database(other)
        assert other not in again.list_databases()
        shadow, journal = again.stores(other)
        assert shadow.collections() == [] and journal.collections() == []
        assert again.shadow.collections() == ["docs"]
    finally:
        again.close()


def test_use_database_is_followed_by_the_shadow(client: ShadowClient, settings: Settings, tmp_path: Path) -> None:
    home, archive = client.database(), f"archive_{uuid.uuid4().hex[:8]}"  # a server's databases outlive tests
    client.create_database(archive)
    try:
        client.use_database(archive)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise
        client.drop_database(archive)
        pytest.skip(f"this Milvus server cannot use_database: pymilvus calls DescribeDatabase ({first_line(exc)})")
    archived = f"{archive}.docs"  # how the commands name the other database's collection
    create_small_collection(client, "docs")
    client.insert("docs", rows(range(50, 57)))
    client.use_database(home)
    create_small_collection(client, "docs")
    client.insert("docs", rows(range(3)))
    assert agree(settings, archived, tmp_path / "archive") == 7
    assert agree(settings, "docs", tmp_path / "default") == 3

    # The commands reach it by that name: a drill, found, then repaired.
    assert len(corrupt(settings, archived, store="milvus", kind="delete", count=1, seed=1)) == 1
    found = validate(archived, out=tmp_path / "found", settings=settings)
    assert found.exit_code == 1 and found.summary.only_b == 1
    with pytest.raises(SystemExit) as exited:
        main(["repair", "--collection", archived, "--from", "pg", "--diff", str(found.out), *connection_args(settings)])
    assert exited.value.code == 0
    assert agree(settings, archived, tmp_path / "repaired") == 7
    assert agree(settings, "docs", tmp_path / "untouched") == 3
    client.drop_collection("docs", db_name=archive)
    client.drop_database(archive)


def test_a_quick_setup_collection_in_another_database_is_refused(client: ShadowClient) -> None:
    other = f"other_{uuid.uuid4().hex[:8]}"
    client.create_database(other)
    with pytest.raises(ShadowUnsupportedError, match="use_database"):
        client.create_collection("quick", dimension=4, db_name=other)
    assert client.stores(other)[0].collections() == []
    client.drop_database(other)
