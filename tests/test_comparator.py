"""One equality rule per kind of value, the same in every engine and path, and in the row digest.

A table of edge cases (signed zero, NaN with other payloads, null, infinities, subnormals, float16 and
bfloat16 rounding, empty vectors and empty sparse vectors) goes through the comparator itself, the
DuckDB positional path, the DuckDB SQL path and the Polars engine, with and without a tolerance: every
one must report exactly the expected keys. Without a tolerance the digest must agree too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milvusdiff.cli.main import main
from milvusdiff.compare import compare, positional
from milvusdiff.compare.comparator import Kind, differs, floats_equal
from milvusdiff.compare.tolerance import Tolerance
from milvusdiff.errors import ToleranceError
from milvusdiff.types.canonical import canonical_json, canonical_json_text, same_json, same_json_text
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec, FieldSpec

NAN = float("nan")
INF = float("inf")
TOL = {"atol": 1e-2}


def _f64(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def _f32(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


NAN_PAYLOAD_64 = _f64(0x7FF8_0000_0000_0ABC)
NEG_NAN_64 = _f64(0xFFF8_0000_0000_0000)
NAN_PAYLOAD_32 = _f32(0x7FC0_0ABC)
SUBNORMAL = 5e-324
F16_OF_TENTH = float(np.float32(np.float16(0.1)))
BF16_OF_TENTH = float((np.array([0.1], np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)[0])

VECTOR = pa.list_(pa.float32(), 2)
SPARSE = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))])
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("d", pa.float64()),
        ("f", pa.float32()),
        ("v", VECTOR),
        ("arr", pa.list_(pa.float32())),
        ("sp", SPARSE),
    ],
    metadata={"milvusdiff.key": '["id"]'},
)
DEFAULTS: dict[str, Any] = {"d": 1.5, "f": 2.5, "v": [1.0, 2.0], "arr": [1.0], "sp": {"indices": [1], "values": [1.0]}}


def _sparse(values: list[float], indices: list[int] | None = None) -> dict[str, Any]:
    return {"indices": indices if indices is not None else list(range(len(values))), "values": values}


# (column, value in A, value in B, equal without tolerance, equal with atol 1e-2)
CASES: list[tuple[str, Any, Any, bool, bool]] = [
    ("d", 0.0, -0.0, False, True),
    ("d", NAN, NAN, True, True),
    ("d", NAN, NAN_PAYLOAD_64, True, True),
    ("d", NAN, NEG_NAN_64, True, True),
    ("d", None, None, True, True),
    ("d", None, 1.0, False, False),
    ("d", NAN, None, False, False),
    ("d", INF, INF, True, True),
    ("d", -INF, -INF, True, True),
    ("d", INF, -INF, False, False),
    ("d", 0.0, INF, False, False),
    ("d", 1e308, INF, False, False),
    ("d", NAN, INF, False, False),
    ("d", SUBNORMAL, 0.0, False, True),
    ("d", SUBNORMAL, SUBNORMAL, True, True),
    ("d", 1.0, 1.005, False, True),
    ("d", 1.0, 1.5, False, False),
    ("f", 0.1, F16_OF_TENTH, False, True),
    ("f", 0.1, BF16_OF_TENTH, False, True),
    ("f", NAN, NAN_PAYLOAD_32, True, True),
    ("f", -0.0, 0.0, False, True),
    ("f", INF, 0.0, False, False),
    ("v", [0.0, 1.0], [-0.0, 1.0], False, True),
    ("v", [NAN, 1.0], [NAN_PAYLOAD_32, 1.0], True, True),
    ("v", [INF, 0.0], [INF, 0.0], True, True),
    ("v", [0.0, 1.0], [INF, 1.0], False, False),
    ("v", [-INF, 1.0], [INF, 1.0], False, False),
    ("v", [0.1, 0.2], [F16_OF_TENTH, 0.2], False, True),
    ("v", [0.1, 0.2], [BF16_OF_TENTH, 0.2], False, True),
    ("v", [SUBNORMAL, 0.0], [0.0, 0.0], True, True),  # float32 flushes 5e-324 to 0.0: same bits
    ("v", None, None, True, True),
    ("v", None, [1.0, 2.0], False, False),
    ("arr", [], [], True, True),
    ("arr", [], None, False, False),
    ("arr", [1.0], [], False, False),
    ("arr", [0.0], [-0.0], False, True),
    ("arr", [NAN, 1.0], [NAN_PAYLOAD_32, 1.0], True, True),
    ("arr", [1.0, None], [1.0, None], True, True),
    ("arr", [1.0, None], [1.0, NAN], False, False),
    ("arr", [2.0, INF], [2.0, 1e30], False, False),
    ("sp", _sparse([]), _sparse([]), True, True),
    ("sp", _sparse([]), None, False, False),
    ("sp", _sparse([]), _sparse([0.0]), False, False),
    ("sp", _sparse([0.0]), _sparse([-0.0]), False, True),
    ("sp", _sparse([NAN]), _sparse([NAN_PAYLOAD_32]), True, True),
    ("sp", _sparse([1.0], [1]), _sparse([1.0], [2]), False, False),
    ("sp", _sparse([1.0]), _sparse([1.004]), False, True),
]


def _expected(tolerant: bool) -> list[int]:
    return [i for i, case in enumerate(CASES) if not case[4 if tolerant else 3]]


def _tables() -> tuple[pa.Table, pa.Table]:
    rows_a, rows_b = [], []
    for i, (column, value_a, value_b, _, _) in enumerate(CASES):
        rows_a.append({"id": i, **DEFAULTS, column: value_a})
        rows_b.append({"id": i, **DEFAULTS, column: value_b})
    return pa.Table.from_pylist(rows_a, schema=SCHEMA), pa.Table.from_pylist(rows_b, schema=SCHEMA)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The cases in key order on both sides, and both reversed (no positional path possible)."""
    tmp = tmp_path_factory.mktemp("edge")
    table_a, table_b = _tables()
    paths = {name: tmp / f"{name}.parquet" for name in ("a", "b", "a_reversed", "b_reversed")}
    backwards = pa.array(range(len(CASES) - 1, -1, -1))
    pq.write_table(table_a, paths["a"])
    pq.write_table(table_b, paths["b"])
    pq.write_table(table_a.take(backwards), paths["a_reversed"])
    pq.write_table(table_b.take(backwards), paths["b_reversed"])
    return paths


