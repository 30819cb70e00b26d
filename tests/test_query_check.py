"""query-check on real Milvus Lite and real PostgreSQL, the collection written through ShadowClient.

A clean collection must give exit 0 for hand-written and generated filters; a row deleted or
changed behind the ShadowClient's back must give exit 1 naming its key and saying what happened;
hostile literals and names must give correct results or one clean line on stderr with exit 2.
Milvus Lite is part of the test (its semantics are what the Lite-safe generator avoids), so the
database is a Lite path of the test's own rather than the `milvus_uri` fixture.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from pymilvus import DataType, MilvusClient

from milvusdiff import ShadowClient
from milvusdiff.checks.query_check import query_check, run_query
from milvusdiff.checks.stores import open_stores
from milvusdiff.cli.main import main
from milvusdiff.config import Settings
from milvusdiff.errors import FilterConversionError

COLLECTION = "qc"
ROWS = 300
STRINGS = ["alpha", "Beta", "gamma ray", "50%", "a_b", 'say "hi"', "back\\slash", "x'; drop table qc; --", "é☃", ""]
PARTITION = "p1"


def make_rows(count: int = ROWS) -> list[dict[str, Any]]:
    """Deterministic rows with nulls, awkward strings, JSON, arrays and two dynamic keys."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(count):
        row: dict[str, Any] = {
            "id": i,
            "i32": int(rng.integers(-50, 50)) if i % 9 else None,
            "i64": int(rng.integers(-(2**40), 2**40)),
            "f": float(np.float32(rng.normal())) if i % 11 else None,
            "d": float(rng.normal() * 100),
            "b": i % 3 == 0 if i % 13 else None,
            "s": STRINGS[i % len(STRINGS)] if i % 17 else None,
            "j": {"n": i % 10, "x": i / 4, "tag": STRINGS[i % 5], "flag": i % 2 == 0, "list": [i % 3, i % 5]}
            if i % 7
            else None,
            "ai": [int(x) for x in rng.integers(0, 10, size=i % 4)] if i % 5 else None,
            "av": [STRINGS[(i + k) % len(STRINGS)] for k in range(i % 3)],
            "v": rng.random(4, dtype=np.float32),
        }
        if i % 2:
            row["color"] = ["red", "green", "blue"][i % 3]
        if i % 3:
            row["weight"] = i % 20
        rows.append(row)
    return rows


