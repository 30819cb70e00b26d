"""ShadowClient against embedded Milvus Lite and a real PostgreSQL: every mirrored operation, on a schema
with every type Lite supports, ends with the three stores in agreement; every failure path, injected
into the real flow, ends with the journal saying exactly what happened.

Milvus Lite behaviour is relied on (e.g. an inserted duplicate key overwrites), so each test builds its
Lite path under tmp_path rather than using the `milvus_uri` fixture that the server lane redirects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pymilvus
import pytest
from helpers.agreement import assert_agreement, milvus_table, read_stores, table_values
from helpers.schemas import DIM, every_type_index, every_type_rows, every_type_schema, key_for
from psycopg import sql
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.errors import InDoubtError, SchemaError, SyncError
from milvusdiff.services.pg import PendingWrite, ShadowStore
from milvusdiff.types.convert import rows_to_table
from milvusdiff.types.digest import row_digests

KEY_TYPES = ["INT64", "VARCHAR"]
PARTITION = 'p"1; DROP TABLE x;--'


@pytest.fixture
def client(tmp_path: Path, pg_conn: str, pg_schema: str, journal_path: Path) -> Iterator[ShadowClient]:
    shadow = ShadowClient(str(tmp_path / "milvus.db"), pg_conn=pg_conn, journal_path=journal_path, pg_schema=pg_schema)
    yield shadow
    shadow.close()


def create_every_type(client: ShadowClient, name: str, key_type: str = "INT64", *, auto_id: bool = False) -> None:
    client.create_collection(
        name, schema=every_type_schema(key_type, auto_id=auto_id), index_params=every_type_index(client)
    )


def pg_table_exists(client: ShadowClient, name: str) -> bool:
    with client.shadow.connection() as conn:
        row = conn.execute("SELECT to_regclass(%s)", [sql.Identifier(client.shadow.schema, name).as_string(conn)])
        found = row.fetchone()
    return found is not None and found[0] is not None


def ops(client: ShadowClient, name: str) -> list[tuple[str, str]]:
    return [(op["op"], op["status"]) for op in client.journal.iter_ops(name)]


def keys_of(stores_table: Any, key: str = "id") -> list[Any]:
    return stores_table.column(key).to_pylist()


# -- every operation, every type -----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_every_operation_keeps_the_three_stores_in_agreement(client: ShadowClient, key_type: str) -> None:
    def key(i: int) -> int | str:
        return key_for(i, key_type)

    def rows(numbers: range | list[int], version: int = 0) -> list[dict[str, Any]]:
        return every_type_rows(list(numbers), version=version, key_type=key_type)

    name = "every_type"
    create_every_type(client, name, key_type)
    assert assert_agreement(client, name).milvus.num_rows == 0

    inserted = client.insert(name, rows(range(30)))
    assert inserted["insert_count"] == 30 and list(inserted["ids"]) == [key(i) for i in range(30)]
    assert assert_agreement(client, name).milvus.num_rows == 30

    client.create_partition(name, PARTITION)
    client.insert(name, rows(range(30, 45)), partition_name=PARTITION)
    stores = assert_agreement(client, name)
    partitions = dict(zip(keys_of(stores.pg), stores.pg.column("$partition").to_pylist(), strict=True))
    assert partitions == {key(i): "_default" if i < 30 else PARTITION for i in range(45)}

    upserted = client.upsert(name, rows(range(10), version=1))
    assert upserted["upsert_count"] == 10
    client.upsert(name, rows(range(40, 45), version=1), partition_name=PARTITION)
    stores = assert_agreement(client, name)
    written = rows_to_table(rows(range(10), version=1), stores.spec)
    assert table_values(stores.milvus.slice(0, 10), written.column_names) == table_values(written)

    client.delete(name, ids=[key(1), key(2), key(99)])  # 99 never existed
    client.delete(name, filter="i16 < -25 and i16 > -29")  # rows 26, 27, 28
    client.delete(name, ids=[key(3), key(31)], partition_name=PARTITION)  # 3 lives in _default: stays
    client.delete(name, filter="b == true", partition_name=PARTITION)
    stores = assert_agreement(client, name)
    remaining = set(keys_of(stores.milvus))
    assert {key(3), key(32)} <= remaining and not {key(1), key(2), key(26), key(27), key(28), key(31)} & remaining
    assert not any(r["b"] for r in stores.milvus.to_pylist() if r["$partition"] == PARTITION)
    assert {k: s.state for k, s in client.journal.states(name, [key(1), key(99), key(31)]).items()} == {
        key(1): "DELETED",
        key(99): "DELETED",
        key(31): "DELETED",
    }

    client.insert(name, rows([5], version=2))  # key 5 exists: Lite overwrites, the journal flags it
    stores = assert_agreement(client, name)
    assert client.journal.states(name, [key(5)])[key(5)].flags == ("duplicate_insert",)

    in_partition = [
        k for k, p in zip(keys_of(stores.pg), stores.pg.column("$partition").to_pylist(), strict=True) if p == PARTITION
    ]
    client.drop_partition(name, PARTITION)
    stores = assert_agreement(client, name)
    assert set(stores.pg.column("$partition").to_pylist()) == {"_default"}
    assert {s.last_op for s in client.journal.states(name, in_partition).values()} == {"drop_partition"}
    assert client.list_partitions(name) == ["_default"]

    assert {status for _, status in ops(client, name)} == {"committed"}
    client.drop_collection(name)
    assert not client.has_collection(name) and not pg_table_exists(client, name)
    assert client.shadow.spec(name) is None and client.journal.collection_spec(name) is None
    assert client.journal.states(name, [key(i) for i in range(45)]) == {}
    assert ops(client, name)[-1] == ("drop_collection", "committed")


def test_quick_setup_collections_with_integer_and_string_keys(client: ShadowClient) -> None:
    client.create_collection("quick", dimension=DIM)
    rows = [{"id": i, "vector": [float(i)] * DIM, "tag": f"t{i}", "extra": {"n": i}} for i in range(12)]
    client.insert("quick", rows)
    client.delete("quick", ids=3)
    stores = assert_agreement(client, "quick")
    assert stores.spec.enable_dynamic_field and keys_of(stores.milvus) == [i for i in range(12) if i != 3]
    assert stores.pg.column("$meta").to_pylist()[0] == '{"extra":{"n":0},"tag":"t0"}'

    client.create_collection(
        "quick_str", dimension=DIM, id_type="string", max_length=32, primary_field_name="pk", vector_field_name="emb"
    )
    client.insert("quick_str", [{"pk": f"k{i}", "emb": [0.5] * DIM} for i in range(5)])
    client.upsert("quick_str", {"pk": "k1", "emb": [1.5] * DIM, "note": "single dict"})
    client.delete("quick_str", ids="k2")
    stores = assert_agreement(client, "quick_str")
    assert keys_of(stores.milvus, "pk") == ["k0", "k1", "k3", "k4"]
    assert stores.spec.primary.type == "VARCHAR"


def test_auto_id_keys_are_mirrored_as_milvus_assigned_them(client: ShadowClient) -> None:
    create_every_type(client, "auto", auto_id=True)
    first = client.insert("auto", every_type_rows(list(range(20)), key_type=None))
    second = client.insert("auto", every_type_rows(list(range(20, 25)), key_type=None))
    ids = list(first["ids"]) + list(second["ids"])
    assert first["insert_count"] == 20 and len(set(ids)) == 25
    stores = assert_agreement(client, "auto")
    assert keys_of(stores.milvus) == sorted(ids)
    assert [op["n_keys"] for op in client.journal.iter_ops("auto")] == [20, 5]
    client.delete("auto", ids=ids[:5])
    upsert_rows = every_type_rows(list(range(5, 8)), version=3, key_type=None)
    for row, k in zip(upsert_rows, ids[5:8], strict=True):
        row["id"] = k
    client.upsert("auto", upsert_rows)
    assert len(keys_of(assert_agreement(client, "auto").milvus)) == 20

    client.create_collection("auto_quick", dimension=DIM, auto_id=True)
    result = client.insert("auto_quick", [{"vector": [1.0] * DIM, "n": i} for i in range(4)])
    assert keys_of(assert_agreement(client, "auto_quick").milvus) == sorted(result["ids"])


def test_partition_key_collections_agree_with_the_partition_left_unknown(client: ShadowClient) -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("tenants", schema=schema, index_params=index)
    client.insert("tenants", [{"id": i, "tenant": f"t{i % 3}", "vec": [float(i)] * DIM} for i in range(12)])
    client.upsert("tenants", [{"id": 0, "tenant": "t2", "vec": [0.5] * DIM}])
    client.delete("tenants", filter='tenant == "t1"')
    stores = assert_agreement(client, "tenants")
    assert stores.spec.field("tenant").is_partition_key
    assert keys_of(stores.milvus) == [0, 2, 3, 5, 6, 8, 9, 11]
    assert set(stores.pg.column("$partition").to_pylist()) == {None}


def test_empty_writes_and_deletes_that_match_nothing(client: ShadowClient) -> None:
    client.create_collection("quiet", dimension=DIM)
    client.insert("quiet", [{"id": 1, "vector": [1.0] * DIM}])
    assert client.insert("quiet", [])["insert_count"] == 0
    client.delete("quiet", filter="id > 100")
    assert ops(client, "quiet") == [("insert", "committed")]
    assert keys_of(assert_agreement(client, "quiet").milvus) == [1]


def test_a_delete_without_ids_or_filter_is_refused_like_milvus_does(client: ShadowClient) -> None:
    client.create_collection("keep", dimension=DIM)
    client.insert("keep", [{"id": i, "vector": [1.0] * DIM} for i in range(3)])
    for arguments in ({}, {"filter": ""}, {"ids": []}):
        with pytest.raises(pymilvus.exceptions.MilvusException):
            client.delete("keep", **arguments)
    assert keys_of(assert_agreement(client, "keep").milvus) == [0, 1, 2]
    client.delete("keep", ids=[], filter="id == 1")  # an empty id list with a filter deletes by the filter
    assert keys_of(assert_agreement(client, "keep").milvus) == [0, 2]


def test_collections_outside_the_shadow_and_re_created_namesakes(client: ShadowClient, tmp_path: Path) -> None:
    client.create_collection("twice", dimension=DIM)
    client.insert("twice", [{"id": 1, "vector": [1.0] * DIM}])
    with pytest.raises(MilvusException, match="already exists"):  # Lite refuses, as the bare client does
        client.create_collection("twice", dimension=DIM)
    assert keys_of(assert_agreement(client, "twice").milvus) == [1]

    client.drop_collection("twice")
    client.create_collection("twice", dimension=DIM)
    client.insert("twice", [{"id": 1, "vector": [2.0] * DIM}])
    stores = assert_agreement(client, "twice")
    assert client.journal.states("twice", [1])[1].flags == ()  # the old key 1 was forgotten with the drop
    assert stores.journal.num_rows == 1

    MilvusClient.create_collection(client, "bare", dimension=DIM)  # created behind the shadow's back
    with pytest.raises(SchemaError, match="'bare' has no shadow copy"):
        client.insert("bare", [{"id": 1, "vector": [1.0] * DIM}])
    assert client.query("bare", filter="", output_fields=["id"], limit=10) == []


# -- failure paths, injected into the real flow -----------------------------------------------------------


class DeadlineExceeded(grpc.RpcError):
    """What grpc raises when a call's deadline passes; the server may or may not have applied it."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "Deadline Exceeded"


