"""Exports of the same writes from Milvus Lite and from the PostgreSQL shadow hold identical values.

Rows go in through the ShadowClient (so the journal records their digests), come out through
`export_collection`, and are compared after sorting by key: every type Milvus Lite supports,
nullable, default and dynamic fields, partitions, unicode VARCHAR keys, empty collections.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.agreement import table_values
from pymilvus import DataType, MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import SnapshotError
from milvusdiff.export import export_collection
from milvusdiff.snapshot_format import DIGEST_COLUMN, KEY_META, SPEC_META
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec


@pytest.fixture
def client(settings: Settings) -> Iterator[ShadowClient]:
    """On Milvus Lite, or on a real server in `make test-server`: for the tests within a 2.3 server's types."""
    shadow = ShadowClient.from_settings(settings)
    yield shadow
    shadow.close()


@pytest.fixture
def lite_settings(pg_conn: str, tmp_path: Path) -> Settings:
    """Milvus Lite whatever the lane: the every-type collection uses types a 2.3 server lacks."""
    return Settings(str(tmp_path / "lite" / "milvus.db"), None, pg_conn, tmp_path / "journal", tmp_path / "home")


@pytest.fixture
def lite(lite_settings: Settings) -> Iterator[ShadowClient]:
    shadow = ShadowClient.from_settings(lite_settings)
    yield shadow
    shadow.close()


def read_snapshot(path: Path) -> pa.Table:
    files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    return pa.concat_tables([pq.read_table(f) for f in files])


def by_key(table: pa.Table, key: str = "id") -> pa.Table:
    return table.sort_by(key) if table.num_rows else table


