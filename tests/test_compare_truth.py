"""Ground truth for the compare tests: two snapshots of every Milvus type with known injected differences.

`make_pair()` writes snapshot A (as written) and B (A with every kind of difference injected) and
returns, per key, the class and changed columns the comparison must report; the journal helpers
build a journal snapshot whose verdicts are known. The tests at the bottom check the generator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from milvusdiff.snapshot_format import PARTITION_COLUMN
from milvusdiff.types.convert import rows_to_table
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec, FieldSpec

DIM = 8
N = 120

SPEC = CollectionSpec(
    name="docs",
    fields=(
        FieldSpec("id", "INT64", is_primary=True),
        FieldSpec("flag", "BOOL"),
        FieldSpec("i8", "INT8"),
        FieldSpec("i16", "INT16"),
        FieldSpec("i32", "INT32"),
        FieldSpec("f", "FLOAT", nullable=True),
        FieldSpec("d", "DOUBLE"),
        FieldSpec("title", "VARCHAR", max_length=64, nullable=True),
        FieldSpec("body", "TEXT"),
        FieldSpec("geo", "GEOMETRY"),
        FieldSpec("meta", "JSON"),
        FieldSpec("tags", "ARRAY", element_type="VARCHAR", max_capacity=8, max_length=16),
        FieldSpec("scores", "ARRAY", element_type="FLOAT", max_capacity=8),
        FieldSpec("ts", "TIMESTAMPTZ"),
        FieldSpec("vec", "FLOAT_VECTOR", dim=DIM),
        FieldSpec("hvec", "FLOAT16_VECTOR", dim=DIM),
        FieldSpec("bfvec", "BFLOAT16_VECTOR", dim=DIM),
        FieldSpec("i8vec", "INT8_VECTOR", dim=DIM),
        FieldSpec("bvec", "BINARY_VECTOR", dim=16),
        FieldSpec("sparse", "SPARSE_FLOAT_VECTOR"),
    ),
    enable_dynamic_field=True,
)


def _bfloat16(values: list[float]) -> bytes:
    """Exactly representable values only: the upper half of each float32."""
    return (np.array(values, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def make_rows(ids: range | list[int], seed: int = 7) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in ids:
        rows.append(
            {
                "id": i,
                "flag": bool(i % 2),
                "i8": i % 100,
                "i16": i * 3,
                "i32": i * 1000,
                "f": float(np.float32(i / 7)),
                "d": i / 3,
                "title": f"title {i}",
                "body": f"body of {i}",
                "geo": f"POINT ({i} {i + 1})",
                "meta": {"n": i, "tags": ["x", "y"], "nested": {"a": 1, "b": [1, 2]}},
                "tags": ["a", f"t{i}"],
                "scores": [float(np.float32(i / 11)), 0.5],
                "ts": f"2026-01-01T00:00:{i % 60:02d}+00:00",
                "vec": rng.random(DIM, dtype=np.float32).tolist(),
                "hvec": rng.random(DIM).astype(np.float16).astype(np.float32).tolist(),
                "bfvec": _bfloat16([1.0, 2.0, 0.5, 0.25, -1.0, 4.0, 8.0, float(i)]),
                "i8vec": rng.integers(-100, 100, DIM).tolist(),
                "bvec": bytes([i % 256, 255 - i % 256]),
                "sparse": {int(3 + i % 5): 0.5, 20: float(np.float32(i / 13))},
                "dyn_extra": i,
            }
        )
    return rows


@dataclass
class Truth:
    """What a correct comparison of A and B reports."""

    classes: dict[int, str] = field(default_factory=dict)  # differing key -> class
    changed_columns: dict[int, list[str]] = field(default_factory=dict)
    rows_a: int = 0
    rows_b: int = 0
    unchanged: int = 0

    def count(self, name: str) -> int:
        return sum(1 for c in self.classes.values() if c == name)


def _set(table: pa.Table, key: int, column: str, value: Any, *, raw: bool = False) -> pa.Table:
    """Replace one cell; `raw` writes a string as is (to store non-canonical JSON)."""
    index = table.column_names.index(column)
    values = table.column(column).to_pylist()
    row = table.column("id").to_pylist().index(key)
    values[row] = value
    array = pa.array(values, table.schema.field(index).type)
    del raw
    return table.set_column(index, table.schema.field(index), array)


# key -> (column, new value); each changes exactly that column of that row in B
CHANGES: dict[int, tuple[str, Any]] = {
    20: ("title", "another title"),
    21: ("i32", 1),
    22: ("d", 1e9),
    23: ("flag", True),  # id 23 is odd: flag was True, so set below to False
    24: ("f", float("nan")),  # value -> NaN
    25: ("title", None),  # value -> null
    26: ("ts", None),
    27: ("tags", ["a", "changed"]),
    28: ("scores", [0.25, 0.5]),
    29: ("geo", "POINT (0 0)"),
    32: ("hvec", [0.5] * DIM),
    33: ("sparse", {"indices": [3, 20], "values": [0.5, 99.0]}),
    34: ("sparse", {"indices": [4, 21], "values": [0.5, 1.0]}),
    35: ("bvec", b"\x00\x00"),
    36: ("i8vec", [1] * DIM),
    37: ("$meta", '{"dyn_extra":-1}'),
    38: ("bfvec", [1.0] * DIM),  # set in the snapshot form: decoded float32
    39: ("meta", '{"n":0}'),
    42: ("i8", -5),
    43: ("i16", -7),
    44: ("body", "another body"),
    45: ("$partition", "p1"),
}
CHANGES[23] = ("flag", False)
ULP_KEY, BIG_KEY = 30, 31  # vector element changed by 1 ulp / by a large amount
REORDERED_JSON_KEYS = (40, 41)  # JSON and $meta with key order and 1 vs 1.0 changed: must NOT count
NAN_BOTH_KEY, NULL_BOTH_KEY = 50, 51  # NaN on both sides, null on both sides: equal
MISSING_IN_B = (10, 11, 12, 13, 14)
EXTRA_IN_B = (1000, 1001, 1002)
DUPLICATED_IN_A, DUPLICATED_IN_B = 60, 61


def _with_partition(table: pa.Table) -> pa.Table:
    return table.append_column(PARTITION_COLUMN, pa.array(["_default"] * table.num_rows, pa.string()))


def build_tables() -> tuple[pa.Table, pa.Table, Truth]:
    base = _with_partition(rows_to_table(make_rows(range(N)), SPEC))
    base = _set(base, NAN_BOTH_KEY, "f", float("nan"))
    base = _set(base, NULL_BOTH_KEY, "f", None)
    truth = Truth()
    b = base
    for key, (column, value) in CHANGES.items():
        b = _set(b, key, column, value)
        truth.classes[key], truth.changed_columns[key] = "changed", [column]
    vec = b.column("vec").to_pylist()
    ids = b.column("id").to_pylist()
    v = np.array(vec[ids.index(ULP_KEY)], dtype=np.float32)
    v[3] = np.nextafter(v[3], np.float32(2))
    b = _set(b, ULP_KEY, "vec", v.tolist())
    w = np.array(vec[ids.index(BIG_KEY)], dtype=np.float32)
    w[0] += 10
    b = _set(b, BIG_KEY, "vec", w.tolist())
    for key in (ULP_KEY, BIG_KEY):
        truth.classes[key], truth.changed_columns[key] = "changed", ["vec"]
    b = _set(b, REORDERED_JSON_KEYS[0], "meta", '{"tags": ["x", "y"], "nested": {"b": [1.0, 2], "a": 1.0}, "n": 40}')
    b = _set(b, REORDERED_JSON_KEYS[1], "$meta", '{ "dyn_extra" : 41.0 }')
    b = b.filter(pc.invert(pc.is_in(b.column("id"), pa.array(MISSING_IN_B, pa.int64()))))
    for key in MISSING_IN_B:
        truth.classes[key] = "only_a"
    b = pa.concat_tables([b, _with_partition(rows_to_table(make_rows(list(EXTRA_IN_B), seed=9), SPEC))])
    for key in EXTRA_IN_B:
        truth.classes[key] = "only_b"
    a = pa.concat_tables([base, _row(base, DUPLICATED_IN_A)])
    b = pa.concat_tables([b, _row(b, DUPLICATED_IN_B)])
    truth.classes[DUPLICATED_IN_A], truth.classes[DUPLICATED_IN_B] = "duplicate_a", "duplicate_b"
    truth.rows_a, truth.rows_b = a.num_rows, b.num_rows
    truth.unchanged = N - len(truth.classes) + len(EXTRA_IN_B)
    return a, b, truth


def _row(table: pa.Table, key: int) -> pa.Table:
    return table.filter(pc.equal(table.column("id"), key))


def write_snapshot(table: pa.Table, directory: Path, source: str, parts: int = 2) -> Path:
    """A snapshot directory: manifest.json + part-*.parquet, with the contract's metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {**(table.schema.metadata or {}), b"milvusdiff.source": source.encode()}
    table = table.replace_schema_metadata(meta)
    step = -(-table.num_rows // parts) if table.num_rows else 1
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), directory / f"part-{i:05d}.parquet")
    manifest = {"source": source, "collection": SPEC.name, "rows": table.num_rows, "token": "s3cr3t"}
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def make_pair(tmp: Path) -> tuple[Path, Path, Truth]:
    a, b, truth = build_tables()
    return write_snapshot(a, tmp / "milvus", "milvus"), write_snapshot(b, tmp / "pg", "pg"), truth


