"""Milvus boolean filter expressions: parser, typed syntax tree, and translation to SQL.

`parse` turns filter text into an `ast.Node`; `to_postgres` and `to_duckdb` turn text or a tree
into a parameterised WHERE clause for the PostgreSQL shadow table or a DuckDB query over a
snapshot, with Milvus' NULL and JSON semantics (see translate.py). Anything that cannot be parsed
or translated raises milvusdiff.errors.FilterConversionError with the position and construct.
"""

from milvusdiff.filters.ast import Node
from milvusdiff.filters.parser import parse
from milvusdiff.filters.to_duckdb import to_duckdb
from milvusdiff.filters.to_postgres import to_postgres

__all__ = ["Node", "parse", "to_duckdb", "to_postgres"]
