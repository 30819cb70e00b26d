"""A plain, JSON-serialisable description of a Milvus collection.

pymilvus hands out schemas in two shapes (a CollectionSchema object before creation, a dict from
describe_collection after), with protobuf values for defaults. Everything downstream (shadow
tables, snapshots, manifests, digests) works from this one shape instead, so it can be stored in
Parquet metadata and read back by a process that never talked to Milvus.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from milvusdiff.errors import SchemaError
from milvusdiff.snapshot_format import META_COLUMN

DEFAULT_PARTITION = "_default"
DEFAULT_DATABASE = "default"


def shadow_name(database: str | None, collection: str) -> str:
    """The name a collection's shadow goes by in PostgreSQL (table, registry entry) and in the journal (key
    prefix, spec): `database.collection` for a collection of another database than the one the Milvus URI
    names (`database` None), whose collections keep their bare names, as every shadow made before databases
    were mirrored. Milvus names hold only letters, digits and underscores, so the '.' is unambiguous."""
    return f"{database}.{collection}" if database else collection


def split_shadow_name(name: str) -> tuple[str | None, str]:
    """(database, collection) of a shadow name: the inverse of shadow_name."""
    database, _, collection = name.rpartition(".")
    return database or None, collection


def in_database(names: list[str], database: str | None) -> list[str]:
    """The bare collection names, among shadow names, that belong to `database` (None: the URI's)."""
    if not database:
        return [n for n in names if "." not in n]
    prefix = shadow_name(database, "")
    return [n[len(prefix) :] for n in names if n.startswith(prefix)]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # Milvus DataType name, e.g. "FLOAT_VECTOR"
    is_primary: bool = False
    nullable: bool = False
    default_value: Any = None
    dim: int | None = None
    max_length: int | None = None
    element_type: str | None = None
    max_capacity: int | None = None
    is_partition_key: bool = False

    @property
    def has_default(self) -> bool:
        return self.default_value is not None


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    auto_id: bool = False
    enable_dynamic_field: bool = False
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def primary(self) -> FieldSpec:
        for f in self.fields:
            if f.is_primary:
                return f
        raise SchemaError(f"collection {self.name!r} has no primary key field")

    @property
    def has_partition_key(self) -> bool:
        return any(f.is_partition_key for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"collection {self.name!r} has no field {name!r}")

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def with_name(self, name: str) -> CollectionSpec:
        return replace(self, name=name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "auto_id": self.auto_id,
            "enable_dynamic_field": self.enable_dynamic_field,
            "fields": [{k: v for k, v in asdict(f).items() if v not in (None, False)} for f in self.fields],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionSpec:
        fields = tuple(FieldSpec(**f) for f in data["fields"])
        return cls(
            name=data["name"],
            fields=fields,
            auto_id=bool(data.get("auto_id", False)),
            enable_dynamic_field=bool(data.get("enable_dynamic_field", False)),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CollectionSpec:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_milvus(cls, name: str, schema: Any) -> CollectionSpec:
        """Build from a pymilvus CollectionSchema or a describe_collection() dict."""
        if hasattr(schema, "to_dict"):
            schema = schema.to_dict()
        _refuse_unmirrorable(schema)
        fields = tuple(_field_from_milvus(f) for f in schema["fields"])
        auto_id = bool(schema.get("auto_id")) or any(f.get("auto_id") for f in schema["fields"] if f.get("is_primary"))
        return cls(
            name=name,
            fields=fields,
            auto_id=auto_id,
            enable_dynamic_field=bool(schema.get("enable_dynamic_field", False)),
        )


def _refuse_unmirrorable(schema: dict[str, Any]) -> None:
    """Fields that are not in schema["fields"] (ARRAY of STRUCT) or whose values Milvus computes itself
    (function outputs such as BM25) cannot be mirrored; refuse them rather than silently leave them out."""
    for struct in [*(schema.get("struct_fields") or []), *(schema.get("struct_array_fields") or [])]:
        name = struct.get("name") if isinstance(struct, dict) else getattr(struct, "name", struct)
        raise SchemaError(f"field {name!r}: Milvus type ARRAY of STRUCT is not supported by milvusdiff")
    for f in schema["fields"]:
        if f.get("is_function_output"):
            raise SchemaError(
                f"field {f['name']!r} ({_type_name(f['type'])}) is computed by a Milvus function; "
                "milvusdiff mirrors only values the client writes"
            )


def _type_name(value: Any) -> str:
    from pymilvus import DataType  # only schemas read from Milvus come here, with pymilvus loaded already

    if isinstance(value, DataType):
        return value.name
    if isinstance(value, int):
        return DataType(value).name
    return str(value).upper()


def _default_from_milvus(value: Any) -> Any:
    """describe_collection returns defaults as a protobuf ValueField; unwrap it to a Python value."""
    if value is None:
        return None
    which = getattr(value, "WhichOneof", None)
    if which is None:
        return value
    kind = which("data")
    return None if kind is None else getattr(value, kind)


def _field_from_milvus(f: dict[str, Any]) -> FieldSpec:
    from pymilvus import DataType

    params = f.get("params") or {}
    dim = params.get("dim")
    max_length = params.get("max_length")
    max_capacity = params.get("max_capacity")
    element_type = f.get("element_type")
    return FieldSpec(
        name=f["name"],
        type=_type_name(f["type"]),
        is_primary=bool(f.get("is_primary", False)),
        nullable=bool(f.get("nullable", False)),
        default_value=_default_from_milvus(f.get("default_value")),
        dim=int(dim) if dim is not None else None,
        max_length=int(max_length) if max_length is not None else None,
        element_type=_type_name(element_type) if element_type not in (None, 0, DataType.NONE) else None,
        max_capacity=int(max_capacity) if max_capacity is not None else None,
        is_partition_key=bool(f.get("is_partition_key", False)),
    )


# The dynamic field, held like a nullable JSON field in every store.
META_FIELD = FieldSpec(name=META_COLUMN, type="JSON", nullable=True)