def every_type_schema() -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("flag", DataType.BOOL, nullable=True)
    schema.add_field("tiny", DataType.INT8, default_value=7)
    schema.add_field("small", DataType.INT16)
    schema.add_field("mid", DataType.INT32, nullable=True)
    schema.add_field("big", DataType.INT64)
    schema.add_field("ratio", DataType.FLOAT)
    schema.add_field("score", DataType.DOUBLE, nullable=True)
    schema.add_field("title", DataType.VARCHAR, max_length=256, default_value="untitled")
    schema.add_field("doc", DataType.JSON, nullable=True)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8, max_length=32)
    schema.add_field("counts", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True)
    schema.add_field("levels", DataType.ARRAY, element_type=DataType.INT16, max_capacity=8)
    schema.add_field("weights", DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=8)
    schema.add_field("exact", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=8)
    schema.add_field("bits", DataType.ARRAY, element_type=DataType.BOOL, max_capacity=8)
    schema.add_field("place", DataType.GEOMETRY, nullable=True)
    schema.add_field("seen", DataType.TIMESTAMPTZ, nullable=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    return schema


def create_every_type(client: ShadowClient, name: str) -> None:
    index = client.prepare_index_params()
    index.add_index("vec", metric_type="L2", index_type="FLAT")
    index.add_index("sparse", metric_type="IP", index_type="SPARSE_INVERTED_INDEX")
    client.create_collection(name, schema=every_type_schema(), index_params=index)


EDGE_FLOATS = [0.0, -0.0, 1.0, -1.5, 3.4e38, 1e-45, 0.1, 123456.789]
EDGE_TEXT = ["", "plain", "héllo wörld", "日本語テキスト", "emoji 😀🚀", 'quote " and \\ backslash', "tab\tnew\nline"]
SHAPES = [None, "POINT (1 2)", "POINT(-73.5 40.25)", "POLYGON ((0 0, 1 0, 1 1, 0 0))"]
TIMES = [None, "2024-03-01T12:00:00+02:00", "1970-01-01T00:00:00Z", "2038-01-19T03:14:07.654321Z"]


def every_type_rows(start: int, n: int, seed: int) -> list[dict[str, Any]]:
    """Deterministic rows that reach the edges: extremes, -0.0, unicode, nulls, defaults left out, dynamic keys."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        key = start + i
        row: dict[str, Any] = {
            "id": key,
            "flag": None if i % 5 == 0 else bool(i % 2),
            "small": [-(2**15), 2**15 - 1, 0, i][i % 4],
            "mid": None if i % 7 == 0 else [-(2**31), 2**31 - 1, i][i % 3],
            "big": [-(2**63), 2**63 - 1, 0, key * 1_000_003][i % 4],
            "ratio": EDGE_FLOATS[i % len(EDGE_FLOATS)],
            "score": None if i % 6 == 0 else [1e308, -0.0, 5e-324, 1 / 3][i % 4],
            "doc": None if i % 9 == 0 else {"n": i, "f": 2.0, "nested": {"z": [1, 2.5, "x"], "a": None}, "ü": "ö"},
            "tags": [EDGE_TEXT[(i + k) % len(EDGE_TEXT)][:32] for k in range(i % 4)],
            "counts": None if i % 8 == 0 else [2**62, -(2**62), i][: i % 4],
            "levels": [-(2**15), 2**15 - 1][: i % 3],
            "weights": EDGE_FLOATS[: i % 5],
            "exact": [1e308, -0.0, 5e-324][: i % 4],
            "bits": [True, False, True][: i % 4],
            "place": SHAPES[i % len(SHAPES)],
            "seen": TIMES[i % len(TIMES)],
            "vec": vectors[i],
            "sparse": dict(
                zip(rng.choice(1000, 1 + i % 4, replace=False).tolist(), rng.random(4).tolist(), strict=False)
            ),
        }
        if i % 3:
            row["tiny"] = [-128, 127, 0][i % 3]  # otherwise left out: the default (7) applies
        if i % 4:
            row["title"] = EDGE_TEXT[i % len(EDGE_TEXT)]
        if i % 2:
            row["extra_int"] = i  # dynamic keys, flattened on the way back
            row["extra_obj"] = {"k": [1.0, "two"], "deep": {"x": None}}
        rows.append(row)
    return rows


def write_every_type(client: ShadowClient, name: str) -> None:
    create_every_type(client, name)
    client.insert(name, every_type_rows(0, 150, seed=1))
    client.insert(name, every_type_rows(150, 150, seed=2))
    client.upsert(name, every_type_rows(100, 20, seed=3))  # overwrite 20 rows with other values
    client.delete(name, ids=list(range(0, 300, 11)))


def assert_same_snapshot(a: pa.Table, b: pa.Table, key: str = "id") -> None:
    assert a.schema.remove_metadata() == b.schema.remove_metadata()
    for field_a, field_b in zip(a.schema, b.schema, strict=True):
        assert field_a.metadata == field_b.metadata, field_a.name
    a, b = by_key(a, key), by_key(b, key)
    assert a.equals(b)
    assert table_values(a) == table_values(b)  # exact: floats by their bits, so -0.0 and 1 ulp count


def journal_digests(path: Path) -> dict[Any, bytes]:
    states = read_snapshot(path)
    return {r["id"]: r["digest"] for r in states.to_pylist() if r["state"] == "EXISTS"}


def test_every_type_exports_identically_from_milvus_and_pg(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    write_every_type(lite, "everything")
    manifest = export_collection(
        "everything", source="all", out=tmp_path / "snap", settings=lite_settings, batch_size=64
    )

    milvus, pg = read_snapshot(tmp_path / "snap" / "milvus"), read_snapshot(tmp_path / "snap" / "pg")
    assert milvus.num_rows == 300 - len(range(0, 300, 11))
    assert_same_snapshot(milvus, pg)
    spec = CollectionSpec.from_json(milvus.schema.metadata[SPEC_META])
    digests = dict(zip(milvus.column("id").to_pylist(), row_digests(milvus, spec).to_pylist(), strict=True))
    assert journal_digests(tmp_path / "snap" / "journal") == digests
    # every row carries the digest the journal holds for it, from both stores
    for snapshot in (milvus, pg):
        assert (
            dict(zip(snapshot.column("id").to_pylist(), snapshot.column(DIGEST_COLUMN).to_pylist(), strict=True))
            == digests
        )
    assert manifest.consistent and manifest.warnings == []
    assert set(manifest.children) == {"milvus", "pg", "journal"}


def test_values_read_back_are_the_values_written(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    """Not only do the stores agree: what they hold is what was written (snapshot form of the input rows)."""
    create_every_type(lite, "written")
    rows = every_type_rows(0, 40, seed=9)
    lite.insert("written", rows)
    export_collection("written", source="milvus", out=tmp_path / "m", settings=lite_settings)
    from milvusdiff.types.convert import rows_to_table

    expected = rows_to_table(rows, lite.spec("written"))
    snapshot = by_key(read_snapshot(tmp_path / "m"))
    assert table_values(snapshot.drop_columns([DIGEST_COLUMN])) == table_values(expected)
    assert snapshot.column(DIGEST_COLUMN).to_pylist() == row_digests(expected, lite.spec("written")).to_pylist()
    assert snapshot.column("tiny").to_pylist()[0] == 7  # left out: Milvus filled the default, and so did the shadow
    meta = [json.loads(m) for m in snapshot.column("$meta").to_pylist()]
    assert meta[0] == {} and meta[1] == {"extra_int": 1, "extra_obj": {"deep": {"x": None}, "k": [1, "two"]}}


def test_manifest_describes_the_snapshot(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    write_every_type(lite, "described")
    manifest = export_collection(
        "described", source="pg", out=tmp_path / "pg", settings=lite_settings, batch_size=50, rows_per_part=100
    )
    on_disk = json.loads((tmp_path / "pg" / "manifest.json").read_text())
    assert on_disk == json.loads(manifest.to_json())
    rows = 300 - len(range(0, 300, 11))
    assert on_disk["source"] == "pg" and on_disk["collection"] == "described"
    assert on_disk["primary_key"] == "id" and on_disk["primary_key_type"] == "INT64" and on_disk["key"] == ["id"]
    assert on_disk["rows_written"] == on_disk["store_count"] == on_disk["distinct_keys"] == rows
    assert on_disk["duplicate_keys"] == 0 and on_disk["warnings"] == []
    assert CollectionSpec.from_dict(on_disk["spec"]) == lite.spec("described")
    assert on_disk["milvusdiff_version"] and on_disk["elapsed_seconds"] >= 0
    parts = sorted((tmp_path / "pg").glob("part-*.parquet"))
    assert len(parts) >= 2, "rows_per_part must split the snapshot"
    assert [f["name"] for f in on_disk["files"]] == [p.name for p in parts]
    for entry, part in zip(on_disk["files"], parts, strict=True):
        assert entry["sha256"] == hashlib.sha256(part.read_bytes()).hexdigest()
        assert entry["bytes"] == part.stat().st_size and entry["rows"] == pq.ParquetFile(part).metadata.num_rows
        meta = pq.ParquetFile(part).schema_arrow.metadata
        assert json.loads(meta[KEY_META]) == ["id"] and meta[b"milvusdiff.source"] == b"pg"
    assert sum(f["rows"] for f in on_disk["files"]) == rows
    ids = np.concatenate([pq.read_table(part, columns=["id"]).column("id").to_numpy() for part in parts])
    assert (np.diff(ids) > 0).all(), "the pg export comes out in key order, as the Milvus export does"


def test_single_file_snapshot_carries_its_manifest(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    write_every_type(lite, "onefile")
    out = tmp_path / "onefile.parquet"
    manifest = export_collection("onefile", source="milvus", out=out, settings=lite_settings)
    assert {p.name for p in tmp_path.iterdir()} == {"lite", "journal", out.name}
    parquet = pq.ParquetFile(out)
    meta = parquet.schema_arrow.metadata
    embedded = json.loads(meta[b"milvusdiff.manifest"])
    assert embedded == json.loads(manifest.to_json())
    assert embedded["rows_written"] == parquet.metadata.num_rows == embedded["store_count"]
    assert json.loads(meta[KEY_META]) == ["id"] and meta[b"milvusdiff.source"] == b"milvus"
    assert CollectionSpec.from_json(meta[SPEC_META]) == lite.spec("onefile")
    assert parquet.schema_arrow.field("vec").type == pa.list_(pa.float32(), 8)  # the Arrow schema survives intact


def test_manifest_has_no_credentials(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    create_every_type(lite, "secret")
    lite.insert("secret", every_type_rows(0, 5, seed=4))
    # The test servers trust their clients, so a password in the URI is accepted and ignored (so is the
    # token by Milvus Lite).
    assert lite_settings.pg_conn is not None
    if not lite_settings.pg_conn.startswith("postgresql://postgres@"):
        pytest.skip("needs a postgres@ URI to add a password to")
    with_password = lite_settings.pg_conn.replace("postgresql://postgres@", "postgresql://postgres:hunter2@", 1)
    secret_settings = Settings(
        lite_settings.milvus_uri, "root:token-hunter2", with_password, lite_settings.journal_path, lite_settings.home
    )
    export_collection("secret", source="all", out=tmp_path / "snap", settings=secret_settings)
    for manifest in (tmp_path / "snap").rglob("manifest.json"):
        assert "hunter2" not in manifest.read_text()


def test_empty_collection(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    create_every_type(lite, "empty")
    manifest = export_collection("empty", source="all", out=tmp_path / "snap", settings=lite_settings)
    milvus, pg = read_snapshot(tmp_path / "snap" / "milvus"), read_snapshot(tmp_path / "snap" / "pg")
    assert milvus.num_rows == pg.num_rows == 0
    assert_same_snapshot(milvus, pg)
    assert read_snapshot(tmp_path / "snap" / "journal").num_rows == 0
    for child in manifest.children.values():
        assert child.rows_written == 0 and child.distinct_keys == 0 and child.warnings == []
    assert manifest.children["milvus"].store_count == manifest.children["pg"].store_count == 0


def simple_schema(key_type: DataType = DataType.INT64, *, partition_key: bool = False) -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    if key_type == DataType.VARCHAR:
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    else:
        schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("label", DataType.VARCHAR, max_length=256, is_partition_key=partition_key)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    return schema


def create_simple(client: ShadowClient, name: str, **kwargs: Any) -> None:
    index = client.prepare_index_params()
    index.add_index("vec", metric_type="L2", index_type="FLAT")
    client.create_collection(name, schema=simple_schema(**kwargs), index_params=index, consistency_level="Strong")


def simple_rows(keys: list[Any], label: str = "x") -> list[dict[str, Any]]:
    vectors = np.arange(len(keys) * 4, dtype=np.float32).reshape(-1, 4) / 7
    return [{"id": k, "label": f"{label}-{k}", "vec": v} for k, v in zip(keys, vectors, strict=True)]


def test_partitions_fill_the_partition_column(client: ShadowClient, settings: Settings, tmp_path: Path):
    create_simple(client, "parted")
    client.create_partition("parted", "spring")
    client.create_partition("parted", "autumn")
    client.insert("parted", simple_rows(list(range(0, 40))))
    client.insert("parted", simple_rows(list(range(40, 70)), "s"), partition_name="spring")
    client.insert("parted", simple_rows(list(range(70, 80)), "a"), partition_name="autumn")
    manifest = export_collection("parted", source="all", out=tmp_path / "snap", settings=settings, batch_size=16)
    milvus, pg = read_snapshot(tmp_path / "snap" / "milvus"), read_snapshot(tmp_path / "snap" / "pg")
    assert_same_snapshot(milvus, pg)
    partitions = by_key(milvus).column("$partition").to_pylist()
    assert partitions == ["_default"] * 40 + ["spring"] * 30 + ["autumn"] * 10
    assert manifest.children["milvus"].with_partition and manifest.children["pg"].with_partition


def test_empty_user_partition_adds_no_column_on_either_side(client: ShadowClient, settings: Settings, tmp_path: Path):
    create_simple(client, "unused")
    client.create_partition("unused", "later")
    client.insert("unused", simple_rows(list(range(10))))
    export_collection("unused", source="all", out=tmp_path / "snap", settings=settings)
    milvus, pg = read_snapshot(tmp_path / "snap" / "milvus"), read_snapshot(tmp_path / "snap" / "pg")
    assert "$partition" not in milvus.column_names
    assert_same_snapshot(milvus, pg)


def test_partition_key_collection_has_no_partition_column(client: ShadowClient, settings: Settings, tmp_path: Path):
    create_simple(client, "keyed", partition_key=True)
    client.insert("keyed", simple_rows(list(range(25))))
    export_collection("keyed", source="all", out=tmp_path / "snap", settings=settings)
    milvus, pg = read_snapshot(tmp_path / "snap" / "milvus"), read_snapshot(tmp_path / "snap" / "pg")
    assert "$partition" not in milvus.column_names and milvus.num_rows == 25
    assert_same_snapshot(milvus, pg)


UNICODE_KEYS = ["a", "A", "é", "e\u0301", "日本", "😀", "key with spaces", "quote'\"", "ß", "Ω", "z" * 64]


def test_varchar_unicode_keys(client: ShadowClient, settings: Settings, tmp_path: Path):
    create_simple(client, "texts", key_type=DataType.VARCHAR)
    client.insert("texts", simple_rows(UNICODE_KEYS))
    client.delete("texts", ids=["ß"])
    manifest = export_collection("texts", source="all", out=tmp_path / "snap", settings=settings, parallel=3)
    milvus, pg = read_snapshot(tmp_path / "snap" / "milvus"), read_snapshot(tmp_path / "snap" / "pg")
    assert_same_snapshot(milvus, pg)
    assert sorted(milvus.column("id").to_pylist()) == sorted(k for k in UNICODE_KEYS if k != "ß")
    journal = read_snapshot(tmp_path / "snap" / "journal")
    assert journal.schema.field("id").type == pa.string()
    states = dict(zip(journal.column("id").to_pylist(), journal.column("state").to_pylist(), strict=True))
    assert states["ß"] == "DELETED" and states["😀"] == "EXISTS"
    assert any("INT64" in note for note in manifest.children["milvus"].notes)  # parallel fell back to one reader


def test_parallel_readers_read_every_row_once(client: ShadowClient, settings: Settings, tmp_path: Path):
    create_simple(client, "wide")
    client.create_partition("wide", "other")
    keys = [int(k) for k in np.random.default_rng(5).choice(10**12, 600, replace=False) - 5 * 10**11]
    client.insert("wide", simple_rows(keys[:500]))
    client.insert("wide", simple_rows(keys[500:]), partition_name="other")
    one = export_collection("wide", source="milvus", out=tmp_path / "one", settings=settings, batch_size=50)
    many = export_collection(
        "wide", source="milvus", out=tmp_path / "many", settings=settings, batch_size=50, parallel=4
    )
    assert_same_snapshot(read_snapshot(tmp_path / "one"), read_snapshot(tmp_path / "many"))
    assert many.rows_written == many.distinct_keys == many.store_count == 600 and many.warnings == []
    assert any("4 parallel readers" in note for note in many.notes)
    assert one.rows_written == 600


def test_journal_snapshot_states_and_oplog(client: ShadowClient, settings: Settings, tmp_path: Path):
    create_simple(client, "logged")
    client.insert("logged", simple_rows(list(range(10))))
    client.upsert("logged", simple_rows([3, 4], "changed"))
    client.delete("logged", ids=[5, 6])
    manifest = export_collection("logged", source="journal", out=tmp_path / "j", settings=settings)
    states = by_key(read_snapshot(tmp_path / "j"))
    assert states.column_names == ["id", "state", "last_seq", "last_op", "digest", "flags"]
    rows = {r["id"]: r for r in states.to_pylist()}
    assert rows[5]["state"] == rows[6]["state"] == "DELETED" and rows[5]["digest"] is None
    assert rows[3]["last_op"] == "upsert" and rows[0]["last_op"] == "insert"
    assert rows[3]["last_seq"] > rows[0]["last_seq"]
    assert len(rows[0]["digest"]) == 16
    oplog = pq.read_table(tmp_path / "j" / "oplog.parquet").to_pylist()
    assert [(r["op"], r["n_keys"], r["status"]) for r in oplog] == [
        ("insert", 10, "committed"),
        ("upsert", 2, "committed"),
        ("delete", 2, "committed"),
    ]
    assert oplog[1]["keys_sample"] == [3, 4] and oplog[0]["time"].tzinfo is not None
    assert manifest.extra["states"] == {"DELETED": 2, "EXISTS": 8}
    assert {f.name for f in manifest.files} == {"part-00000.parquet", "oplog.parquet"}
    assert json.loads(pq.ParquetFile(tmp_path / "j" / "part-00000.parquet").schema_arrow.metadata[KEY_META])


def _bucket_of(key: int, n: int) -> int:
    """The documented bucket function, read with hashlib (types/buckets.py)."""
    return int.from_bytes(hashlib.md5(key.to_bytes(8, "little", signed=True)).digest()[:8], "little") % n


def _digest_sum(digests: list[bytes]) -> str:
    return f"{sum(int.from_bytes(d, 'little') for d in digests) % (1 << 128):032x}"


def test_bucketed_export_puts_each_row_in_its_bucket_with_exact_sums(
    lite: ShadowClient, lite_settings: Settings, tmp_path: Path
):
    write_every_type(lite, "bucketed")
    export_collection("bucketed", source="all", out=tmp_path / "plain", settings=lite_settings, batch_size=37)
    manifest = export_collection(
        "bucketed", source="all", out=tmp_path / "b", settings=lite_settings, batch_size=37, buckets=8, parallel=2
    )
    stats = {}
    for kind in ("milvus", "pg", "journal"):
        child, directory = manifest.children[kind], tmp_path / "b" / kind
        assert (child.buckets, child.bucket_hash) == (8, "md5-le64")
        assert_same_snapshot(read_snapshot(directory), read_snapshot(tmp_path / "plain" / kind))
        on_disk = json.loads((directory / "manifest.json").read_text())
        rows: dict[int, list[dict[str, Any]]] = {b: [] for b in range(8)}
        for entry in on_disk["files"]:
            if entry["name"] == "oplog.parquet":
                continue
            part = pq.read_table(directory / entry["name"]).to_pylist()
            assert {_bucket_of(r["id"], 8) for r in part} == {entry["bucket"]}
            assert entry["name"].startswith(f"part-b{entry['bucket']:05d}-")
            rows[entry["bucket"]] += part
        digest = "digest" if kind == "journal" else DIGEST_COLUMN
        expected = [
            {
                "bucket": b,
                "rows": len(rows[b]),
                "digest_sum": _digest_sum([r[digest] for r in rows[b] if kind != "journal" or r["state"] == "EXISTS"]),
                "placement_sum": None,
            }
            for b in range(8)
        ]
        assert on_disk["bucket_stats"] == expected
        stats[kind] = expected
    assert stats["milvus"] == stats["pg"]  # the same data gives the same manifest, so compare can skip it
    exists = {r["id"] for r in read_snapshot(tmp_path / "b" / "journal").to_pylist() if r["state"] == "EXISTS"}
    assert len(exists) == sum(s["rows"] for s in stats["milvus"])
    assert [s["digest_sum"] for s in stats["journal"]] == [s["digest_sum"] for s in stats["milvus"]]


def test_bucketed_export_is_a_directory(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    create_every_type(lite, "single")
    with pytest.raises(SnapshotError, match="bucketed snapshot is a directory"):
        export_collection("single", source="milvus", out=tmp_path / "x.parquet", settings=lite_settings, buckets=4)
    with pytest.raises(SnapshotError, match="between 1 and"):
        export_collection("single", source="milvus", out=tmp_path / "x", settings=lite_settings, buckets=100_000)


def test_bucketed_stores_compare_staged_end_to_end(lite: ShadowClient, lite_settings: Settings, tmp_path: Path):
    """Milvus Lite and PostgreSQL exported with --buckets: equal stores are settled from the manifests;
    a row changed behind the shadow's back is found, and only its bucket is read."""
    from milvusdiff.compare import compare

    write_every_type(lite, "staged")
    export_collection("staged", source="all", out=tmp_path / "s1", settings=lite_settings, buckets=16)
    equal = compare(tmp_path / "s1" / "milvus", tmp_path / "s1" / "pg", jobs=2)
    assert equal.exit_code == 0 and equal.summary.staged is not None
    assert (equal.summary.staged.settled, equal.summary.staged.rows_read_a) == (16, 0)
    row = every_type_rows(5, 1, seed=42)[0]
    MilvusClient.upsert(lite, "staged", [row])  # Milvus only: the shadow keeps the old row
    export_collection("staged", source="all", out=tmp_path / "s2", settings=lite_settings, buckets=16)
    found = compare(tmp_path / "s2" / "milvus", tmp_path / "s2" / "pg", journal=tmp_path / "s2" / "journal")
    staged = found.summary.staged
    assert found.exit_code == 1 and found.summary.changed == 1 and found.summary.verdicts["a_wrong"] == 1
    assert staged is not None and (staged.settled, staged.examined, staged.candidate_keys) == (15, 1, 1)
    assert staged.rows_read_a == staged.rows_read_b == 1
