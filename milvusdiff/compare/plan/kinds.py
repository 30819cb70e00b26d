"""How a column is compared, decided from its Arrow type and the `milvusdiff.type` field metadata.

The metadata matters where the Arrow type alone is ambiguous: a JSON field is a plain string column
but must be compared semantically. Foreign files have no metadata and fall back to the Arrow type.
"""

from __future__ import annotations

import pyarrow as pa

from milvusdiff.compare.comparator import Kind, is_list
from milvusdiff.snapshot_format import META_COLUMN, TYPE_META


def milvus_type(field: pa.Field) -> str | None:
    meta = field.metadata or {}
    return meta[TYPE_META].decode() if TYPE_META in meta else None


def is_sparse(arrow_type: pa.DataType) -> bool:
    if not pa.types.is_struct(arrow_type) or arrow_type.num_fields != 2:
        return False
    names = {arrow_type.field(i).name: arrow_type.field(i).type for i in range(2)}
    indices, values = names.get("indices"), names.get("values")
    return (
        indices is not None
        and values is not None
        and is_list(indices)
        and pa.types.is_integer(indices.value_type)
        and is_list(values)
        and pa.types.is_floating(values.value_type)
    )


def is_vector(field: pa.Field) -> bool:
    """Fixed-size numeric lists are vectors; they get deviation metrics, arrays do not."""
    return pa.types.is_fixed_size_list(field.type) and (
        pa.types.is_floating(field.type.value_type) or pa.types.is_integer(field.type.value_type)
    )


def is_json_type(arrow_type: pa.DataType) -> bool:
    """The Parquet JSON logical type, as pyarrow, Spark and others write it (Arrow's `arrow.json`)."""
    return isinstance(arrow_type, pa.BaseExtensionType) and arrow_type.extension_name == "arrow.json"


def plain(arrow_type: pa.DataType) -> pa.DataType:
    """An extension type's storage type (JSON is held as text), any other type as it is."""
    return arrow_type.storage_type if isinstance(arrow_type, pa.BaseExtensionType) else arrow_type


def family(arrow_type: pa.DataType) -> str:
    """Types in one family can be compared with each other; across families they cannot."""
    arrow_type = plain(arrow_type)
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "string"
    if (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
        or pa.types.is_binary_view(arrow_type)
    ):
        return "binary"
    if pa.types.is_timestamp(arrow_type):
        return f"timestamp[{'tz' if arrow_type.tz else 'naive'}]"
    if is_sparse(arrow_type):
        return "sparse"
    if is_list(arrow_type):
        return f"list<{family(arrow_type.value_type)}>"
    return str(arrow_type)


def kind_of(field_a: pa.Field, field_b: pa.Field, as_json: bool = False) -> Kind:
    """The rule for a column pair. JSON: milvusdiff's own metadata, the Parquet JSON type on either side,
    the dynamic field, or `as_json` (the caller said so, for a text column)."""
    types = (plain(field_a.type), plain(field_b.type))
    if (
        as_json
        or "JSON" in (milvus_type(field_a), milvus_type(field_b))
        or field_a.name == META_COLUMN
        or any(is_json_type(f.type) for f in (field_a, field_b))
    ):
        return Kind.JSON
    if all(pa.types.is_integer(t) for t in types):
        return Kind.EXACT
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        return Kind.FLOAT
    if all(is_sparse(t) for t in types):
        return Kind.SPARSE
    if all(is_list(t) for t in types) and any(pa.types.is_floating(t.value_type) for t in types):
        return Kind.FLOAT_LIST
    if all(is_vector(f) for f in (field_a, field_b)):
        return Kind.FLOAT_LIST
    return Kind.EXACT
