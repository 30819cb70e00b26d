"""Generated rows: every field type of a preset, nulls and omitted defaults at the requested rates, dynamic
keys, values within their limits, exact through the type map, and the same rows for the same seed."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from milvusdiff.errors import SchemaError
from milvusdiff.types.convert import rows_to_table
from milvusdiff.workload.columns import texts
from milvusdiff.workload.generate import RowGenerator
from milvusdiff.workload.schemas import INT_RANGES, load_preset, parse_preset

N = 4000
NULL_RATE = 0.3
DEFAULT_RATE = 0.4
TOLERANCE = 0.03  # about four standard deviations of a rate measured on N rows
WKT = re.compile(r"^(POINT \(\S+ \S+\)|POLYGON \(\((\S+ \S+, ){4}\S+ \S+\)\))$")


@pytest.fixture(scope="module")
def all_types() -> tuple[Any, list[dict[str, Any]], pa.Table]:
    preset = load_preset("all_types")
    batch = RowGenerator(preset, null_rate=NULL_RATE, default_rate=DEFAULT_RATE).generate(
        np.random.default_rng(11), np.arange(N)
    )
    return preset, batch.rows, rows_to_table(batch.rows, preset.spec)


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


def test_every_field_is_generated_and_converts_exactly(all_types: tuple[Any, list[dict[str, Any]], pa.Table]) -> None:
    preset, rows, table = all_types
    assert table.num_rows == N
    for f in preset.spec.fields:
        present = [row[f.name] for row in rows if row.get(f.name) is not None]
        assert present, f"{f.name} was never generated"
    assert table.column("id").to_pylist() == list(range(N))


def test_nullable_fields_are_null_at_the_requested_rate(
    all_types: tuple[Any, list[dict[str, Any]], pa.Table],
) -> None:
    preset, rows, table = all_types
    for f in preset.spec.fields:
        carried = [row[f.name] for row in rows if f.name in row]  # a defaulted field is also left out at times
        given_null = _share([value is None for value in carried])
        stored_null = table.column(f.name).null_count / N
        if f.nullable:
            assert abs(given_null - NULL_RATE) < TOLERANCE, f.name
            # a null given for a field with a default is stored as the default, as Milvus does
            assert stored_null == (0 if f.default_value is not None else given_null), f.name
        else:
            assert given_null == stored_null == 0, f.name


def test_defaulted_fields_are_left_out_at_the_requested_rate(
    all_types: tuple[Any, list[dict[str, Any]], pa.Table],
) -> None:
    preset, rows, table = all_types
    defaulted = [f for f in preset.spec.fields if f.default_value is not None]
    assert len(defaulted) >= 3
    for f in defaulted:
        omitted = [f.name not in row for row in rows]
        assert abs(_share(omitted) - DEFAULT_RATE) < TOLERANCE, f.name
        stored = table.column(f.name).to_pylist()
        assert all(value == pytest.approx(f.default_value) for value, gone in zip(stored, omitted, strict=True) if gone)
    assert all(f.name in row for row in rows for f in preset.spec.fields if f.default_value is None)


def test_dynamic_keys_appear_at_their_presence_rate(all_types: tuple[Any, list[dict[str, Any]], pa.Table]) -> None:
    preset, rows, table = all_types
    for f in preset.dynamic_fields:
        assert abs(_share([f.name in row for row in rows]) - preset.hint(f.name).presence) < TOLERANCE, f.name
    meta = table.column("$meta").to_pylist()
    assert sum('"source"' in m for m in meta) == sum("source" in row for row in rows)


def test_values_stay_within_their_limits(all_types: tuple[Any, list[dict[str, Any]], pa.Table]) -> None:
    preset, rows, _ = all_types
    for f in preset.spec.fields:
        values = [row[f.name] for row in rows if row.get(f.name) is not None]
        if f.type == "VARCHAR":
            assert max(len(v.encode("utf-8")) for v in values) <= (f.max_length or 0)
        elif f.type in INT_RANGES and not f.is_primary:
            low, high = INT_RANGES[f.type]
            assert all(low <= v <= high for v in values)
        elif f.type == "ARRAY":
            lengths = [len(v) for v in values]
            assert min(lengths) == 0 and max(lengths) == f.max_capacity, f.name
            if f.element_type == "VARCHAR":
                assert all(len(s.encode("utf-8")) <= (f.max_length or 0) for v in values for s in v)
        elif f.type == "GEOMETRY":
            assert all(WKT.match(v) for v in values)
            assert {v.split(" ")[0] for v in values} == {"POINT", "POLYGON"}
        elif f.type == "TIMESTAMPTZ":
            moments = [datetime.fromisoformat(v) for v in values]
            assert all(m.tzinfo is not None for m in moments)
            assert len({m.utcoffset() for m in moments}) > 3
        elif f.type == "SPARSE_FLOAT_VECTOR":
            assert all(list(v) == sorted(set(v)) and 1 <= len(v) <= 32 for v in values)
            assert all(w > 0 for v in values for w in v.values())
        elif f.type == "JSON":
            assert all(isinstance(v, dict) for v in values)


def test_integer_columns_reach_the_extremes_of_their_type(
    all_types: tuple[Any, list[dict[str, Any]], pa.Table],
) -> None:
    _, rows, _ = all_types
    small = {row["small"] for row in rows if row["small"] is not None}
    assert {-(2**15), 2**15 - 1} <= small


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_rows() -> None:
    preset = load_preset("rag")
    spec = preset.spec

    def table(seed: int) -> pa.Table:
        return rows_to_table(RowGenerator(preset).generate(np.random.default_rng(seed), np.arange(500)).rows, spec)

    assert table(3).equals(table(3))
    assert not table(3).equals(table(4))


def test_varchar_keys_sort_like_their_ordinals() -> None:
    generator = RowGenerator(load_preset("varchar_partitions"))
    ordinals = np.array([0, 7, 10, 999_999_999, 1_000_000_000, 31_000_000_005])
    keys = generator.keys(ordinals)
    assert keys[1] == "order-000000000007"
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_vector_types_of_real_servers_are_generated_exactly() -> None:
    preset = parse_preset(
        {
            "name": "server_vectors",
            "auto_id": True,
            "fields": [
                {"name": "id", "type": "INT64", "is_primary": True},
                {"name": "half", "type": "FLOAT16_VECTOR", "dim": 8},
                {"name": "brain", "type": "BFLOAT16_VECTOR", "dim": 8},
                {"name": "small", "type": "INT8_VECTOR", "dim": 8},
                {"name": "bits", "type": "BINARY_VECTOR", "dim": 64},
            ],
        }
    )
    rows = RowGenerator(preset).generate(np.random.default_rng(5), n=50).rows
    assert all("id" not in row for row in rows)  # auto_id: Milvus numbers the rows
    table = rows_to_table(rows, preset.spec)
    half = np.array(table.column("half").to_pylist(), dtype=np.float32)
    assert np.array_equal(half, np.array([r["half"] for r in rows]).astype(np.float32))
    brain_bits = np.frombuffer(b"".join(r["brain"] for r in rows), dtype="<u2").astype(np.uint32) << 16
    assert np.array_equal(
        np.array(table.column("brain").to_pylist(), dtype=np.float32).reshape(-1), brain_bits.view(np.float32)
    )
    assert table.column("small").to_pylist() == [r["small"].tolist() for r in rows]
    assert table.column("bits").to_pylist() == [r["bits"] for r in rows]
    assert {len(r["bits"]) for r in rows} == {8}


def test_texts_fit_their_byte_budget_even_with_multibyte_words() -> None:
    out = texts(np.random.default_rng(2), 3000, 7, (1, 5))
    assert max(len(t.encode("utf-8")) for t in out) <= 7
    assert any(len(t.encode("utf-8")) != len(t) for t in out)  # some non-ASCII words fit
    long = texts(np.random.default_rng(2), 500, 10_000, (20, 40))
    assert {len(t.split(" ")) for t in long} <= set(range(20, 41))


def test_generation_refuses_what_it_cannot_do() -> None:
    preset = load_preset("varchar_partitions")
    with pytest.raises(SchemaError, match="needs explicit keys"):
        RowGenerator(preset).generate(np.random.default_rng(0), n=5)
    with pytest.raises(SchemaError, match="null_rate must be from 0 to 1"):
        RowGenerator(preset, null_rate=1.5)
    tight = parse_preset(
        {
            "name": "tight",
            "fields": [
                {"name": "id", "type": "VARCHAR", "max_length": 10, "is_primary": True},
                {"name": "v", "type": "FLOAT_VECTOR", "dim": 2},
            ],
        }
    )
    with pytest.raises(SchemaError, match="cannot hold generated keys"):
        RowGenerator(tight)
