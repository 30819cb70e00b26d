"""corrupt: every kind changes exactly the keys it reports, in exactly the store it names, and nothing in
the other store or the journal; every tampered value really differs; the CLI prints the keys."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from helpers.agreement import read_stores, table_values
from test_workload_support import changed_keys, connection_args, load_and_run, rows_by_key

from milvusdiff.cli.main import main
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import ConfigError
from milvusdiff.types.spec import FieldSpec
from milvusdiff.types.typemap import rule
from milvusdiff.workload import columns, tamper
from milvusdiff.workload.corrupt import KINDS, STORES, corrupt
from milvusdiff.workload.schemas import Hints

pytest_plugins = ["test_workload_support"]

OTHER = {"milvus": "pg", "pg": "milvus"}


def test_each_kind_changes_exactly_the_reported_keys_in_exactly_the_named_store(
    lite_client: ShadowClient, lite_settings: Settings
) -> None:
    load_and_run(lite_client, "all_types", "drill", rows=300, batch=100, operations=3, seed=8, dynamic_presence=1.0)
    before = read_stores(lite_client, "drill")
    spec = before.spec
    for number, (store, kind) in enumerate((s, k) for s in STORES for k in KINDS):
        changes = corrupt(lite_settings, "drill", store=store, kind=kind, count=3, seed=number)
        after = read_stores(lite_client, "drill")
        reported = {c.key for c in changes}
        assert len(changes) == 3 and {(c.store, c.kind) for c in changes} == {(store, kind)}
        assert changed_keys(getattr(before, store), getattr(after, store), spec) == reported, (store, kind)
        assert table_values(getattr(before, OTHER[store])) == table_values(getattr(after, OTHER[store]))
        assert table_values(before.journal) == table_values(after.journal)
        old, new = rows_by_key(getattr(before, store), spec), rows_by_key(getattr(after, store), spec)
        for change in changes:
            if kind == "delete":
                assert change.key in old and change.key not in new
            elif kind == "insert":
                assert change.key not in old and change.key in new
            else:  # one column of the row changed, the one the detail names
                differing = {name for name in old[change.key] if old[change.key][name] != new[change.key][name]}
                assert len(differing) == 1 and change.detail.startswith(differing.pop())
        before = after


def test_rows_changed_in_milvus_stay_in_their_partition(lite_client: ShadowClient, lite_settings: Settings) -> None:
    load_and_run(lite_client, "varchar_partitions", "orders", rows=300, batch=100, operations=0, seed=2)
    before = read_stores(lite_client, "orders")
    changes = corrupt(lite_settings, "orders", store="milvus", kind="update", count=4, seed=1)
    changes += corrupt(lite_settings, "orders", store="milvus", kind="vector", count=4, seed=1)
    after = read_stores(lite_client, "orders")
    old, new = rows_by_key(before.milvus, before.spec), rows_by_key(after.milvus, after.spec)
    assert {c.key for c in changes} == changed_keys(before.milvus, after.milvus, before.spec)
    assert all(new[c.key]["$partition"] == old[c.key]["$partition"] for c in changes)
    assert len({old[c.key]["$partition"] for c in changes}) > 1
    assert all(str(c.key).startswith("order-") for c in changes)


def test_a_seed_repeats_the_same_drill(lite_client: ShadowClient, lite_settings: Settings) -> None:
    load_and_run(lite_client, "ecommerce", "products", rows=200, batch=100, operations=0, seed=2)
    first = corrupt(lite_settings, "products", store="pg", kind="update", count=3, seed=4)
    again = corrupt(lite_settings, "products", store="pg", kind="update", count=3, seed=4)
    assert [c.key for c in first] == [c.key for c in again]
    deleted = corrupt(lite_settings, "products", store="pg", kind="delete", count=3, seed=4)
    assert {c.key for c in deleted} != {c.key for c in first}  # store and kind take part in the choice


VECTOR_FIELDS = [
    FieldSpec(name="f32", type="FLOAT_VECTOR", dim=16),
    FieldSpec(name="f16", type="FLOAT16_VECTOR", dim=16),
    FieldSpec(name="bf16", type="BFLOAT16_VECTOR", dim=16),
    FieldSpec(name="i8", type="INT8_VECTOR", dim=16),
    FieldSpec(name="bits", type="BINARY_VECTOR", dim=64),
    FieldSpec(name="sparse", type="SPARSE_FLOAT_VECTOR"),
]


def _snapshot_value(f: FieldSpec, value: Any) -> Any:
    return rule(f).from_python([value], f).to_pylist()[0]


@pytest.mark.parametrize("field", VECTOR_FIELDS, ids=[f.type for f in VECTOR_FIELDS])
def test_perturb_changes_exactly_one_element_of_every_vector_type(field: FieldSpec) -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        if field.type == "SPARSE_FLOAT_VECTOR":
            value: Any = columns.sparse_vectors(rng, 1, Hints())[0]
        else:
            value = columns.dense_vectors(rng, 1, field)[0]
        blob, detail = tamper.perturb(field, tamper.to_blob(field, value), rng)
        old, new = _snapshot_value(field, value), _snapshot_value(field, tamper.from_blob(field, blob))
        if field.type == "SPARSE_FLOAT_VECTOR":
            assert old["indices"] == new["indices"]
            old, new = old["values"], new["values"]
        if field.type == "BINARY_VECTOR":
            flipped = np.unpackbits(np.frombuffer(old, np.uint8) ^ np.frombuffer(new, np.uint8))
            assert int(flipped.sum()) == 1 and detail.startswith("bit ")
        else:
            assert sum(a != b for a, b in zip(old, new, strict=True)) == 1, detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (FieldSpec(name="b", type="BOOL"), True),
        (FieldSpec(name="n", type="INT8"), 127),
        (FieldSpec(name="n", type="INT64"), -(2**63)),
        (FieldSpec(name="n", type="INT32", nullable=True), None),
        (FieldSpec(name="x", type="FLOAT"), 3.4e38),
        (FieldSpec(name="x", type="FLOAT"), 0.1),
        (FieldSpec(name="x", type="DOUBLE"), 1e300),
        (FieldSpec(name="s", type="VARCHAR", max_length=4), "abc*"),
        (FieldSpec(name="s", type="VARCHAR", max_length=4), "日"),
        (FieldSpec(name="s", type="VARCHAR", max_length=8), ""),
    ],
)
def test_bump_always_gives_another_value_that_fits(field: FieldSpec, value: Any) -> None:
    new = tamper.bump(field, value)
    stored_old = rule(field).from_python([value], field)
    stored_new = rule(field).from_python([new], field)  # fits the type (raises otherwise)
    assert not stored_old.equals(stored_new)
    if field.type == "VARCHAR":
        assert len(new.encode("utf-8")) <= (field.max_length or 0)
    assert pa.types.is_boolean(stored_new.type) or new is not None


def test_bad_arguments_and_unknown_collections_are_refused(lite_client: ShadowClient, lite_settings: Settings) -> None:
    for options, message in [
        ({"store": "redis"}, "store must be one of milvus, pg"),
        ({"kind": "truncate"}, "kind must be one of delete, update, vector, insert"),
        ({"count": 0}, "count must be at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            corrupt(lite_settings, "drill", **options)
    with pytest.raises(ConfigError, match="no shadow table"):
        corrupt(lite_settings, "nowhere", store="pg", kind="delete")


def test_cli_prints_exactly_the_keys_it_changed(
    lite_client: ShadowClient, lite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    load_and_run(lite_client, "rag", "chunks", rows=200, batch=100, operations=0, seed=2)
    before = read_stores(lite_client, "chunks")
    argv = ["corrupt", "--collection", "chunks", "--store", "milvus", "--kind", "delete", "--count", "2"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--seed", "3", *connection_args(lite_settings)])
    out = capsys.readouterr().out.splitlines()
    after = read_stores(lite_client, "chunks")
    gone = changed_keys(before.milvus, after.milvus, before.spec)
    assert exited.value.code == 0 and out[0] == "changed 2 row(s) in milvus of chunks:"
    assert sorted(out[1:]) == sorted(f"  milvus delete chunk_id={key!r}: deleted" for key in gone)
    with pytest.raises(SystemExit) as exited:
        main([*argv[:3], "--store", "mongo", *argv[5:], *connection_args(lite_settings)])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.err == "milvusdiff: store must be one of milvus, pg, got 'mongo'\n"
