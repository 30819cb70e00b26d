"""The type map, proved by round trips: a value written, read back from Milvus Lite and from PostgreSQL,
lands in the same canonical snapshot form (and so the same digest) as the value converted directly.

Every hypothesis example is one batch of rows: one Milvus insert + query, one PostgreSQL COPY + SELECT,
so the whole file costs a few dozen round trips per store.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from helpers.agreement import pg_columns_to_snapshot, pg_table, plain, read_pg_arrow, table_values
from helpers.schemas import DIM, LITE_FIELDS, REQUIRED, every_type_index, every_type_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from pymilvus import DataType, Function, FunctionType, MilvusClient

from milvusdiff.errors import SchemaError
from milvusdiff.services.pg import ShadowStore, _copy_stream, _copy_type
from milvusdiff.snapshot_format import META_COLUMN
from milvusdiff.types.canonical import canonical_json
from milvusdiff.types.convert import rows_to_table
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec, FieldSpec
from milvusdiff.types.typemap import arrow_field, rule, validate_field

ROUND_TRIP = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
PURE = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_ids = itertools.count(1)

# ---------------------------------------------------------------------------------------------
# Value strategies, one per Milvus type, within what Milvus Lite accepts

float32s = st.floats(width=32)
float64s = st.floats()
finite_doubles = st.floats(allow_nan=False, allow_infinity=False)
# PostgreSQL text cannot hold NUL (Milvus can: such a write is refused by the shadow, see test_shadow_client).
texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | finite_doubles
    | texts
    | st.integers(-5, 5).map(float)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
json_documents = st.dictionaries(texts, json_values, max_size=5) | st.lists(json_values, max_size=4)
coordinates = st.integers(-1000, 1000).map(str) | st.floats(-1e6, 1e6, allow_nan=False).map(repr)


@st.composite
def geometries(draw: st.DrawFn) -> str:
    space = draw(st.sampled_from(["", " "]))
    if draw(st.booleans()):
        return f"POINT{space}({draw(coordinates)} {draw(coordinates)})"
    x, y = draw(st.integers(-100, 100)), draw(st.integers(-100, 100))
    w, h = draw(st.integers(1, 50)), draw(st.integers(1, 50))
    ring = [(x, y), (x + w, y), (x + w, y + h), (x, y)]
    return f"POLYGON{space}((" + ", ".join(f"{a} {b}" for a, b in ring) + "))"


offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)
timestamp_texts = moments.map(lambda d: d.isoformat())
vectors = st.lists(float32s, min_size=DIM, max_size=DIM).flatmap(
    lambda v: st.sampled_from([v, np.array(v, dtype=np.float32)])
)
# Lite takes finite, positive weights only.
sparse_weights = st.floats(width=32, min_value=0, exclude_min=True, allow_infinity=False)
sparse_vectors = st.dictionaries(st.integers(0, 2**32 - 2), sparse_weights, min_size=1, max_size=6)
dynamic_keys = st.text(string.ascii_lowercase, min_size=1, max_size=6).map(lambda k: f"dyn_{k}")

ARRAY_ELEMENTS: dict[DataType, st.SearchStrategy[Any]] = {
    DataType.BOOL: st.booleans(),
    DataType.INT8: st.integers(-(2**7), 2**7 - 1),
    DataType.INT16: st.integers(-(2**15), 2**15 - 1),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.INT64: st.integers(-(2**63), 2**63 - 1),
    DataType.FLOAT: float32s,
    DataType.DOUBLE: float64s,
    DataType.VARCHAR: texts,
}
# A strategy for every field of the shared every-type collection.
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "b": st.booleans(),
    "i8": ARRAY_ELEMENTS[DataType.INT8],
    "i16": ARRAY_ELEMENTS[DataType.INT16],
    "i32": ARRAY_ELEMENTS[DataType.INT32],
    "i64": ARRAY_ELEMENTS[DataType.INT64],
    "f": float32s,
    "d": float64s,
    "s": texts,
    "j": json_documents,
    **{f"a_{elem.name.lower()}": st.lists(strategy, max_size=5) for elem, strategy in ARRAY_ELEMENTS.items()},
    "g": geometries(),
    "ts": timestamp_texts,
    "vec": vectors,
    "sp": sparse_vectors,
}
assert set(STRATEGIES) == {name for name, _, _ in LITE_FIELDS}


@st.composite
def lite_rows(draw: st.DrawFn) -> dict[str, Any]:
    """One row: required fields always; nullable ones a value, None, or left out; dynamic keys sometimes."""
    row: dict[str, Any] = {}
    for name, strategy in STRATEGIES.items():
        if name in REQUIRED:
            row[name] = draw(strategy)
            continue
        choice = draw(st.sampled_from(["value", "value", "none", "absent"]))
        if choice != "absent":
            row[name] = draw(strategy) if choice == "value" else None
    row.update(draw(st.dictionaries(dynamic_keys, json_values, max_size=3)))
    return row


# ---------------------------------------------------------------------------------------------
# The stores: one Milvus Lite collection and one PostgreSQL table per spec, reused by every example


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MilvusClient, CollectionSpec]]:
    client = MilvusClient(str(tmp_path_factory.mktemp("typemap") / "milvus.db"))
    client.create_collection("every_type", schema=every_type_schema(), index_params=every_type_index(client))
    spec = CollectionSpec.from_milvus("every_type", client.describe_collection("every_type"))
    yield client, spec
    client.close()


@pytest.fixture(scope="module")
def pg(pg_conn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection whose search path is a schema private to this module."""
    schema = f"typemap_{next(_ids)}_{id(pg_conn)}"
    with psycopg.connect(pg_conn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        try:
            yield conn
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def pg_columns(spec: CollectionSpec) -> list[tuple[FieldSpec, str]]:
    fields = list(spec.fields)
    if spec.enable_dynamic_field:
        fields.append(FieldSpec(name=META_COLUMN, type="JSON", nullable=True))
    return [(f, rule(f).pg(f)) for f in fields]


def pg_round_trip(conn: psycopg.Connection[Any], conninfo: str, table: pa.Table, spec: CollectionSpec) -> pa.Table:
    """Snapshot table -> type map to_pg -> binary COPY into a real table -> SELECT via ADBC -> coerce_pg_column."""
    columns = pg_columns(spec)
    name = sql.Identifier(spec.name)
    idents = sql.SQL(", ").join(sql.Identifier(f.name) for f, _ in columns)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            name, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(t)) for f, t in columns)
        )
    )
    values = [rule(f).to_pg(table.column(f.name).combine_chunks(), f) for f, _ in columns]
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(name, idents)) as cp:
        cp.set_types([_copy_type(t) for _, t in columns])
        for row in zip(*values, strict=True):
            cp.write_row(row)
    schema = conn.execute("SELECT current_schema()").fetchone()
    assert schema is not None
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        idents, sql.Identifier(schema[0], spec.name), sql.Identifier(spec.primary.name)
    )
    raw = read_pg_arrow(conninfo, query.as_string(conn))
    return pg_columns_to_snapshot(raw, spec, with_partition=False)


