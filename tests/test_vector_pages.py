"""Vectors decoded straight from Parquet pages (compare/vector_pages.py) are the bits pyarrow reads, for
every writer, codec, page version and encoding; what the decoder does not take, pyarrow reads for it."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from milvusdiff import compare
from milvusdiff.compare.vector_pages import PART_BYTES, VectorPages, VectorRows, _Chunk, _Fallback, readable
from milvusdiff.errors import CompareError
from milvusdiff.parquet_pages import DATA_PAGE, PageHeader

SPECIAL32 = np.array([0x7FC00001, 0xFFC12345, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001, 0x7F7FFFFF], np.uint32)


def _vectors(rows: int, dim: int, dtype: type[np.floating], distinct: int | None = None) -> np.ndarray:
    """Random vectors holding NaNs with payloads, -0.0, infinities and subnormals; with `distinct`, values
    drawn from that many, so that the dictionary encoding holds for the whole column."""
    rng = np.random.default_rng(rows * 31 + dim)
    pool = rng.standard_normal(distinct or rows * dim).astype(dtype)
    matrix = rng.choice(pool, size=(rows, dim)) if distinct else pool.reshape(rows, dim)
    if not rows:
        return matrix
    if dtype is np.float32:
        flat = matrix.reshape(-1).view(np.uint32)
        flat[rng.choice(flat.size, len(SPECIAL32) * 3, replace=False)] = np.tile(SPECIAL32, 3)
    else:
        matrix.reshape(-1)[rng.choice(matrix.size, 4, replace=False)] = [-0.0, np.nan, np.inf, 5e-324]
    return matrix


def _table(matrix: np.ndarray, mask: np.ndarray | None = None) -> pa.Table:
    flat = pa.array(matrix.reshape(-1))
    vectors = pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1], mask=None if mask is None else pa.array(mask))
    return pa.table({"id": np.arange(len(matrix)), "vec": vectors})


def _decode(files: list[Path]) -> tuple[list[np.ndarray | pa.Array], pa.Array]:
    arrow_type = pq.read_schema(files[0]).field("vec").type
    assert readable(files, "vec", arrow_type)
    parts = list(VectorPages(files, "vec", arrow_type, "a"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return parts, VectorRows(iter(parts), arrow_type).take(rows)


def _same_bits(got: pa.Array, files: list[Path]) -> None:
    expected = pa.concat_arrays([c for f in files for c in pq.read_table(f).column("vec").chunks])
    assert got.type == expected.type
    assert got.is_null().to_pylist() == expected.is_null().to_pylist()
    width = {4: np.uint32, 8: np.uint64}[got.type.value_type.bit_width // 8]
    assert np.array_equal(got.values.is_null(), expected.values.is_null())
    valid = ~np.asarray(expected.values.is_null())
    assert np.array_equal(
        got.values.fill_null(0).to_numpy().view(width)[valid],
        expected.values.fill_null(0).to_numpy().view(width)[valid],
    )


@pytest.mark.parametrize(
    ("compression", "page_version", "dictionary", "split"),
    [
        *itertools.product(["zstd", "snappy", "gzip", "brotli", "lz4", "none"], ["1.0", "2.0"], [True], [False]),
        ("zstd", "1.0", False, False),
        ("zstd", "2.0", False, True),
        ("none", "1.0", False, True),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pyarrow_files_decode_here_to_the_same_bits(
    tmp_path: Path, compression: str, page_version: str, dictionary: bool, split: bool, dtype: type[np.floating]
) -> None:
    path = tmp_path / "v.parquet"
    split_options = {"use_dictionary": False, "column_encoding": {"id": "PLAIN", "vec": "BYTE_STREAM_SPLIT"}}
    options = split_options if split else {"use_dictionary": dictionary}
    table = _table(_vectors(3000, 16, dtype))
    pq.write_table(
        table,
        path,
        compression=compression,
        data_page_version=page_version,
        data_page_size=16 << 10,
        row_group_size=1100,
        **options,
    )
    parts, got = _decode([path])
    # gzip, brotli and lz4 do not tell how many bytes a page inflated to: pyarrow reads those
    assert all(isinstance(p, np.ndarray) for p in parts) is (compression in ("zstd", "snappy", "none"))
    assert len(parts) > 3 or compression not in ("zstd", "snappy", "none")
    _same_bits(got, [path])


def test_a_snappy_page_shorter_than_its_header_says_goes_to_pyarrow() -> None:
    """pyarrow's snappy would leave the missing bytes unwritten: the stream's own length must agree."""
    chunk = _Chunk("snappy", 4, np.dtype("<f4"), 3)
    body = memoryview(pa.Codec("snappy").compress(b"\x01" * 64, asbytes=True))
    assert bytes(chunk._inflate(body, 64)) == b"\x01" * 64
    with pytest.raises(_Fallback):
        chunk._inflate(body, 80)


@pytest.mark.parametrize("dim", [1, 3, 100, 128])
@pytest.mark.parametrize("distinct", [None, 40])
def test_any_dimension_and_dictionary_pages(tmp_path: Path, dim: int, distinct: int | None) -> None:
    path = tmp_path / "v.parquet"
    pq.write_table(_table(_vectors(2000, dim, np.float32, distinct)), path, data_page_size=8 << 10, row_group_size=700)
    parts, got = _decode([path])
    assert all(isinstance(p, np.ndarray) for p in parts)
    _same_bits(got, [path])


def test_several_files_and_an_empty_one(tmp_path: Path) -> None:
    files = [tmp_path / f"part-{i}.parquet" for i in range(3)]
    for i, (file, rows) in enumerate(zip(files, (500, 0, 900), strict=True)):
        pq.write_table(_table(_vectors(rows, 8, np.float32) + i), file, row_group_size=400)
    _, got = _decode(files)
    assert len(got) == 1400
    _same_bits(got, files)


def test_nulls_go_to_pyarrow_from_where_they_start(tmp_path: Path) -> None:
    """A null vector late in a row group: the pages before it are decoded here, the rest by pyarrow, and
    the nulls stay where they are; a null element too."""
    path = tmp_path / "v.parquet"
    matrix = _vectors(3000, 16, np.float32)
    mask = np.zeros(3000, dtype=bool)
    mask[[2500, 2999]] = True
    table = _table(matrix, mask)
    with_null_element = pa.FixedSizeListArray.from_arrays(
        pa.array(matrix.reshape(-1), mask=np.arange(matrix.size) == 17), 16
    )
    pq.write_table(table, path, data_page_size=8 << 10, row_group_size=3000)
    parts, got = _decode([path])
    assert isinstance(parts[0], np.ndarray) and isinstance(parts[-1], pa.Array)
    assert got.null_count == 2
    _same_bits(got, [path])

    pq.write_table(pa.table({"vec": with_null_element}), path)
    parts, got = _decode([path])
    assert got.values.null_count == 1
    _same_bits(got, [path])


@pytest.mark.parametrize("compression", ["zstd", "snappy", "gzip", "brotli", "uncompressed", "lz4"])
def test_polars_files(tmp_path: Path, compression: str) -> None:
    """Polars bit-packs the repetition levels in long runs, pyarrow writes two runs a row: both decode here
    (but for the codecs left to pyarrow)."""
    path = tmp_path / "v.parquet"
    matrix = _vectors(20000, 16, np.float32)
    frame = pl.DataFrame(
        {"id": np.arange(len(matrix)), "vec": matrix}, schema={"id": pl.Int64, "vec": pl.Array(pl.Float32, 16)}
    )
    frame.write_parquet(path, compression=compression)  # type: ignore[arg-type]
    parts, got = _decode([path])
    assert all(isinstance(p, np.ndarray) for p in parts) is (compression in ("zstd", "snappy", "uncompressed"))
    _same_bits(got, [path])


def test_rows_taken_across_parts_of_both_kinds(tmp_path: Path) -> None:
    path = tmp_path / "v.parquet"
    mask = np.zeros(2000, dtype=bool)
    mask[1500] = True
    pq.write_table(_table(_vectors(2000, 4, np.float32), mask), path, data_page_size=4 << 10, row_group_size=1000)
    arrow_type = pq.read_schema(path).field("vec").type
    rows = VectorRows(iter(VectorPages([path], "vec", arrow_type, "a")), arrow_type)
    taken = [rows.take(n) for n in (0, 1, 333, 999, 667)]
    assert [len(t) for t in taken] == [0, 1, 333, 999, 667]
    _same_bits(pa.concat_arrays(taken), [path])


def test_what_is_not_a_float_vector_is_left_to_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "v.parquet"
    ints = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(40, dtype=np.int16)), 4)
    lists = pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float32()))
    pq.write_table(pa.table({"ints": ints, "lists": lists.take([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])}), path)
    assert not readable([path], "ints", ints.type)
    assert not readable([path], "lists", lists.type)
    assert not readable([path], "missing", pa.list_(pa.float32(), 4))


def test_compare_of_files_from_different_writers(tmp_path: Path) -> None:
    """End to end, as a user calls it: a pyarrow file against a shuffled Polars file of the same rows
    but for four vectors, one of them only in the sign of a zero and one only in a NaN's payload, and a
    null vector on one side."""
    rows = 5000
    matrix = _vectors(rows, 8, np.float32)
    matrix[matrix != matrix] = 1.0  # no NaN on A but the one placed below
    a_side = matrix.copy()
    b_side = matrix.copy()
    b_side[10, 0] += 1.0
    a_side[20, 3], b_side[20, 3] = 0.0, -0.0
    a_side.view(np.uint32)[30, 1], b_side.view(np.uint32)[30, 1] = 0x7FC00000, 0x7FC00001
    mask = np.zeros(rows, dtype=bool)
    mask[40] = True
    pq.write_table(_table(a_side), tmp_path / "a.parquet", compression="zstd", data_page_size=8 << 10)
    order = np.random.default_rng(3).permutation(rows)
    shuffled = _table(b_side, mask).take(pa.array(order))
    pl.from_arrow(shuffled).write_parquet(tmp_path / "b.parquet")  # type: ignore[union-attr]
    summary = compare(tmp_path / "a.parquet", tmp_path / "b.parquet", key="id").summary
    assert summary.changed == 3  # 10 by value, 20 by the sign of zero, 40 null; every NaN equals every NaN
    assert summary.unchanged == rows - 3


def test_names_that_collide_are_read_exactly(tmp_path: Path) -> None:
    """Case twins and a dotted name sharing a prefix: each column's own values, pyarrow's share included
    (a null sends the rest of the row group to it)."""
    path = tmp_path / "v.parquet"
    columns = {}
    for i, name in enumerate(("vec", "VEC", "vec.x")):
        mask = np.zeros(300, dtype=bool)
        mask[200 + i] = True
        flat = pa.array((_vectors(300, 4, np.float32) + 10 * i).reshape(-1))
        columns[name] = pa.FixedSizeListArray.from_arrays(flat, 4, mask=pa.array(mask))
    pq.write_table(pa.table(columns), path, data_page_size=1 << 10)
    for name, expected in columns.items():
        arrow_type = expected.type
        assert readable([path], name, arrow_type)
        got = VectorRows(iter(VectorPages([path], name, arrow_type, "a")), arrow_type).take(300)
        assert got.is_null().to_pylist() == expected.is_null().to_pylist()
        valid = pa.array(expected.is_valid())
        assert np.array_equal(
            got.filter(valid).flatten().to_numpy(zero_copy_only=False).view(np.uint32),
            expected.filter(valid).flatten().to_numpy(zero_copy_only=False).view(np.uint32),
        )


def test_a_page_claiming_more_bytes_than_its_values_could_take_goes_to_pyarrow() -> None:
    chunk = _Chunk("zstd", 4, np.dtype("<f4"), 3)
    claims = PageHeader(length=20, type=DATA_PAGE, uncompressed_size=2**31 - 1, size=100, crc=None, values=8)
    with pytest.raises(_Fallback):
        chunk.page(claims, memoryview(b"\0" * 100))


def test_a_vector_column_shorter_than_asked_is_an_error_not_a_crash() -> None:
    arrow_type = pa.list_(pa.float32(), 2)
    rows = VectorRows(iter([np.zeros((3, 2), np.float32)]), arrow_type)
    assert len(rows.take(2)) == 2
    with pytest.raises(CompareError, match="ended before the other columns"):
        rows.take(2)


def test_large_pages_come_in_parts_of_bounded_size(tmp_path: Path) -> None:
    """A writer's 8 MB page reaches the reader in slices of about PART_BYTES: what is held ahead is
    bounded in bytes, not in pages."""
    path = tmp_path / "v.parquet"
    pq.write_table(_table(_vectors(4096, 512, np.float32)), path, data_page_size=64 << 20, use_dictionary=False)
    parts, got = _decode([path])
    assert all(isinstance(p, np.ndarray) and p.nbytes <= PART_BYTES for p in parts)
    assert len(parts) >= 8
    _same_bits(got, [path])
