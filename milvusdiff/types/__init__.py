"""The one type map and what derives from it: collection specs, row conversion, digests."""

from milvusdiff.types.convert import rows_to_table, snapshot_schema
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec, FieldSpec

__all__ = ["CollectionSpec", "FieldSpec", "row_digests", "rows_to_table", "snapshot_schema"]
