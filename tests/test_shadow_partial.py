"""partial_update upserts: the shadow and the journal hold the whole row as Milvus will, not the fragment sent."""

from __future__ import annotations

from pathlib import Path

from pymilvus import DataType, MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.types.convert import rows_to_table
from milvusdiff.types.digest import row_digests


def _client(tmp_path: Path, pg_conn: str) -> ShadowClient:
    client = ShadowClient(str(tmp_path / "m.db"), pg_conn=pg_conn, journal_path=tmp_path / "journal")
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=20)
    schema.add_field("n", DataType.INT32, nullable=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("partial", schema=schema, index_params=index)
    client.insert(
        "partial",
        [{"id": 1, "title": "a", "n": 5, "v": [1, 2], "x": 1, "y": 2}, {"id": 2, "title": "b", "n": 6, "v": [3, 4]}],
    )
    return client


def test_partial_update_merges_named_fields_and_dynamic_keys(tmp_path: Path, pg_conn: str) -> None:
    client = _client(tmp_path, pg_conn)
    try:
        client.upsert("partial", [{"id": 1, "title": "A", "x": 9}], partial_update=True)
        client.upsert("partial", [{"id": 3, "title": "C", "v": [5, 6]}], partial_update=True)
        spec = client.spec("partial")
        in_milvus = rows_to_table(client.query("partial", filter="id > 0", output_fields=["*"]), spec).sort_by("id")
        in_pg = client.shadow.rows_for_keys(spec, [1, 2, 3]).sort_by("id").drop_columns(["$partition"])
        assert in_pg.to_pylist()[0] == {"id": 1, "title": "A", "n": 5, "v": [1.0, 2.0], "$meta": '{"x":9,"y":2}'}
        assert in_pg.to_pylist()[2]["n"] is None
        assert in_milvus.equals(in_pg)
        states = client.journal.states("partial", [1, 2, 3])
        expected = dict(zip([1, 2, 3], row_digests(in_milvus, spec).to_pylist(), strict=True))
        assert {k: s.digest for k, s in states.items()} == expected
    finally:
        client.close()