def setup_rows(client: ShadowClient) -> None:
    create_every_type(client, "faults")
    client.insert("faults", every_type_rows(list(range(10))))


def test_a_definite_milvus_error_rolls_postgresql_back_and_fails_the_operation(
    client: ShadowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_rows(client)

    def refuse(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
        raise MilvusException(code=1100, message="refused by the test")

    monkeypatch.setattr(pymilvus.MilvusClient, "insert", refuse)
    with pytest.raises(SyncError, match="Milvus rejected operation") as raised:
        client.insert("faults", every_type_rows(list(range(10, 15))))
    assert isinstance(raised.value.__cause__, MilvusException) and not isinstance(raised.value, InDoubtError)
    assert ops(client, "faults")[-1] == ("insert", "failed")
    assert "refused by the test" in list(client.journal.iter_ops("faults"))[-1]["error"]
    assert keys_of(assert_agreement(client, "faults").milvus) == list(range(10))


def test_an_unknown_milvus_outcome_marks_the_keys_in_doubt(
    client: ShadowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_rows(client)
    real_upsert = pymilvus.MilvusClient.upsert

    def applied_then_timed_out(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
        real_upsert(self, *args, **kwargs)
        raise DeadlineExceeded()

    monkeypatch.setattr(pymilvus.MilvusClient, "upsert", applied_then_timed_out)
    written = every_type_rows([8, 9, 10, 11], version=1)
    with pytest.raises(InDoubtError, match="IN_DOUBT") as raised:
        client.upsert("faults", written)
    assert isinstance(raised.value.__cause__, grpc.RpcError)
    assert "DeadlineExceeded: DEADLINE_EXCEEDED: Deadline Exceeded" in str(raised.value)  # gRPC's code and details
    assert ops(client, "faults")[-1] == ("upsert", "in_doubt")

    stores = read_stores(client, "faults")
    assert keys_of(stores.milvus) == list(range(12))  # Milvus applied it ...
    assert keys_of(stores.pg) == list(range(10))  # ... PostgreSQL rolled back ...
    assert stores.journal_keys("IN_DOUBT") == [8, 9, 10, 11]  # ... and the journal does not guess
    doubtful = {k: s.digest for k, s in client.journal.states("faults", [8, 9, 10, 11]).items()}
    in_milvus = dict(zip(keys_of(stores.milvus), row_digests(stores.milvus, stores.spec).to_pylist(), strict=True))
    assert doubtful == {k: in_milvus[k] for k in (8, 9, 10, 11)}  # the intended rows are what Milvus holds

    monkeypatch.setattr(pymilvus.MilvusClient, "upsert", real_upsert)
    client.upsert("faults", written)  # writing again settles it
    assert keys_of(assert_agreement(client, "faults").milvus) == list(range(12))


def test_a_timed_out_delete_marks_its_keys_in_doubt(client: ShadowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_rows(client)

    def time_out(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
        raise MilvusException(code=1, message="rpc timeout: deadline exceeded")

    monkeypatch.setattr(pymilvus.MilvusClient, "delete", time_out)
    with pytest.raises(InDoubtError):
        client.delete("faults", filter="i16 > -3")
    assert read_stores(client, "faults").journal_keys("IN_DOUBT") == [0, 1, 2]
    assert keys_of(read_stores(client, "faults").pg) == list(range(10))


def terminate_before_commit(pg_conn: str) -> Callable[[PendingWrite], None]:
    """A PendingWrite.commit that first has another connection kill the transaction's backend."""
    real_commit = PendingWrite.commit

    def commit(self: PendingWrite) -> None:
        conn = self._conn
        assert conn is not None
        with psycopg.connect(pg_conn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        real_commit(self)

    return commit


def test_a_postgresql_commit_failure_after_milvus_succeeded_is_journaled_pg_missing(
    client: ShadowClient, monkeypatch: pytest.MonkeyPatch, pg_conn: str
) -> None:
    setup_rows(client)
    monkeypatch.setattr(PendingWrite, "commit", terminate_before_commit(pg_conn))
    written = every_type_rows([10, 11, 12])
    with pytest.raises(SyncError, match="PostgreSQL could not commit") as raised:
        client.insert("faults", written)
    assert isinstance(raised.value.__cause__, psycopg.Error) and not isinstance(raised.value, InDoubtError)
    assert ops(client, "faults")[-1] == ("insert", "pg_missing")
    stores = read_stores(client, "faults")
    assert keys_of(stores.milvus) == list(range(13)) and keys_of(stores.pg) == list(range(10))
    states = client.journal.states("faults", [10, 11, 12])
    assert {(s.state, s.flags) for s in states.values()} == {("EXISTS", ("pg_missing",))}

    monkeypatch.undo()
    client.upsert("faults", written)  # the pool replaced the dead connection; writing again repairs
    assert keys_of(assert_agreement(client, "faults").milvus) == list(range(13))
    assert {s.flags for s in client.journal.states("faults", [10, 11, 12]).values()} == {()}


def test_an_auto_id_insert_whose_shadow_write_fails_is_journaled_pg_missing(
    client: ShadowClient, monkeypatch: pytest.MonkeyPatch, pg_conn: str
) -> None:
    client.create_collection("auto", dimension=DIM, auto_id=True)
    monkeypatch.setattr(PendingWrite, "commit", terminate_before_commit(pg_conn))
    with pytest.raises(SyncError, match="PostgreSQL did not"):
        client.insert("auto", [{"vector": [1.0] * DIM} for _ in range(3)])
    monkeypatch.undo()
    stores = read_stores(client, "auto")
    assert stores.milvus.num_rows == 3 and stores.pg.num_rows == 0
    assert stores.journal_keys("EXISTS") == keys_of(stores.milvus)
    assert stores.journal.column("flags").to_pylist() == [["pg_missing"]] * 3
    assert ops(client, "auto") == [("insert", "pg_missing")]


def test_a_row_postgresql_refuses_is_sent_nowhere(client: ShadowClient) -> None:
    setup_rows(client)
    bad = every_type_rows([20])
    bad[0]["s"] = "NUL \x00 is valid in Milvus, not in PostgreSQL text"
    with pytest.raises(SyncError, match="PostgreSQL refused the write, nothing was sent to Milvus"):
        client.insert("faults", bad)
    assert ops(client, "faults")[-1] == ("insert", "failed")
    assert keys_of(assert_agreement(client, "faults").milvus) == list(range(10))


# -- names ---------------------------------------------------------------------------------------------

ODD_FIELDS = ["from", 'a"b', "a;b", "$x", "Group", "é ü"]


@pytest.mark.parametrize("name", ['we"ird; DROP TABLE x;--', "SeLeCt", "é ü", "_default"])
def test_odd_collection_partition_and_field_names_are_stored_safely(client: ShadowClient, name: str) -> None:
    schema = MilvusClient.create_schema(enable_dynamic_field=True)
    schema.add_field("order", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    for field in ODD_FIELDS:
        schema.add_field(field, DataType.VARCHAR, max_length=64, nullable=True)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.create_partition(name, "user")
    rows = [{"order": i, "vec": [float(i)] * DIM, **{f: f"{f}'{i}" for f in ODD_FIELDS}, "'; --": i} for i in range(6)]
    client.insert(name, rows[:4])
    client.insert(name, rows[4:], partition_name="user")
    client.delete(name, ids=[1, 4], partition_name="user")  # only 4 lives there
    client.upsert(name, rows[2:3])
    stores = assert_agreement(client, name)
    assert keys_of(stores.milvus, "order") == [0, 1, 2, 3, 5]
    assert stores.pg.to_pylist()[0]['a"b'] == "a\"b'0" and stores.pg.column("$meta").to_pylist()[0] == '{"\'; --":0}'
    client.drop_collection(name)
    assert not pg_table_exists(client, name)


def test_names_postgresql_cannot_hold_are_refused_before_milvus_is_touched(client: ShadowClient) -> None:
    long_name = "c" * 64
    with pytest.raises(SchemaError, match="63-byte identifier limit"):
        client.create_collection(long_name, dimension=DIM)
    assert not client.has_collection(long_name)

    schema = every_type_schema()
    schema.add_field("f" * 64, DataType.INT32, nullable=True)
    with pytest.raises(SchemaError, match="field name in collection 'long_field'"):
        client.create_collection("long_field", schema=schema, index_params=every_type_index(client))
    assert not client.has_collection("long_field")

    with pytest.raises(SchemaError, match="63-byte"):
        client.create_collection("long_vector", dimension=DIM, vector_field_name="v" * 64)
    assert not client.has_collection("long_vector")  # created by quick setup, then dropped again


@pytest.mark.parametrize("reserved", ["$partition", "$meta"])
def test_field_names_the_shadow_reserves_are_refused(client: ShadowClient, reserved: str) -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field(reserved, DataType.VARCHAR, max_length=8, nullable=True)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    with pytest.raises((SchemaError, MilvusException), match=r"\$partition|\$meta"):
        client.create_collection("reserved", schema=schema, index_params=index)
    assert not client.has_collection("reserved") and not pg_table_exists(client, "reserved")


# -- concurrency ---------------------------------------------------------------------------------------


def test_two_threads_writing_two_collections_at_once_both_agree(client: ShadowClient) -> None:
    names = ["left", "right"]
    for name in names:
        create_every_type(client, name, "VARCHAR" if name == "right" else "INT64")
    start = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def work(name: str) -> None:
        key_type = "VARCHAR" if name == "right" else "INT64"
        try:
            start.wait(timeout=60)
            for round_ in range(4):
                base = round_ * 10
                client.insert(name, every_type_rows(list(range(base, base + 10)), key_type=key_type))
                client.upsert(name, every_type_rows(list(range(base, base + 3)), version=1, key_type=key_type))
                client.delete(name, ids=[key_for(base + 9, key_type)])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    for name in names:
        assert assert_agreement(client, name).milvus.num_rows == 36
        assert [status for _, status in ops(client, name)] == ["committed"] * 12


def test_shadow_stores_opened_at_once_on_a_new_schema_all_start(pg_conn: str, pg_schema: str) -> None:
    """Clients starting together (threads here, processes alike) each create the schema and registry if
    missing; CREATE ... IF NOT EXISTS alone lets all but one fail with a catalog unique violation."""
    fresh = f"{pg_schema}_new"
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait(timeout=60)
        try:
            ShadowStore(pg_conn, schema=fresh, max_connections=1).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
    finally:
        with psycopg.connect(pg_conn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh)))


def test_milvus_reads_pass_through(client: ShadowClient) -> None:
    client.create_collection("reads", dimension=DIM)
    client.insert("reads", [{"id": i, "vector": [float(i + 1)] * DIM} for i in range(5)])
    assert [r["id"] for r in client.get("reads", ids=[2, 3])] == [2, 3]
    hits = client.search("reads", data=[[1.0] * DIM], limit=2, output_fields=["id"])
    assert len(hits[0]) == 2
    assert milvus_table(client, client.spec("reads")).num_rows == 5


def test_partial_update_upserts_are_mirrored_as_the_merged_row(client: ShadowClient) -> None:
    client.create_collection("partial", dimension=DIM)
    client.insert("partial", [{"id": 1, "vector": [1.0] * DIM, "a": 1}])
    client.upsert("partial", [{"id": 1, "b": 2}], partial_update=True)
    assert ops(client, "partial") == [("insert", "committed"), ("upsert", "committed")]
    agreed = assert_agreement(client, "partial")
    assert agreed.milvus.column("$meta").to_pylist() == ['{"a":1,"b":2}']


def test_lite_upsert_keeps_stale_dynamic_keys_and_the_journal_notices(client: ShadowClient) -> None:
    """Milvus Lite merges the dynamic field on upsert: keys the new row lacks survive. The shadow stores
    the row as written, so the journal's digest tells which store holds what the client wrote."""
    client.create_collection("merge", dimension=DIM)
    client.insert("merge", [{"id": 1, "vector": [1.0] * DIM, "old": 1}])
    client.upsert("merge", [{"id": 1, "vector": [2.0] * DIM, "new": 2}])
    stores = read_stores(client, "merge")
    assert stores.milvus.column("$meta").to_pylist() == ['{"new":2,"old":1}']
    assert stores.pg.column("$meta").to_pylist() == ['{"new":2}']
    written = client.journal.states("merge", [1])[1].digest
    assert row_digests(stores.pg, stores.spec).to_pylist() == [written]
    assert row_digests(stores.milvus, stores.spec).to_pylist() != [written]
