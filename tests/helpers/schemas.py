"""A collection with every type Milvus Lite supports, and deterministic rows for it.

Every scalar is nullable (some with defaults) so nulls and defaults are exercised; the collection has
the dynamic field. Rows carry float specials, unicode, nested JSON, WKT, offsets in timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymilvus import CollectionSchema, DataType, MilvusClient

DIM = 8
ARRAY_ELEMENT_TYPES = (
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
)

# (name, DataType, add_field keyword arguments) of every non-key field.
LITE_FIELDS: list[tuple[str, DataType, dict[str, Any]]] = [
    ("b", DataType.BOOL, {"nullable": True}),
    ("i8", DataType.INT8, {"nullable": True}),
    ("i16", DataType.INT16, {"nullable": True}),
    ("i32", DataType.INT32, {"nullable": True, "default_value": 7}),
    ("i64", DataType.INT64, {"nullable": True}),
    ("f", DataType.FLOAT, {"nullable": True}),
    ("d", DataType.DOUBLE, {"nullable": True}),
    ("s", DataType.VARCHAR, {"nullable": True, "max_length": 512, "default_value": "dflt"}),
    ("j", DataType.JSON, {"nullable": True}),
    *(
        (
            f"a_{elem.name.lower()}",
            DataType.ARRAY,
            {"nullable": True, "element_type": elem, "max_capacity": 5, "max_length": 512},
        )
        for elem in ARRAY_ELEMENT_TYPES
    ),
    ("g", DataType.GEOMETRY, {"nullable": True}),
    ("ts", DataType.TIMESTAMPTZ, {"nullable": True}),
    ("vec", DataType.FLOAT_VECTOR, {"dim": DIM}),
    ("sp", DataType.SPARSE_FLOAT_VECTOR, {}),
]
REQUIRED = frozenset({"vec", "sp"})


def every_type_schema(key_type: str = "INT64", *, auto_id: bool = False, key_name: str = "id") -> CollectionSchema:
    schema = MilvusClient.create_schema(auto_id=auto_id, enable_dynamic_field=True)
    if key_type == "INT64":
        schema.add_field(key_name, DataType.INT64, is_primary=True)
    else:
        schema.add_field(key_name, DataType.VARCHAR, is_primary=True, max_length=64)
    for name, dtype, kwargs in LITE_FIELDS:
        schema.add_field(name, dtype, **kwargs)
    return schema


def every_type_index(client: MilvusClient) -> Any:
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    index.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    return index


def key_for(i: int, key_type: str) -> int | str:
    return i if key_type == "INT64" else f"k-{i:05d}-é"


def every_type_rows(
    numbers: Sequence[int], *, version: int = 0, key_type: str | None = "INT64", key_name: str = "id"
) -> list[dict[str, Any]]:
    """One row per number; `version` changes every value (for upserts). key_type None leaves the key out."""
    rng = np.random.default_rng(version * 1_000_003 + (numbers[0] if numbers else 0))
    vectors = rng.standard_normal((len(numbers), DIM), dtype=np.float32)
    specials = [math.nan, -0.0, math.inf, float(np.float32(1e-45))]
    rows = []
    for at, i in enumerate(numbers):
        n = i + 31 * version
        vectors[at, n % DIM] = specials[n % len(specials)]
        row: dict[str, Any] = {
            "b": [True, False, None][n % 3],
            "i8": n % 256 - 128,
            "i16": -n,
            "i32": None if n % 4 == 0 else n * 1000,
            "i64": n * 2**40,
            "f": specials[n % 4] if n % 5 == 0 else float(np.float32(n / 7)),
            "d": n / 3,
            "s": None if n % 6 == 0 else f"s{n}-é'\";--\U0001f600",
            "j": {"n": n, "half": n + 0.5, "whole": float(n), "nested": {"list": [1, "x", None], "t": n % 2 == 0}},
            "a_bool": [n % 2 == 0, True],
            "a_int8": [n % 100, -1],
            "a_int16": [n],
            "a_int32": [n, n + 1, n + 2],
            "a_int64": [n * 2**33],
            "a_float": [float(np.float32(n / 3)), specials[n % 4]],
            "a_double": [n / 9, -0.0],
            "a_varchar": [f"v{n}", "é"],
            "g": f"POINT ({n} {-n}.5)" if n % 2 else f"POLYGON (({n} 0, {n + 1} 0, {n + 1} 1, {n} 0))",
            "ts": f"2024-0{1 + n % 9}-1{n % 10}T0{n % 10}:30:00.{n % 1000:06d}+0{n % 10}:00",
            "vec": vectors[at],
            "sp": {n % 50: 0.5 + version, 1000 + n: 1.25},
        }
        if n % 7 == 3:
            row.pop("j")  # absent: null
            row["a_varchar"] = None
        if i % 3 == 0:  # by row, not version: Lite's upsert keeps dynamic keys the new row lacks
            row["dyn_n"] = n
            row["dyn_doc"] = {"z": 1.0, "a": [version]}
        if key_type is not None:
            row[key_name] = key_for(i, key_type)
        rows.append(row)
    return rows


def create_small_collection(
    client: MilvusClient,
    name: str,
    *,
    key: str = "id",
    varchar_key: bool = False,
    text: str = "title",
    dim: int = 4,
    **create: Any,
) -> None:
    """A key, one VARCHAR and one FLOAT_VECTOR: a collection every Milvus (Lite, 2.3 servers) accepts. Strong
    consistency, so a real server shows every acknowledged write to the reads that follow. `create`: more
    create_collection keywords (db_name)."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    if varchar_key:
        schema.add_field(key, DataType.VARCHAR, is_primary=True, max_length=64)
    else:
        schema.add_field(key, DataType.INT64, is_primary=True)
    schema.add_field(text, DataType.VARCHAR, max_length=256)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong", **create)