def milvus_round_trip(client: MilvusClient, spec: CollectionSpec, rows: list[dict[str, Any]]) -> pa.Table:
    client.insert(spec.name, rows)
    ids = [r["id"] for r in rows]
    back = client.query(spec.name, filter=f"id in {ids}", output_fields=["*"], consistency_level="Strong")
    return rows_to_table(sorted(back, key=lambda r: r["id"]), spec)


def assert_same(a: pa.Table, b: pa.Table, spec: CollectionSpec) -> None:
    assert table_values(a) == table_values(b)
    assert row_digests(a, spec).to_pylist() == row_digests(b, spec).to_pylist()


# ---------------------------------------------------------------------------------------------
# Round trips for every type Milvus Lite supports


@ROUND_TRIP
@given(rows=st.lists(lite_rows(), min_size=1, max_size=12))
def test_milvus_and_postgresql_round_trips_give_the_direct_canonical_values(
    lite: tuple[MilvusClient, CollectionSpec], pg: psycopg.Connection[Any], pg_conn: str, rows: list[dict[str, Any]]
) -> None:
    client, spec = lite
    for row in rows:
        row["id"] = next(_ids)
    direct = rows_to_table(rows, spec)
    assert_same(milvus_round_trip(client, spec, rows), direct, spec)
    assert_same(pg_round_trip(pg, pg_conn, direct, spec), direct, spec)


