"""Schema presets: a collection described once, in the JSON form a user can write too.

A preset file holds what pymilvus needs to create a collection (fields, collection options, one index
per vector field, partitions) plus optional generation hints (value ranges, choices, null rates) that
make generated rows look like the data the collection is for. The built-in presets are plain files in
`presets/`; any file of the same form is accepted wherever a preset name is, so a user can describe
their own schema and drive the same workload, corruption drills and validation against it.

Everything in a file is checked here, before any store is touched, and a bad file is one SchemaError
line that names the file and the field: a workload should never half-create a collection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from pymilvus import CollectionSchema, DataType, MilvusClient
from pymilvus.milvus_client import IndexParams

from milvusdiff.errors import ConfigError, SchemaError
from milvusdiff.types.spec import CollectionSpec, FieldSpec
from milvusdiff.types.typemap import VECTOR_TYPES, validate_field

_TOP_KEYS = frozenset(
    {"name", "description", "auto_id", "enable_dynamic_field", "generate", "fields", "dynamic_fields", "partitions"}
)
_SPEC_KEYS = frozenset(
    {"name", "type", "is_primary", "nullable", "default_value", "dim", "max_length", "element_type", "max_capacity"}
    | {"is_partition_key"}
)
_FIELD_KEYS = _SPEC_KEYS | {"index", "generate"}
_INDEX_KEYS = frozenset({"index_type", "metric_type", "params"})
_HINT_KEYS = frozenset(
    {"null_rate", "default_rate", "presence", "min", "max", "decimals", "choices", "words", "prefix", "nnz"}
    | {"sparse_dim"}
)
_DEFAULT_INDEXES: dict[str, dict[str, Any]] = {
    "SPARSE_FLOAT_VECTOR": {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"},
    "BINARY_VECTOR": {"index_type": "BIN_FLAT", "metric_type": "HAMMING"},
}
_DENSE_INDEX = {"index_type": "AUTOINDEX", "metric_type": "COSINE"}
INT_RANGES = {"INT8": (-(2**7), 2**7 - 1), "INT16": (-(2**15), 2**15 - 1), "INT32": (-(2**31), 2**31 - 1)}
INT_RANGES["INT64"] = (-(2**63), 2**63 - 1)
_DEFAULTABLE = frozenset({"BOOL", "FLOAT", "DOUBLE", "VARCHAR", *INT_RANGES})
_MAX_VARCHAR = 65535
_MAX_CAPACITY = 4096


@dataclass(frozen=True)
class Hints:
    """How to generate one field's values; every member is optional and has a sensible default."""

    null_rate: float | None = None
    default_rate: float | None = None
    presence: float = 0.7  # dynamic fields only: the share of rows that carry the key
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    choices: tuple[Any, ...] | None = None
    words: tuple[int, int] | None = None
    prefix: str = ""
    nnz: tuple[int, int] = (1, 32)
    sparse_dim: int = 30000


@dataclass(frozen=True)
class Preset:
    """A collection description plus what the workload needs beyond pymilvus: indexes, partitions, hints."""

    spec: CollectionSpec
    description: str = ""
    indexes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    partitions: tuple[str, ...] = ()
    hints: Mapping[str, Hints] = field(default_factory=dict)
    dynamic_fields: tuple[FieldSpec, ...] = ()
    null_rate: float = 0.1
    default_rate: float = 0.2
    source: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def hint(self, name: str) -> Hints:
        return self.hints.get(name) or Hints()

    def schema(self) -> CollectionSchema:
        """The pymilvus CollectionSchema this preset describes."""
        schema = MilvusClient.create_schema(
            auto_id=self.spec.auto_id, enable_dynamic_field=self.spec.enable_dynamic_field
        )
        for f in self.spec.fields:
            schema.add_field(f.name, DataType[f.type], **_field_kwargs(f, self.spec.auto_id))
        return schema

    def index_params(self) -> IndexParams:
        """One index per vector field (declared, or a default for its type), plus declared scalar indexes."""
        params = IndexParams()
        for f in self.spec.fields:
            index = self.indexes.get(f.name)
            if index is None and f.type in VECTOR_TYPES:
                index = _DEFAULT_INDEXES.get(f.type, _DENSE_INDEX)
            if index is not None:
                params.add_index(
                    f.name,
                    index_type=index.get("index_type", ""),
                    metric_type=index.get("metric_type", ""),
                    params=dict(index.get("params", {})),
                )
        return params


