"""Parquet page headers read straight from the file bytes (Thrift's compact protocol).

Two readers need the pages themselves, which neither DuckDB nor pyarrow exposes: the checksum check
(snapshot_verify.py) and the direct vector decoder (compare/vector_pages.py). Only the fields they use
are read; everything else in a header is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# PageHeader.type
DATA_PAGE = 0
DICTIONARY_PAGE = 2
DATA_PAGE_V2 = 3

# Encoding
PLAIN = 0
PLAIN_DICTIONARY = 2
RLE = 3
RLE_DICTIONARY = 8
BYTE_STREAM_SPLIT = 9

_I32 = 5
_STRUCT = 12


class Compact:
    """Just enough of Thrift's compact protocol to read a Parquet PageHeader and skip what it does not need."""

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, kind: int) -> None:
        if kind in (1, 2):  # bool in a field header
            return
        if kind == 3:
            self.pos += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            length = self.varint()  # not `self.pos += self.varint()`: that reads pos before the varint moves it
            self.pos += length
        elif kind in (9, 10):
            header = self.byte()
            size, elem = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            for _ in range(size):
                if elem in (1, 2):
                    self.pos += 1  # a bool element is a byte of its own
                else:
                    self.skip(elem)
        elif kind == 11:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4)
                    self.skip(types & 0x0F)
        elif kind == _STRUCT:
            self.struct(lambda *_: False)
        else:
            raise ValueError(f"unknown thrift type {kind}")

    def struct(self, want: Callable[[int, int], bool]) -> None:
        """Walk a struct; `want(field_id, type)` reads a field itself (returns True) or lets it be skipped."""
        last = 0
        while True:
            header = self.byte()
            if header == 0:
                return
            delta, kind = header >> 4, header & 0x0F
            field_id = last + delta if delta else self.zigzag()
            last = field_id
            if not want(field_id, kind):
                self.skip(kind)

    def fields(self, wanted: dict[int, str]) -> dict[str, int | bool]:
        """The i32 and bool fields of a struct named in `wanted` (field id -> name); the rest skipped."""
        found: dict[str, int | bool] = {}

        def want(field_id: int, kind: int) -> bool:
            if field_id not in wanted:
                return False
            if kind == _I32:
                found[wanted[field_id]] = self.zigzag()
            elif kind in (1, 2):
                found[wanted[field_id]] = kind == 1
            else:
                return False
            return True

        self.struct(want)
        return found


@dataclass(frozen=True)
class PageHeader:
    """The fields of a page header the readers use. `values`, `encoding`: from the data or dictionary page
    header (v1: levels included in the compressed bytes; v2: `rep_bytes` + `def_bytes` of levels first,
    uncompressed, then the values, compressed when `compressed`)."""

    length: int  # of the header itself
    type: int
    uncompressed_size: int
    size: int  # compressed_page_size: the page's bytes after the header
    crc: int | None
    values: int = 0
    encoding: int = -1
    def_encoding: int = RLE
    rep_encoding: int = RLE
    nulls: int = 0
    def_bytes: int = 0
    rep_bytes: int = 0
    compressed: bool = True


_V1 = {1: "values", 2: "encoding", 3: "def_encoding", 4: "rep_encoding"}
_DICTIONARY = {1: "values", 2: "encoding"}
_V2 = {1: "values", 2: "nulls", 4: "encoding", 5: "def_bytes", 6: "rep_bytes", 7: "compressed"}
_SUBHEADERS = {5: _V1, 7: _DICTIONARY, 8: _V2}


def read_page_header(data: bytes | memoryview, offset: int) -> PageHeader:
    """The page header at `offset`. ValueError when the bytes end inside it or it lacks a required field."""
    reader = Compact(data, offset)
    top: dict[str, int | None] = {}
    sub: dict[str, int | bool] = {}

    def want(field_id: int, kind: int) -> bool:
        if field_id in (1, 2, 3, 4) and kind == _I32:
            top[("type", "uncompressed_size", "size", "crc")[field_id - 1]] = reader.zigzag()
            return True
        if field_id in _SUBHEADERS and kind == _STRUCT:
            sub.update(reader.fields(_SUBHEADERS[field_id]))
            return True
        return False

    try:
        reader.struct(want)
    except IndexError:
        raise ValueError("the file ends inside a page header") from None
    if "size" not in top:
        raise ValueError("a page header without its size")
    return PageHeader(
        length=reader.pos - offset,
        type=top.get("type") or 0,
        uncompressed_size=top.get("uncompressed_size") or 0,
        size=top["size"] or 0,
        crc=top.get("crc"),
        values=int(sub.get("values", 0)),
        encoding=int(sub.get("encoding", -1)),
        def_encoding=int(sub.get("def_encoding", RLE)),
        rep_encoding=int(sub.get("rep_encoding", RLE)),
        nulls=int(sub.get("nulls", 0)),
        def_bytes=int(sub.get("def_bytes", 0)),
        rep_bytes=int(sub.get("rep_bytes", 0)),
        compressed=bool(sub.get("compressed", True)),
    )


def leaf_count(arrow_type: pa.DataType) -> int:
    """How many Parquet leaf columns an Arrow type is stored as."""
    import pyarrow as pa  # here: the checksum check runs before anything else needs pyarrow

    if pa.types.is_struct(arrow_type):
        return sum(leaf_count(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
    if pa.types.is_map(arrow_type):
        return leaf_count(arrow_type.key_type) + leaf_count(arrow_type.item_type)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return leaf_count(arrow_type.value_type)
    return 1