def test_spec_read_back_from_milvus_keeps_types_defaults_and_nullability(
    lite: tuple[MilvusClient, CollectionSpec],
) -> None:
    _, spec = lite
    assert spec.enable_dynamic_field and not spec.auto_id
    assert spec.primary.name == "id"
    assert spec.field("i32").default_value == 7 and spec.field("s").default_value == "dflt"
    assert spec.field("a_varchar").element_type == "VARCHAR" and spec.field("a_varchar").max_capacity == 5
    assert spec.field("vec").dim == DIM and not spec.field("vec").nullable
    assert all(spec.field(name).nullable for name, _, _ in LITE_FIELDS if name not in REQUIRED)
    assert CollectionSpec.from_json(spec.to_json()) == spec


def test_edge_values_survive_both_stores_bit_for_bit(
    lite: tuple[MilvusClient, CollectionSpec], pg: psycopg.Connection[Any], pg_conn: str
) -> None:
    """The values a random search may miss, spelled out: float specials, unicode, JSON spellings, defaults."""
    client, spec = lite
    tiny = float(np.float32(1e-45))  # the smallest float32 subnormal
    rows: list[dict[str, Any]] = [
        {
            "f": -0.0,
            "d": 5e-324,
            "s": "é\U0001f600\u200b'\";--",
            "j": {"b": [1.0, 2.5, {"y": None, "x": True}], "a": "\U0001f600"},
            "a_float": [math.inf, -math.inf, math.nan, -0.0, tiny],
            "a_double": [math.nan, 5e-324, -0.0],
            "g": "POINT(0.1 0.30000000000000004)",
            "ts": "1960-05-01T00:00:00.5-05:30",
            "vec": [tiny, -0.0, math.nan, math.inf, -math.inf, 3.4028234663852886e38, -tiny, 1.0],
            "sp": {2**32 - 2: 1.5, 0: tiny},
            "dyn_x": {"k": 1.0},
        },
        {"f": math.nan, "d": -math.inf, "i32": None, "s": None, "vec": np.zeros(DIM, np.float32), "sp": {1: 1.0}},
        {"vec": np.ones(DIM, np.float32), "sp": {1: 1.0}, "j": [], "a_varchar": []},
    ]
    for row in rows:
        row["id"] = next(_ids)
    direct = rows_to_table(rows, spec)
    by_name = direct.to_pylist()
    assert by_name[1]["i32"] == 7 and by_name[1]["s"] == "dflt" and by_name[2]["i32"] == 7
    assert by_name[0]["j"] == '{"a":"\U0001f600","b":[1,2.5,{"x":true,"y":null}]}'
    assert by_name[0]["ts"] == datetime(1960, 5, 1, 5, 30, 0, 500000, tzinfo=timezone.utc)
    assert by_name[0]["sp"] == {"indices": [0, 2**32 - 2], "values": [tiny, 1.5]}
    assert by_name[0][META_COLUMN] == '{"dyn_x":{"k":1}}' and by_name[1][META_COLUMN] == "{}"
    assert_same(milvus_round_trip(client, spec, rows), direct, spec)
    assert_same(pg_round_trip(pg, pg_conn, direct, spec), direct, spec)


# ---------------------------------------------------------------------------------------------
# Types Milvus Lite lacks: the Arrow and PostgreSQL sides

OTHER_SPEC = CollectionSpec(
    name="lite_lacks",
    fields=(
        FieldSpec("pk", "VARCHAR", is_primary=True, max_length=64),
        FieldSpec("f16", "FLOAT16_VECTOR", dim=DIM, nullable=True),
        FieldSpec("bf16", "BFLOAT16_VECTOR", dim=DIM, nullable=True),
        FieldSpec("bin", "BINARY_VECTOR", dim=2 * DIM, nullable=True),
        FieldSpec("i8v", "INT8_VECTOR", dim=DIM, nullable=True),
        FieldSpec("txt", "TEXT", nullable=True),
        FieldSpec("fv", "FLOAT_VECTOR", dim=DIM, nullable=True),
    ),
)
half_bits = st.lists(st.integers(0, 2**16 - 1), min_size=DIM, max_size=DIM).map(lambda b: np.array(b, "<u2"))