class LoadedSchema(NamedTuple):
    preset: Preset
    schema: CollectionSchema
    index_params: IndexParams


def load_schema(name_or_path: str | Path) -> LoadedSchema:
    """A built-in preset by name, or a preset file by path: the preset, its pymilvus schema and indexes."""
    preset = load_preset(name_or_path)
    return LoadedSchema(preset, preset.schema(), preset.index_params())


def load_preset(name_or_path: str | Path) -> Preset:
    text, origin = _read_source(name_or_path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{origin}: not valid JSON: {exc}") from exc
    try:
        return parse_preset(data)
    except SchemaError as exc:
        raise SchemaError(f"{origin}: {exc}") from exc


def preset_names() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in _preset_dir().iterdir() if p.name.endswith(".json"))


def preset_text(name_or_path: str | Path) -> str:
    """The preset as indented JSON, in the form a user can copy, edit and pass back as a file."""
    return json.dumps(dict(load_preset(name_or_path).source), indent=2, ensure_ascii=False)


def create_from_preset(client: MilvusClient, preset: Preset, collection: str, *, drop_existing: bool = False) -> None:
    """Create `collection` from the preset (indexes, partitions), and load it.

    An existing collection is replaced only when asked: a workload's keys would collide with the rows
    already there, and silently dropping someone's data is worse than refusing.
    """
    if client.has_collection(collection):
        if not drop_existing:
            raise ConfigError(f"collection {collection!r} already exists; pass `drop_existing` to replace it")
        client.drop_collection(collection)
    client.create_collection(collection, schema=preset.schema(), index_params=preset.index_params())
    for partition in preset.partitions:
        client.create_partition(collection, partition)
    client.load_collection(collection)


# -- reading and checking ----------------------------------------------------------------------


def _preset_dir() -> Any:
    return resources.files("milvusdiff.workload").joinpath("presets")


def _read_source(name_or_path: str | Path) -> tuple[str, str]:
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".json") or path.is_file() or "/" in text:
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"cannot read schema file {path}: {exc}") from exc
    if text not in preset_names():
        raise SchemaError(f"no preset named {text!r} (presets: {', '.join(preset_names())}; or give a .json file)")
    return _preset_dir().joinpath(f"{text}.json").read_text(encoding="utf-8"), f"preset {text}"


def parse_preset(data: Any) -> Preset:
    """Check a preset document and build it; every complaint is one SchemaError line."""
    if not isinstance(data, dict):
        raise SchemaError("a preset is a JSON object with 'name' and 'fields'")
    _no_unknown(data, _TOP_KEYS, "preset")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError("'name' must be a non-empty string")
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise SchemaError("'fields' must be a non-empty list")
    auto_id = _flag(data, "auto_id", "preset")
    fields = tuple(_parse_field(f, auto_id) for f in raw_fields)
    spec = CollectionSpec(
        name=name, fields=fields, auto_id=auto_id, enable_dynamic_field=_flag(data, "enable_dynamic_field", "preset")
    )
    _check_collection(spec)
    raw_dynamic = _list(data, "dynamic_fields")
    dynamic = tuple(_parse_field(f, False) for f in raw_dynamic)
    _check_dynamic(spec, dynamic)
    defaults = _parse_hints(data.get("generate", {}), "generate")
    partitions = _parse_partitions(_list(data, "partitions"), spec)
    hints = {f["name"]: _parse_hints(f.get("generate", {}), f"field {f['name']!r}") for f in raw_fields + raw_dynamic}
    for f in (*fields, *dynamic):
        _check_hints(f, hints[f.name])
    return Preset(
        spec=spec,
        description=str(data.get("description", "")),
        indexes={f["name"]: _parse_index(f) for f in raw_fields if "index" in f},
        partitions=partitions,
        hints=hints,
        dynamic_fields=dynamic,
        null_rate=0.1 if defaults.null_rate is None else defaults.null_rate,
        default_rate=0.2 if defaults.default_rate is None else defaults.default_rate,
        source=data,
    )