def digests_of(table: pa.Table, keys: list[int]) -> dict[int, bytes]:
    rows = table.filter(pc.is_in(table.column("id"), pa.array(keys, pa.int64())))
    digests = row_digests(rows, SPEC).to_pylist()
    return dict(zip(rows.column("id").to_pylist(), digests, strict=True))


def write_journal(path: Path, states: dict[int, tuple[str, bytes | None]]) -> Path:
    """A journal snapshot as export --source journal writes it."""
    keys = sorted(states)
    table = pa.table(
        {
            "id": pa.array(keys, pa.int64()),
            "state": pa.array([states[k][0] for k in keys], pa.string()),
            "last_seq": pa.array(range(1, len(keys) + 1), pa.uint64()),
            "last_op": pa.array(["upsert"] * len(keys), pa.string()),
            "digest": pa.array([states[k][1] for k in keys], pa.binary(16)),
            "flags": pa.array([[] for _ in keys], pa.list_(pa.string())),
        },
        metadata={"milvusdiff.key": '["id"]', "milvusdiff.source": "journal"},
    )
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path / "part-00000.parquet")
    return path


def test_truth_counts_are_consistent() -> None:
    a, b, truth = build_tables()
    assert truth.rows_a == N + 1 and truth.rows_b == N - len(MISSING_IN_B) + len(EXTRA_IN_B) + 1
    ids_a = set(a.column("id").to_pylist())
    ids_b = set(b.column("id").to_pylist())
    assert {k for k, c in truth.classes.items() if c == "only_a"} == ids_a - ids_b
    assert {k for k, c in truth.classes.items() if c == "only_b"} == ids_b - ids_a


def test_truth_reordered_json_really_differs_as_text() -> None:
    a, b, _ = build_tables()
    for key, column in zip(REORDERED_JSON_KEYS, ("meta", "$meta"), strict=True):
        text_a = _row(a, key).column(column)[0].as_py()
        text_b = _row(b, key).column(column)[0].as_py()
        assert text_a != text_b and json.loads(text_a) == json.loads(text_b)