def build(settings: Settings, rows: list[dict[str, Any]]) -> None:
    """The collection, written through ShadowClient; a tenth of the rows in a user partition."""
    client = ShadowClient.from_settings(settings)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("i32", DataType.INT32, nullable=True)
    schema.add_field("i64", DataType.INT64)
    schema.add_field("f", DataType.FLOAT, nullable=True)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("b", DataType.BOOL, nullable=True)
    schema.add_field("s", DataType.VARCHAR, max_length=64, nullable=True)
    schema.add_field("j", DataType.JSON, nullable=True)
    schema.add_field("ai", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True)
    schema.add_field("av", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(COLLECTION, schema=schema, index_params=index)
    client.create_partition(COLLECTION, PARTITION)
    split = len(rows) // 10
    client.insert(COLLECTION, rows[split:])
    client.insert(COLLECTION, rows[:split], partition_name=PARTITION)
    client.close()


def lite_settings(root: Path, pg_conn: str) -> Settings:
    return Settings(
        milvus_uri=str(root / "lite.db"), milvus_token=None, pg_conn=pg_conn, journal_path=root / "journal", home=root
    )


@pytest.fixture(scope="module")
def clean_schema(tmp_path_factory: pytest.TempPathFactory, pg_conn: str) -> Iterator[tuple[Settings, str]]:
    """One clean collection for the read-only tests of this module, in a PostgreSQL schema of its own."""
    schema = f"qc_{uuid.uuid4().hex[:12]}"
    settings = lite_settings(tmp_path_factory.mktemp("query-check"), pg_conn)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MILVUSDIFF_PG_SCHEMA", schema)
        build(settings, make_rows())
    yield settings, schema
    with psycopg.connect(pg_conn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def clean(clean_schema: tuple[Settings, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings, schema = clean_schema
    monkeypatch.setenv("MILVUSDIFF_PG_SCHEMA", schema)
    return settings


@pytest.fixture
def own(tmp_path: Path, pg_conn: str) -> Settings:
    """A collection of the test's own, for tests that damage it (the schema is the test's private one)."""
    settings = lite_settings(tmp_path, pg_conn)
    build(settings, make_rows())
    return settings


def run_cli(
    command: str, argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`milvusdiff COMMAND --collection <the test's> ARGV` on the settings' stores: (exit code, stdout, stderr)."""
    stores = ["--milvus-uri", settings.milvus_uri, "--pg-conn", str(settings.pg_conn)]
    with pytest.raises(SystemExit) as exited:
        main([command, "--collection", COLLECTION, *argv, *stores, "--journal", str(settings.journal_path)])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def cli(argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli("query-check", argv, settings, capsys)


# Filters whose semantics Milvus Lite shares with Milvus (and the translators).
CORPUS = [
    "true",
    "false",
    "i32 > 0",
    "i32 is null",
    "not (i32 == 5)",
    "i64 < 0 and b",
    "f >= 0.5",
    "d < -10 or d > 10",
    "b == false",
    's == "50%"',
    's like "a%"',
    's in ["alpha", "é☃", "x\'; drop table qc; --"]',
    's is not null and not (s > "b")',
    'j["n"] == 3',
    'j["x"] > 20.5',
    'j["tag"] like "g%"',
    'j["flag"] == true',
    'json_contains(j["list"], 2)',
    "j is null",
    "array_contains(ai, 3)",
    "array_length(ai) >= 2",
    'array_contains_any(av, ["Beta", ""])',
    'color == "red"',
    "weight > 10",
    '$meta["color"] != "blue"',
    'exists j["n"]',
    "id in [1, 2, 3, 500]",
    "(i32 > 10 or weight < 3) and not (d > 0)",
]


def test_a_clean_collection_agrees_on_every_filter_of_the_corpus(clean: Settings, tmp_path: Path) -> None:
    sizes = {}
    with open_stores(COLLECTION, clean) as stores:
        assert stores.with_partition
        for index, expr in enumerate(CORPUS):
            result = run_query(stores, expr, tmp_path / str(index))
            assert (expr, result.exit_code, result.differences) == (expr, 0, 0)
            sizes[expr] = result.check["rows_milvus"]
            assert result.check["rows_pg"] == sizes[expr]
    assert sizes["true"] == ROWS and sizes["false"] == 0
    assert sum(0 < size < ROWS for size in sizes.values()) >= len(CORPUS) - 4  # the filters discriminate


def test_cli_writes_every_output_and_exits_zero(clean: Settings, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code, stdout, _ = cli(["--filter", 'j["n"] >= 5 and s != "alpha"', "--out", str(out)], clean, capsys)
    assert code == 0
    produced = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected = {"summary.json", "diff.parquet", "report.md", "report.html", ".milvusdiff-output.json"}
    assert produced == expected | {"snapshots/milvus.parquet", "snapshots/pg.parquet"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["a"]["path"] == str(out / "snapshots" / "milvus.parquet")  # named where it ended up
    assert summary["rows_a"] == summary["rows_b"] == summary["query_check"]["rows_pg"] > 0
    assert "$partition" in summary["columns"]
    assert "the result sets agree" in stdout
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing left from staging


def test_output_fields_limit_the_compared_columns(clean: Settings) -> None:
    result = query_check(COLLECTION, "weight >= 0", output_fields=["s", "$meta"], settings=clean)
    assert result.exit_code == 0
    assert set(result.summary.columns) == {"s", "$meta", "$partition"}
    assert result.check["output_fields"] == ["id", "s", "$meta"]


def test_random_filters_agree_on_a_clean_collection(clean: Settings, tmp_path: Path, capsys) -> None:
    out = tmp_path / "random"
    code, stdout, _ = cli(["--random", "50", "--seed", "5", "--out", str(out)], clean, capsys)
    summary = json.loads((out / "summary.json").read_text())
    entries = summary["filters"]
    assert [e for e in entries if e["exit_code"] != 0] == []
    assert code == 0 and len(entries) == 50 and summary["lite_safe"]
    assert sum(0 < e["rows_milvus"] < ROWS for e in entries) >= 25  # literals come from the data
    assert not (out / "filters").exists()  # outputs are kept only for filters that differ
    assert "50 agree" in stdout


def test_the_same_seed_gives_the_same_filters(clean: Settings) -> None:
    from milvusdiff.checks.query_random import generate_filters

    with open_stores(COLLECTION, clean) as stores:
        first = generate_filters(stores, 20, 9, lite_safe=True)
        assert generate_filters(stores, 20, 9, lite_safe=True) == first
        assert generate_filters(stores, 20, 10, lite_safe=True) != first


def test_a_row_deleted_behind_the_shadow_s_back_exits_one_naming_the_key(own: Settings, capsys) -> None:
    milvus = MilvusClient(own.milvus_uri)
    milvus.delete(COLLECTION, ids=[42])
    milvus.close()
    code, stdout, _ = cli(["--filter", "id >= 40 and id < 50", "--format", "json"], own, capsys)
    summary = json.loads(stdout)
    assert code == 1
    assert (summary["only_a"], summary["only_b"], summary["changed"]) == (0, 1, 0)
    assert summary["query_check"]["differing_keys"] == [
        {"key": 42, "class": "only_b", "explanation": "missing in milvus"}
    ]
    code, stdout, _ = cli(["--filter", "id >= 40 and id < 50"], own, capsys)
    assert code == 1 and "42" in stdout and "missing in milvus" in stdout


def test_a_value_changed_in_the_shadow_is_a_changed_row(own: Settings, pg_conn: str, capsys) -> None:
    table = sql.Identifier(os.environ["MILVUSDIFF_PG_SCHEMA"], COLLECTION)
    with psycopg.connect(pg_conn, autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {} SET d = d + 1 WHERE id = 77").format(table))
    code, stdout, _ = cli(["--filter", "id > 70 and id < 80", "--format", "json"], own, capsys)
    summary = json.loads(stdout)
    assert code == 1 and summary["changed"] == 1 and summary["columns"]["d"]["mismatches"] == 1
    assert summary["query_check"]["differing_keys"] == [{"key": 77, "class": "changed", "explanation": "rows differ"}]


def test_lite_semantics_are_reported_as_such_not_as_data_loss(clean: Settings) -> None:
    # Milvus Lite selects NULL fields for `not in` (LITE_DIFFERS); the data is the same in both stores.
    result = query_check(COLLECTION, "i32 not in [5, 7]", settings=clean)
    nulls = {row["id"] for row in make_rows() if row["i32"] is None}
    assert result.exit_code == 1
    assert {f["key"] for f in result.check["differing_keys"]} == nulls
    assert result.check["explanations"] == {"engine semantics differ": len(nulls)}


HOSTILE_LITERALS = [
    ('s == "x\'; drop table qc; --"', "x'; drop table qc; --"),
    ('s == "\'); DROP SCHEMA public CASCADE; --"', None),
    ('s == "$1" or s == "%s" or s == "?"', None),
    ('s like "%\'--%"', None),
    ('$meta["a\\"; DROP TABLE qc; --"] == 1', None),
]


@pytest.mark.parametrize(("expr", "value"), HOSTILE_LITERALS, ids=[e for e, _ in HOSTILE_LITERALS])
def test_hostile_literals_are_values(clean: Settings, expr: str, value: str | None) -> None:
    result = query_check(COLLECTION, expr, settings=clean)
    expected = sum(1 for row in make_rows() if value is not None and row["s"] == value)
    assert (result.exit_code, result.check["rows_pg"], result.check["rows_milvus"]) == (0, expected, expected)
    assert query_check(COLLECTION, "true", settings=clean).check["rows_pg"] == ROWS  # the table is intact


@pytest.mark.parametrize(
    ("expr", "position"),
    [
        ('s; DROP TABLE qc == "x"', 1),
        ('"s" == 1', None),
        ('nosuch["a"] == 1 or id == 1; --', None),
        ("i32 == 1) or (1 == 1", 8),
        ("v == 1", 0),
    ],
)
def test_hostile_or_broken_filters_exit_two_with_one_line(clean: Settings, expr: str, position, capsys) -> None:
    code, stdout, stderr = cli(["--filter", expr], clean, capsys)
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "position" in stderr
    if position is not None:
        with pytest.raises(FilterConversionError) as caught:
            query_check(COLLECTION, expr, settings=clean)
        assert caught.value.position == position


def test_a_filter_milvus_refuses_is_one_line_of_trouble(clean: Settings, capsys) -> None:
    code, stdout, stderr = cli(["--filter", "1 < i32 < 8"], clean, capsys)  # Milvus Lite has no range chains
    lines = stderr.strip().splitlines()
    assert (code, stdout, len(lines)) == (2, "", 1) and lines[0].startswith("milvusdiff: Milvus refused the query: ")


def test_trouble_leaves_no_output_behind(clean: Settings, tmp_path: Path, capsys) -> None:
    code, _, _ = cli(["--filter", "i32 >", "--out", str(tmp_path / "run")], clean, capsys)
    assert code == 2 and list(tmp_path.iterdir()) == []


def test_filter_and_random_are_exclusive(clean: Settings, capsys) -> None:
    code, _, stderr = cli([], clean, capsys)
    assert code == 2 and "exactly one of --filter" in stderr