def _differing(a: Path, b: Path, out: Path, **options: Any) -> list[int]:
    compare(a, b, out=out, **options)
    table = pq.read_table(out / "diff.parquet")
    return sorted(table.column("id").to_pylist())


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    used: list[int] = []
    original = positional.stream

    def spying(*args: Any) -> Any:
        used.append(1)
        return original(*args)

    monkeypatch.setattr(positional, "stream", spying)
    return used


@pytest.mark.parametrize("tolerant", [False, True], ids=["exact", "atol"])
def test_comparator_alone_decides_the_table(tolerant: bool) -> None:
    table_a, table_b = _tables()
    tolerance = Tolerance(**TOL) if tolerant else Tolerance()
    kinds = {"d": Kind.FLOAT, "f": Kind.FLOAT, "v": Kind.FLOAT_LIST, "arr": Kind.FLOAT_LIST, "sp": Kind.SPARSE}
    found = np.zeros(len(CASES), dtype=bool)
    for name, kind in kinds.items():
        found |= differs(kind, table_a.column(name).combine_chunks(), table_b.column(name).combine_chunks(), tolerance)
    assert np.flatnonzero(found).tolist() == _expected(tolerant)


@pytest.mark.parametrize("tolerant", [False, True], ids=["exact", "atol"])
def test_every_engine_and_path_reports_the_same_keys(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tolerant: bool
) -> None:
    options = TOL if tolerant else {}
    expected = _expected(tolerant)
    used = _spy(monkeypatch)
    # Positional path: sorted inputs, only the columns it handles (flat floats and fixed-size vectors).
    flat = ["d", "f", "v"]
    positional_found = _differing(files["a"], files["b"], tmp_path / "pos", columns=flat, **options)
    assert used, "the sorted inputs should have taken the positional path"
    assert positional_found == [i for i in expected if CASES[i][0] in flat]
    used.clear()
    # Positional path with B replayed in key order.
    assert _differing(files["a"], files["b_reversed"], tmp_path / "pos2", columns=flat, **options) == [
        i for i in expected if CASES[i][0] in flat
    ]
    assert used
    used.clear()
    # SQL path: both sides out of order, every column.
    assert _differing(files["a_reversed"], files["b_reversed"], tmp_path / "sql", **options) == expected
    assert not used
    assert _differing(files["a"], files["b_reversed"], tmp_path / "polars", engine="polars", **options) == expected
    assert _differing(files["a"], files["b"], tmp_path / "polars2", engine="polars", **options) == expected


def test_digest_agrees_with_exact_compare() -> None:
    """Equal rows (by the rule without tolerance) have equal digests, and differing rows different ones."""
    spec = CollectionSpec(
        name="edge",
        fields=(
            FieldSpec("id", "INT64", is_primary=True),
            FieldSpec("d", "DOUBLE", nullable=True),
            FieldSpec("f", "FLOAT", nullable=True),
            FieldSpec("v", "FLOAT_VECTOR", dim=2, nullable=True),
            FieldSpec("arr", "ARRAY", element_type="FLOAT", max_capacity=4, nullable=True),
            FieldSpec("sp", "SPARSE_FLOAT_VECTOR", nullable=True),
        ),
    )
    table_a, table_b = _tables()
    digests_a, digests_b = row_digests(table_a, spec), row_digests(table_b, spec)
    same = [x == y for x, y in zip(digests_a.to_pylist(), digests_b.to_pylist(), strict=True)]
    # Element nulls inside an ARRAY have no place in the digest's canonical bytes (Milvus arrays hold none).
    checked = [i for i, case in enumerate(CASES) if not (case[0] == "arr" and None in (case[1] or []))]
    assert [i for i in checked if not same[i]] == [i for i in checked if i in _expected(False)]