def _no_unknown(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SchemaError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: {key!r} must be true or false")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise SchemaError(f"{key!r} must be a list")
    return value


def _parse_field(raw: Any, auto_id: bool) -> FieldSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise SchemaError(f"every field needs a string 'name', got {raw!r}")
    where = f"field {raw['name']!r}"
    _no_unknown(raw, _FIELD_KEYS, where)
    type_name = raw.get("type")
    if not isinstance(type_name, str) or type_name.upper() not in DataType.__members__:
        raise SchemaError(f"{where}: unknown type {type_name!r}")
    for key in ("is_primary", "nullable", "is_partition_key"):
        _flag(raw, key, where)
    for key in ("dim", "max_length", "max_capacity"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] <= 0):
            raise SchemaError(f"{where}: {key!r} must be a positive integer")
    values = {k: v for k, v in raw.items() if k in _SPEC_KEYS}
    values["type"] = type_name.upper()
    if values.get("element_type") is not None:
        values["element_type"] = str(values["element_type"]).upper()
    spec = FieldSpec(**values)
    _check_field(spec, where)
    return spec


def _check_field(f: FieldSpec, where: str) -> None:
    if f.type == "VARCHAR" and not f.max_length:
        raise SchemaError(f"{where}: VARCHAR needs 'max_length'")
    if (f.max_length or 0) > _MAX_VARCHAR:
        raise SchemaError(f"{where}: 'max_length' {f.max_length} is above Milvus's {_MAX_VARCHAR}")
    if f.type == "ARRAY":
        if not f.element_type or not f.max_capacity:
            raise SchemaError(f"{where}: ARRAY needs 'element_type' and 'max_capacity'")
        if f.max_capacity > _MAX_CAPACITY:
            raise SchemaError(f"{where}: 'max_capacity' {f.max_capacity} is above Milvus's {_MAX_CAPACITY}")
        if f.element_type == "VARCHAR" and not f.max_length:
            raise SchemaError(f"{where}: ARRAY of VARCHAR needs 'max_length'")
    validate_field(f)  # its messages name the field already
    if f.default_value is not None:
        _check_default(f, where)


def _check_default(f: FieldSpec, where: str) -> None:
    if f.type not in _DEFAULTABLE:
        raise SchemaError(f"{where}: 'default_value' is supported on BOOL, integer, FLOAT, DOUBLE and VARCHAR fields")
    if not _fits(f, f.default_value):
        raise SchemaError(f"{where}: 'default_value' {f.default_value!r} does not fit a {f.type} field")
    if f.is_primary:
        raise SchemaError(f"{where}: a primary key cannot have a default value")


def _fits(f: FieldSpec, value: Any) -> bool:
    """Whether a literal from the file is a valid value of a scalar field (defaults and choices)."""
    if f.type == "BOOL":
        return isinstance(value, bool)
    if f.type in INT_RANGES:
        low, high = INT_RANGES[f.type]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if f.type == "VARCHAR":
        return isinstance(value, str) and len(value.encode("utf-8")) <= (f.max_length or 0)
    if f.type in ("FLOAT", "DOUBLE"):
        return _is_number(value)
    return False


def _check_collection(spec: CollectionSpec) -> None:
    names = spec.field_names()
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SchemaError(f"field {duplicated[0]!r} is declared twice")
    primaries = [f for f in spec.fields if f.is_primary]
    if len(primaries) != 1:
        raise SchemaError(f"exactly one field must have 'is_primary': true, found {len(primaries)}")
    if spec.auto_id and primaries[0].type != "INT64":
        raise SchemaError("'auto_id' needs an INT64 primary key")
    if primaries[0].nullable or primaries[0].is_partition_key:
        raise SchemaError(f"field {primaries[0].name!r}: a primary key cannot be nullable or a partition key")
    if not any(f.type in VECTOR_TYPES for f in spec.fields):
        raise SchemaError("a collection needs at least one vector field")


def _check_dynamic(spec: CollectionSpec, dynamic: tuple[FieldSpec, ...]) -> None:
    if dynamic and not spec.enable_dynamic_field:
        raise SchemaError("'dynamic_fields' need 'enable_dynamic_field': true")
    for f in dynamic:
        if f.name in spec.field_names() or f.name.startswith("$"):
            raise SchemaError(f"dynamic field {f.name!r} clashes with a schema field or a reserved name")
        if f.type in VECTOR_TYPES or f.is_primary or f.nullable or f.default_value is not None:
            raise SchemaError(f"dynamic field {f.name!r}: only plain scalar, JSON or ARRAY values are generated")


