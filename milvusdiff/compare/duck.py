"""SQL text for DuckDB reads of one side: quoting, and case-exact column references.

DuckDB resolves identifiers case-insensitively, even quoted ones: in a file with columns `val` and
`VAL`, both `"val"` and `"VAL"` name the first. Milvus field names are case-sensitive, so no SQL here
names an input column: every side is read with positional aliases (`c0`, `c1`, ... in file order) and
columns are referred to by their position, looked up by exact name in the Arrow schema.
"""

from __future__ import annotations

from milvusdiff.compare.inputs import Side


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def files(side: Side) -> str:
    return "[" + ", ".join(lit(f) for f in side.file_list) + "]"


def ref(side: Side, name: str) -> str:
    """The positional alias of column `name` (exact, case-sensitive match) in `source(side)`."""
    return q(f"c{side.schema.names.index(name)}")


def aliases(side: Side) -> str:
    return ", ".join(q(f"c{i}") for i in range(len(side.schema.names)))


def source(side: Side) -> str:
    """A FROM item reading every file of the side, its columns renamed to their positional aliases."""
    return f"read_parquet({files(side)}) AS s({aliases(side)})"