@st.composite
def other_rows(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A row as a client would write it, and the Arrow values the type map must give for it."""
    f16 = draw(half_bits).view("<f2")
    bf16 = draw(half_bits)
    binary = draw(st.binary(min_size=2, max_size=2))
    i8 = draw(st.lists(st.integers(-128, 127), min_size=DIM, max_size=DIM))
    text = draw(texts)
    row = {
        "pk": draw(texts),
        "f16": draw(st.sampled_from([f16, f16.tobytes(), None])),
        "bf16": draw(st.sampled_from([bf16.tobytes(), None])),
        "bin": draw(st.sampled_from([binary, None])),
        "i8v": draw(st.sampled_from([i8, np.array(i8, np.int8), None])),
        "txt": draw(st.sampled_from([text, None])),
        "fv": draw(st.sampled_from([draw(vectors), None])),
    }
    expected = {
        "f16": None if row["f16"] is None else plain(f16.astype(np.float32).tolist()),
        "bf16": None if row["bf16"] is None else plain((bf16.astype(np.uint32) << 16).view(np.float32).tolist()),
        "bin": row["bin"],
        "i8v": None if row["i8v"] is None else i8,
        "txt": row["txt"],
    }
    return row, expected


@ROUND_TRIP
@given(data=st.lists(other_rows(), min_size=1, max_size=12, unique_by=lambda r: r[0]["pk"]))
def test_types_lite_lacks_convert_exactly_and_survive_postgresql(
    pg: psycopg.Connection[Any], pg_conn: str, data: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    rows = [row for row, _ in data]
    direct = rows_to_table(rows, OTHER_SPEC)
    got = table_values(direct, ["f16", "bf16", "bin", "i8v", "txt"])
    assert got == [expected for _, expected in data]
    via_pg = pg_round_trip(pg, pg_conn, direct, OTHER_SPEC)
    ordered = direct.sort_by("pk")
    assert_same(via_pg, ordered, OTHER_SPEC)


def test_snapshot_columns_carry_the_milvus_type() -> None:
    types = {f.name: arrow_field(f) for f in OTHER_SPEC.fields}
    assert types["f16"].type == pa.list_(pa.float32(), DIM)
    assert types["f16"].metadata == {b"milvusdiff.type": b"FLOAT16_VECTOR"}
    assert types["bin"].type == pa.binary(2)
    assert types["i8v"].type == pa.list_(pa.int8(), DIM)
    assert types["txt"].type == pa.string()


def test_bfloat16_given_as_float32_must_be_exact() -> None:
    spec = CollectionSpec("c", (FieldSpec("pk", "INT64", is_primary=True), FieldSpec("v", "BFLOAT16_VECTOR", dim=2)))
    exact = np.array([1.5, -2.0], np.float32)
    assert rows_to_table([{"pk": 1, "v": exact}], spec).column("v").to_pylist() == [[1.5, -2.0]]
    with pytest.raises(ValueError, match="bfloat16"):
        rows_to_table([{"pk": 1, "v": np.array([1.1, 0.0], np.float32)}], spec)


# ---------------------------------------------------------------------------------------------
# Digests

DIGEST_SPEC = CollectionSpec(
    name="digests",
    fields=(
        FieldSpec("id", "INT64", is_primary=True),
        FieldSpec("a", "VARCHAR", nullable=True),
        FieldSpec("b", "VARCHAR", nullable=True),
        FieldSpec("j", "JSON", nullable=True),
        FieldSpec("arr", "ARRAY", element_type="INT32", nullable=True),
        FieldSpec("vec", "FLOAT_VECTOR", dim=DIM),
    ),
    enable_dynamic_field=True,
)
digest_rows = st.fixed_dictionaries(
    {
        "id": st.integers(0, 3),
        "a": st.none() | st.sampled_from(["", "a", "ab"]),
        "b": st.none() | st.sampled_from(["", "b", "ab"]),
        "j": st.none() | st.sampled_from([{}, {"x": 1}, {"x": 1.0, "y": [1]}, {"y": [1.0], "x": 1}, [1, 2]]),
        "arr": st.none() | st.lists(st.integers(-2, 2), max_size=2),
        "vec": st.lists(st.sampled_from([0.0, -0.0, 1.0, math.inf]), min_size=DIM, max_size=DIM),
    },
    optional={"dyn_a": st.sampled_from([1, 1.0, "1"]), "dyn_b": st.sampled_from([[1], {"k": 2}])},
)


def digests_of(rows: list[dict[str, Any]], spec: CollectionSpec = DIGEST_SPEC) -> list[bytes]:
    return row_digests(rows_to_table(rows, spec), spec).to_pylist()


@PURE
@given(rows=st.lists(digest_rows, min_size=2, max_size=30))
def test_digests_are_equal_exactly_when_canonical_values_are(rows: list[dict[str, Any]]) -> None:
    table = rows_to_table(rows, DIGEST_SPEC)
    values = [repr(v) for v in table_values(table)]
    digests = row_digests(table, DIGEST_SPEC).to_pylist()
    assert all(len(d) == 16 for d in digests)
    for (v1, d1), (v2, d2) in itertools.combinations(zip(values, digests, strict=True), 2):
        assert (v1 == v2) == (d1 == d2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(lite_rows(), min_size=2, max_size=8), cut=st.integers(0, 7))
def test_digests_do_not_depend_on_slicing_or_chunking(rows: list[dict[str, Any]], cut: int) -> None:
    cut = 1 + cut % (len(rows) - 1)
    spec = CollectionSpec("every_type", _lite_spec_fields(), enable_dynamic_field=True)
    for i, row in enumerate(rows):
        row["id"] = i
    table = rows_to_table(rows, spec)
    whole = row_digests(table, spec).to_pylist()
    assert row_digests(table.slice(cut), spec).to_pylist() == whole[cut:]
    chunked = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    assert row_digests(chunked, spec).to_pylist() == whole


def _lite_spec_fields() -> tuple[FieldSpec, ...]:
    """The Lite collection's fields without asking Milvus (for tests that never touch a store)."""
    fields = [FieldSpec("id", "INT64", is_primary=True)]
    for name, dtype, kwargs in LITE_FIELDS:
        element = kwargs.get("element_type")
        fields.append(
            FieldSpec(
                name,
                dtype.name,
                nullable=kwargs.get("nullable", False),
                default_value=kwargs.get("default_value"),
                dim=kwargs.get("dim"),
                element_type=element.name if element is not None else None,
            )
        )
    return tuple(fields)


@PURE
@given(vector=st.lists(st.floats(width=32, allow_nan=False), min_size=DIM, max_size=DIM), at=st.integers(0, DIM - 1))
def test_one_ulp_in_one_vector_element_changes_the_digest(vector: list[float], at: int) -> None:
    original = np.array(vector, dtype=np.float32)
    nudged = original.copy()
    toward = np.float32(np.inf if original[at] < np.inf else -np.inf)
    nudged[at] = np.nextafter(original[at], toward)
    rows = [{"id": 1, "vec": original}, {"id": 1, "vec": nudged}]
    first, second = digests_of(rows)
    assert first != second


@PURE
@given(document=st.dictionaries(texts, json_values, min_size=2, max_size=6), seed=st.randoms())
def test_json_key_order_and_integral_floats_do_not_change_the_digest(document: dict[str, Any], seed: Any) -> None:
    items = list(document.items())
    seed.shuffle(items)
    reordered = {k: (float(v) if type(v) is int and abs(v) < 2**53 else v) for k, v in items}
    rows = [{"id": 1, "j": document, "dyn_a": document}, {"id": 1, "j": reordered, "dyn_a": reordered}]
    first, second = digests_of(rows)
    assert first == second
    assert canonical_json(document) == canonical_json(reordered)


def test_digest_framing_keeps_neighbouring_fields_apart() -> None:
    rows = [
        {"id": 1, "a": "ab", "b": "", "vec": [0.0] * DIM},
        {"id": 1, "a": "a", "b": "b", "vec": [0.0] * DIM},
        {"id": 1, "a": "", "b": "ab", "vec": [0.0] * DIM},
        {"id": 1, "a": None, "b": "ab", "vec": [0.0] * DIM},
        {"id": 1, "a": "", "b": "ab", "arr": [], "vec": [0.0] * DIM},
        {"id": 1, "a": "", "b": "ab", "arr": [0], "vec": [0.0] * DIM},
    ]
    assert len(set(digests_of(rows))) == len(rows)


def test_a_missing_nullable_column_counts_as_null() -> None:
    table = rows_to_table([{"id": 1, "vec": [1.0] * DIM}], DIGEST_SPEC)
    assert row_digests(table.drop_columns(["a", "j"]), DIGEST_SPEC) == row_digests(table, DIGEST_SPEC)


# ---------------------------------------------------------------------------------------------
# What the type map refuses


@pytest.mark.parametrize(
    ("field", "words"),
    [
        (FieldSpec("tags", "ARRAY", element_type="JSON"), ["tags", "ARRAY", "JSON"]),
        (FieldSpec("nested", "ARRAY", element_type="ARRAY"), ["nested", "ARRAY"]),
        (FieldSpec("bits", "BINARY_VECTOR", dim=12), ["bits", "BINARY_VECTOR", "12"]),
        (FieldSpec("rec", "STRUCT"), ["rec", "STRUCT"]),
        (FieldSpec("v", "FLOAT_VECTOR"), ["v", "FLOAT_VECTOR", "dim"]),
        (FieldSpec("h", "FLOAT16_VECTOR", dim=0), ["h", "FLOAT16_VECTOR", "dim"]),
        (FieldSpec("k", "DOUBLE", is_primary=True), ["k", "DOUBLE", "primary"]),
        (FieldSpec("m", "UNKNOWN"), ["m", "UNKNOWN"]),
    ],
)
def test_unsupported_fields_fail_with_a_schema_error_naming_field_and_type(field: FieldSpec, words: list[str]) -> None:
    with pytest.raises(SchemaError) as raised:
        validate_field(field)
    for word in words:
        assert word in str(raised.value)


def test_struct_fields_of_a_milvus_schema_are_refused_not_dropped() -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    struct = MilvusClient.create_struct_field_schema()
    struct.add_field("x", DataType.INT32)
    schema.add_field("clips", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=struct, max_capacity=4)
    with pytest.raises(SchemaError, match=r"clips.*STRUCT"):
        CollectionSpec.from_milvus("c", schema)


def test_function_output_fields_are_refused_not_left_empty() -> None:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    schema.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name="bm", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["bm25"])
    )
    with pytest.raises(SchemaError, match=r"'bm25' \(SPARSE_FLOAT_VECTOR\) is computed by a Milvus function"):
        CollectionSpec.from_milvus("c", schema)