def test_floats_equal_is_the_formula_with_infinities_apart() -> None:
    x = np.array([1.0, 0.0, INF, -INF, INF, NAN])
    y = np.array([1.1, INF, INF, -INF, -INF, NAN])
    assert floats_equal(x, y, Tolerance(0.2)).tolist() == [True, False, True, True, False, True]
    assert floats_equal(x, y, Tolerance(0.0, 1e6)).tolist() == [True, False, True, True, False, True]


@pytest.mark.parametrize("bad", [NAN, -1.0, INF, "x"])
@pytest.mark.parametrize("name", ["atol", "rtol"])
def test_bad_tolerances_are_refused_by_name(bad: Any, name: str) -> None:
    with pytest.raises(ToleranceError, match=name) as raised:
        Tolerance(**{name: bad})
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("flag", [["--atol", "nan"], ["--rtol", "-1e-6"], ["--atol", "inf"], ["--tol", "d=nan"]])
def test_bad_tolerances_exit_2_with_one_line(
    files: dict[str, Path], flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["compare", str(files["a"]), str(files["b"]), *flag])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "must be a finite number >= 0" in err


def test_tolerance_does_not_hide_an_infinity(files: dict[str, Path], tmp_path: Path) -> None:
    """Issue 16: with --rtol 1e-6, 0.0 against +inf counted as equal."""
    table = pa.table({"id": [1, 2], "x": [0.0, 1.0]}, schema=pa.schema([("id", pa.int64()), ("x", pa.float64())]))
    pq.write_table(table, tmp_path / "a.parquet")
    pq.write_table(table.set_column(1, "x", pa.array([INF, 1.0])), tmp_path / "b.parquet")
    for engine in ("duckdb", "polars"):
        found = _differing(tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / engine, key="id", rtol=1e-6)
        assert found == [1], engine
    assert math.isinf(pq.read_table(tmp_path / "duckdb" / "diff.parquet").column("x__b")[0].as_py())


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -0.0, 0.0, 1.0, True, False, 10**16, 1e16]),
    st.text(max_size=4),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None)
@given(_JSON, _JSON)
def test_json_equality_is_canonical_text_equality(x: Any, y: Any) -> None:
    """The comparator's JSON rule decides as the digest's canonical text does, for generated documents
    (numbers of every spelling, NaN, infinities, booleans against 0 and 1, nesting)."""
    assert same_json(x, y) == (canonical_json(x) == canonical_json(y))
    assert same_json(x, x)


def _spelled(value: Any, reverse: bool) -> Any:
    """The same JSON value spelled otherwise: keys in another order, integral floats as ints."""
    if isinstance(value, dict):
        items = [(k, _spelled(v, reverse)) for k, v in value.items()]
        return dict(reversed(items) if reverse else items)
    if isinstance(value, list):
        return [_spelled(v, reverse) for v in value]
    if isinstance(value, float) and value.is_integer() and reverse:
        return int(value)
    return value


@settings(max_examples=600, deadline=None)
@given(_JSON, _JSON, st.booleans())
def test_json_text_equality_is_canonical_text_equality(x: Any, y: Any, respell: bool) -> None:
    """The fast path (Python's == on parsed values, then same_json where booleans or NaN are in the text)
    decides as canonical text does, for pairs that differ and for the same value spelled otherwise."""
    import json

    text_x = json.dumps(x)
    for other in (json.dumps(y), json.dumps(_spelled(x, respell)), "not json"):
        try:
            expected = canonical_json_text(text_x) == canonical_json_text(other)
        except ValueError:
            expected = text_x == other
        assert same_json_text(text_x, other) == expected


@pytest.mark.parametrize(
    ("x", "y", "same"),
    [
        ("[true]", "[1]", False),  # Python's == calls these equal
        ('{"a":false,"b":2}', '{"b":2.0,"a":0}', False),
        ('{"a":true,"b":2}', '{"b":2.0,"a":true}', True),
        ('{"a":NaN,"b":1}', '{"b":1,"a":NaN}', True),
        ("NaN", " NaN", True),  # Python's == calls these different
        ("[NaN, 1.5]", "[NaN, 1.25]", False),
        ("[-0.0, 1e16]", "[0, 10000000000000000]", True),
        ('"true"', '"false"', False),
    ],
)
def test_json_text_equality_where_python_equality_is_wrong(x: str, y: str, same: bool) -> None:
    assert same_json_text(x, y) is same
    assert (canonical_json_text(x) == canonical_json_text(y)) is same


def test_json_rows_compare_by_value_not_spelling() -> None:
    a = pa.array(['{"a":1,"b":[1.0,true]}', '{"a":1}', "not json", "not json", '{"x":-0.0}', '{"n":NaN}'])
    b = pa.array(['{"b":[1,true],"a":1.0}', '{"a":true}', "not json", "not json!", '{"x":0}', '{"n":NaN}'])
    assert differs(Kind.JSON, a, b).tolist() == [False, True, False, True, False, False]
