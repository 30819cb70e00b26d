"""Which column is which, and which columns hold JSON.

Milvus field names are case-sensitive and DuckDB identifiers are not: columns `val` and `VAL` must stay
two columns in every engine and path. A column with the Parquet JSON type, or one named with `--json`,
is compared as JSON (key order never matters).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql
from pymilvus import DataType, MilvusClient

from milvusdiff.cli.main import main
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.compare import compare, positional
from milvusdiff.config import Settings
from milvusdiff.workflow.validate import validate

TWINS = pa.schema([("id", pa.int64()), ("val", pa.int64()), ("VAL", pa.int64()), ("Vec", pa.list_(pa.float32(), 2))])


def _changed(out: Path) -> dict[int, list[str]]:
    rows = pq.read_table(out / "diff.parquet").to_pylist()
    return {row["id"]: row["changed_columns"] for row in rows}


def _write_twins(tmp_path: Path, reverse_b: bool) -> tuple[Path, Path]:
    table = pa.table(
        {"id": [1, 2, 3], "val": [10, 20, 30], "VAL": [1, 2, 3], "Vec": [[1.0, 2.0]] * 3}, schema=TWINS
    ).replace_schema_metadata({"milvusdiff.key": '["id"]'})
    tampered = table.set_column(2, "VAL", pa.array([1, 99, 3]))
    if reverse_b:  # both sides out of key order: the SQL path
        table, tampered = table.take(pa.array([2, 1, 0])), tampered.take(pa.array([2, 0, 1]))
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(table, a)
    pq.write_table(tampered, b)
    return a, b


@pytest.mark.parametrize(
    ("engine", "reverse_b", "positional_path"),
    [("duckdb", False, True), ("duckdb", True, False), ("polars", False, False)],
    ids=["duckdb-positional", "duckdb-sql", "polars"],
)
def test_case_twins_are_two_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, reverse_b: bool, positional_path: bool
) -> None:
    used: list[int] = []
    original = positional.stream

    def spying(*args: Any) -> Any:
        used.append(1)
        return original(*args)

    monkeypatch.setattr(positional, "stream", spying)
    a, b = _write_twins(tmp_path, reverse_b)
    result = compare(a, b, engine=engine, out=tmp_path / "out")
    assert bool(used) == positional_path
    assert result.exit_code == 1
    assert _changed(tmp_path / "out") == {2: ["VAL"]}
    row = pq.read_table(tmp_path / "out" / "diff.parquet").to_pylist()[0]
    assert (row["VAL__a"], row["VAL__b"], row["val__a"], row["val__b"]) == (2, 99, None, None)


def test_case_twins_in_keys_and_renames(tmp_path: Path) -> None:
    """A key `ID` beside a column `id`, and --map onto a case twin, name exactly the columns they say."""
    schema = pa.schema([("ID", pa.int64()), ("id", pa.string()), ("x", pa.int64())])
    a = pa.table({"ID": [1, 2], "id": ["p", "q"], "x": [5, 6]}, schema=schema)
    b = pa.table({"ID": [2, 1], "id": ["q", "CHANGED"], "X": [6, 5]})
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    for engine in ("duckdb", "polars"):
        out = tmp_path / engine
        compare(tmp_path / "a.parquet", tmp_path / "b.parquet", key="ID", rename={"x": "X"}, engine=engine, out=out)
        rows = pq.read_table(out / "diff.parquet").to_pylist()
        assert [(r["ID"], r["changed_columns"]) for r in rows] == [(1, ["id"])], engine


def test_validate_finds_a_change_in_the_upper_case_twin(settings: Settings, tmp_path: Path) -> None:
    """Issue 16: on a collection with fields `val` and `VAL`, VAL changed in PostgreSQL was not found."""
    client = ShadowClient.from_settings(settings)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("val", DataType.INT64)
    schema.add_field("VAL", DataType.INT64)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="FLAT", metric_type="L2")
    client.create_collection("twins", schema=schema, index_params=index, consistency_level="Strong")
    client.insert("twins", [{"id": i, "val": i, "VAL": 100 + i, "emb": [float(i), 1.0]} for i in range(20)])
    client.close()
    assert settings.pg_conn is not None
    with psycopg.connect(settings.pg_conn, autocommit=True) as conn:
        table = sql.Identifier(os.environ["MILVUSDIFF_PG_SCHEMA"], "twins")
        conn.execute(sql.SQL('UPDATE {} SET "VAL" = -1 WHERE id = 7').format(table))
    result = validate("twins", out=tmp_path / "v", settings=settings)
    assert result.exit_code == 1
    rows = pq.read_table(result.out / "diff.parquet").to_pylist()
    assert [(r["id"], r["changed_columns"], r["VAL__a"], r["VAL__b"], r["verdict"]) for r in rows] == [
        (7, ["VAL"], 107, -1, "b_wrong")
    ]


# -- JSON --------------------------------------------------------------------------------------------------


def _json_pair(tmp_path: Path, json_type: pa.DataType) -> tuple[Path, Path]:
    # A text column may hold text that is not JSON (it then equals only itself); a JSON-typed one may not.
    odd = "not json" if json_type == pa.string() else "[]"
    texts_a = ['{"a":1,"b":[1,2]}', '{"x":"y"}', odd, None, '{"n":1}']
    texts_b = ['{"b":[1,2],"a":1.0}', '{"x":"z"}', odd, None, '{"n": 1}']
    for name, texts in (("a", texts_a), ("b", texts_b)):
        pq.write_table(pa.table({"id": range(5), "doc": pa.array(texts, json_type)}), tmp_path / f"{name}.parquet")
    return tmp_path / "a.parquet", tmp_path / "b.parquet"


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_parquet_json_type_is_compared_as_json(tmp_path: Path, engine: str) -> None:
    a, b = _json_pair(tmp_path, pa.json_())
    assert pq.read_schema(a).field("doc").type == pa.json_()  # the logical type survives the round trip
    compare(a, b, key="id", engine=engine, out=tmp_path / "out")
    assert _changed(tmp_path / "out") == {1: ["doc"]}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0), capsys.readouterr().err


def test_json_option_treats_a_text_column_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _json_pair(tmp_path, pa.string())
    args: list[Any] = ["compare", str(a), str(b), "--key", "id", "--format", "json"]
    code, _ = _cli([*args, "--out", str(tmp_path / "text")], capsys)
    assert code == 1 and set(_changed(tmp_path / "text")) == {0, 1, 4}  # as text: key order and spacing count
    for engine in ("duckdb", "polars"):
        code, _ = _cli([*args, "--json", "doc", "--engine", engine, "--out", str(tmp_path / engine)], capsys)
        assert code == 1 and _changed(tmp_path / engine) == {1: ["doc"]}, engine
    code, err = _cli([*args, "--json", "nope"], capsys)
    assert code == 2 and "nope" in err
    code, err = _cli([*args, "--json", "id,doc"], capsys)
    assert code == 2 and "'id'" in err