# ---------------------------------------------------------------------------------------------
# The shadow store's COPY stream (assembled with numpy) against the same values converted directly

COPY_SPEC = CollectionSpec(
    name="copy_stream",
    fields=(
        *(
            replace(f, nullable=True) if f.name in REQUIRED else f
            for f in _lite_spec_fields()
            if f.type != "ARRAY"  # arrays take psycopg's per-row path
        ),
        *(f for f in OTHER_SPEC.fields if not f.is_primary),
    ),
    enable_dynamic_field=True,
)


@pytest.fixture(scope="module")
def shadow_store(pg: psycopg.Connection[Any], pg_conn: str) -> Iterator[ShadowStore]:
    row = pg.execute("SELECT current_schema()").fetchone()
    assert row is not None
    store = ShadowStore(pg_conn, schema=row[0], max_connections=2)
    store.create_table(COPY_SPEC)
    yield store
    store.close()


@st.composite
def copy_rows(draw: st.DrawFn) -> dict[str, Any]:
    row = {k: v for k, v in draw(lite_rows()).items() if not k.startswith("a_")}
    row.update({k: v for k, v in draw(other_rows())[0].items() if k != "pk"})
    for name in REQUIRED:
        if draw(st.booleans()):
            row[name] = None
    return row


@ROUND_TRIP
@given(rows=st.lists(copy_rows(), min_size=1, max_size=12), partition=st.sampled_from(["_default", "p'1", None]))
def test_the_copy_stream_stores_every_non_array_type_exactly(
    shadow_store: ShadowStore, rows: list[dict[str, Any]], partition: str | None
) -> None:
    for row in rows:
        row["id"] = next(_ids)
    direct = rows_to_table(rows, COPY_SPEC)
    assert _copy_stream(COPY_SPEC, direct, partition) is not None  # the numpy path, not write_row
    with shadow_store.connection() as conn:
        conn.execute(sql.SQL("DELETE FROM {}").format(shadow_store.table(COPY_SPEC.name)))
    shadow_store.stage_upsert(COPY_SPEC, direct, partition).commit()
    stored = pg_table(shadow_store, COPY_SPEC)
    assert stored.column("$partition").to_pylist() == [partition] * len(rows)
    assert_same(stored.drop_columns(["$partition"]), direct, COPY_SPEC)