def _parse_partitions(raw: list[Any], spec: CollectionSpec) -> tuple[str, ...]:
    if not all(isinstance(p, str) and p for p in raw) or len(set(raw)) != len(raw):
        raise SchemaError("'partitions' must be a list of distinct, non-empty names")
    if raw and spec.has_partition_key:
        raise SchemaError("'partitions' cannot be created in a collection with a partition key field")
    return tuple(raw)


def _parse_index(raw: Mapping[str, Any]) -> dict[str, Any]:
    index = raw["index"]
    where = f"field {raw['name']!r}: index"
    if not isinstance(index, dict):
        raise SchemaError(f"{where} must be an object with index_type, metric_type, params")
    _no_unknown(index, _INDEX_KEYS, where)
    if not isinstance(index.get("params", {}), dict):
        raise SchemaError(f"{where}: 'params' must be an object")
    return dict(index)


def _parse_hints(raw: Any, where: str) -> Hints:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: 'generate' must be an object")
    _no_unknown(raw, _HINT_KEYS, f"{where}: generate")
    values: dict[str, Any] = {}
    for key in ("null_rate", "default_rate", "presence"):
        if key in raw:
            if not _is_number(raw[key]) or not 0 <= raw[key] <= 1:
                raise SchemaError(f"{where}: {key!r} must be a number from 0 to 1")
            values[key] = float(raw[key])
    for key in ("min", "max"):
        if key in raw:
            if not _is_number(raw[key]):
                raise SchemaError(f"{where}: {key!r} must be a number")
            values[key] = raw[key]
    for key in ("words", "nnz"):
        if key in raw:
            values[key] = _pair(raw[key], f"{where}: {key!r}", minimum=0 if key == "words" else 1)
    if "choices" in raw:
        if not isinstance(raw["choices"], list) or not raw["choices"]:
            raise SchemaError(f"{where}: 'choices' must be a non-empty list")
        values["choices"] = tuple(raw["choices"])
    for key in ("decimals", "sparse_dim"):
        if key in raw:
            if not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 0:
                raise SchemaError(f"{where}: {key!r} must be a non-negative integer")
            values[key] = raw[key]
    if "prefix" in raw:
        if not isinstance(raw["prefix"], str):
            raise SchemaError(f"{where}: 'prefix' must be a string")
        values["prefix"] = raw["prefix"]
    hints = Hints(**values)
    if hints.min is not None and hints.max is not None and hints.min > hints.max:
        raise SchemaError(f"{where}: 'min' is greater than 'max'")
    return hints


def _check_hints(f: FieldSpec, hints: Hints) -> None:
    where = f"field {f.name!r}"
    if f.type in INT_RANGES:
        low, high = INT_RANGES[f.type]
        for bound in (hints.min, hints.max):
            if bound is not None and not (isinstance(bound, int) and low <= bound <= high):
                raise SchemaError(f"{where}: generate min/max must be integers within the {f.type} range")
    for choice in hints.choices or ():
        if not _fits(f, choice):
            raise SchemaError(f"{where}: choice {choice!r} is not a {f.type} value that fits the field")
    if f.type == "SPARSE_FLOAT_VECTOR" and hints.nnz[1] > hints.sparse_dim:
        raise SchemaError(f"{where}: 'nnz' maximum is above 'sparse_dim'")


def _pair(value: Any, where: str, *, minimum: int) -> tuple[int, int]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
    if not ok or value[0] < minimum or value[0] > value[1]:
        raise SchemaError(f"{where} must be [low, high] integers with {minimum} <= low <= high")
    return int(value[0]), int(value[1])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _field_kwargs(f: FieldSpec, auto_id: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if f.is_primary:
        kwargs["is_primary"] = True
        kwargs["auto_id"] = auto_id
    for key in ("nullable", "is_partition_key"):
        if getattr(f, key):
            kwargs[key] = True
    for key in ("dim", "max_length", "max_capacity", "default_value"):
        if getattr(f, key) is not None:
            kwargs[key] = getattr(f, key)
    if f.element_type:
        kwargs["element_type"] = DataType[f.element_type]
    return kwargs
