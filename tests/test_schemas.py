"""Schema presets: every built-in preset creates, loads and holds generated rows in both stores; a preset
file is equivalent to its preset; a bad file is one SchemaError line naming the file; the CLI lists and
shows presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.agreement import assert_agreement

from milvusdiff.cli.main import main
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.errors import ConfigError, SchemaError
from milvusdiff.types.spec import CollectionSpec
from milvusdiff.types.typemap import VECTOR_TYPES
from milvusdiff.workload.runner import run_workload
from milvusdiff.workload.schemas import create_from_preset, load_preset, load_schema, preset_names, preset_text

pytest_plugins = ["test_workload_support"]

PRESETS = ["all_types", "ecommerce", "rag", "varchar_partitions"]
LITE_TYPES = {
    "BOOL", "INT8", "INT16", "INT32", "INT64", "FLOAT", "DOUBLE", "VARCHAR", "JSON", "ARRAY", "GEOMETRY",
    "TIMESTAMPTZ", "FLOAT_VECTOR", "SPARSE_FLOAT_VECTOR",
}  # fmt: skip
ARRAY_ELEMENTS = {"INT32", "INT64", "FLOAT", "DOUBLE", "BOOL", "VARCHAR"}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_the_built_in_presets_are_there() -> None:
    assert set(PRESETS) <= set(preset_names())


def test_all_types_covers_every_type_milvus_lite_supports() -> None:
    spec = load_preset("all_types").spec
    assert {f.type for f in spec.fields} == LITE_TYPES
    assert {f.element_type for f in spec.fields if f.type == "ARRAY"} == ARRAY_ELEMENTS
    assert spec.enable_dynamic_field
    assert any(f.nullable and f.default_value is not None for f in spec.fields)
    assert any(f.nullable and f.default_value is None for f in spec.fields)
    assert any(not f.nullable and f.default_value is not None for f in spec.fields)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_creates_loads_and_holds_its_rows_in_both_stores(lite_client: ShadowClient, name: str) -> None:
    preset = load_preset(name)
    create_from_preset(lite_client, preset, name)
    assert "Loaded" in str(lite_client.get_load_state(name)["state"])
    created = CollectionSpec.from_milvus(name, lite_client.describe_collection(name))
    assert [(f.name, f.type, f.element_type) for f in created.fields] == [
        (f.name, f.type, f.element_type) for f in preset.spec.fields
    ]
    assert set(preset.partitions) <= set(lite_client.list_partitions(name))
    report = run_workload(lite_client, preset, name, rows=300, batch=100, operations=0, seed=1, progress=False)
    stores = assert_agreement(lite_client, name)
    assert stores.keys(stores.milvus) == sorted(report.live_keys) and len(report.live_keys) == 300
    if preset.partitions:
        assert set(stores.milvus.column("$partition").to_pylist()) <= set(preset.partitions)


def test_an_existing_collection_is_replaced_only_when_asked(lite_client: ShadowClient) -> None:
    preset = load_preset("varchar_partitions")
    create_from_preset(lite_client, preset, "orders")
    run_workload(lite_client, preset, "orders", rows=50, batch=50, operations=0, seed=1, progress=False)
    with pytest.raises(ConfigError, match="already exists; pass `drop_existing`"):
        create_from_preset(lite_client, preset, "orders")
    create_from_preset(lite_client, preset, "orders", drop_existing=True)
    assert lite_client.shadow.count("orders") == 0
    assert lite_client.query("orders", filter="", output_fields=["count(*)"])[0]["count(*)"] == 0


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_file_is_the_same_preset(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(preset_text(name), encoding="utf-8")
    by_name, by_file = load_schema(name), load_schema(str(path))
    assert by_file.preset.spec == by_name.preset.spec
    assert (by_file.preset.partitions, by_file.preset.hints) == (by_name.preset.partitions, by_name.preset.hints)
    assert by_file.schema.to_dict() == by_name.schema.to_dict()
    indexed = {index.field_name for index in by_file.index_params}
    assert {f.name for f in by_file.preset.spec.fields if f.type in VECTOR_TYPES} <= indexed


def _document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "custom",
        "fields": [
            {"name": "id", "type": "INT64", "is_primary": True},
            {"name": "v", "type": "FLOAT_VECTOR", "dim": 4},
        ],
    }
    doc.update(changes)
    return doc


def _fields(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [*_document()["fields"], *extra]


BAD_FILES = [
    ("not json", "{'name': 1", "not valid JSON"),
    ("top-level list", [], "a preset is a JSON object"),
    ("unknown top-level key", _document(colour="red"), "unknown key 'colour'"),
    ("unknown type", _document(fields=_fields({"name": "x", "type": "DECIMAL"})), "unknown type 'DECIMAL'"),
    ("varchar without length", _document(fields=_fields({"name": "x", "type": "VARCHAR"})), "needs 'max_length'"),
    ("array without capacity", _document(fields=_fields({"name": "x", "type": "ARRAY", "element_type": "INT32"})),
     "needs 'element_type' and 'max_capacity'"),
    ("vector without dim", _document(fields=[{"name": "id", "type": "INT64", "is_primary": True},
                                             {"name": "v", "type": "FLOAT_VECTOR"}]), "needs a positive dim"),
    ("two primary keys", _document(fields=_fields({"name": "k", "type": "INT64", "is_primary": True})),
     "exactly one field"),
    ("no vector field", _document(fields=[{"name": "id", "type": "INT64", "is_primary": True}]),
     "at least one vector field"),
    ("default of the wrong type", _document(fields=_fields({"name": "x", "type": "INT8", "default_value": 300})),
     "'default_value' 300 does not fit"),
    ("choice of the wrong type",
     _document(fields=_fields({"name": "x", "type": "INT32", "generate": {"choices": ["a"]}})), "choice 'a'"),
    ("rate above one", _document(generate={"null_rate": 2}), "'null_rate' must be a number from 0 to 1"),
    ("dynamic fields without the dynamic field",
     _document(dynamic_fields=[{"name": "d", "type": "INT64"}]), "need 'enable_dynamic_field'"),
    ("partitions with a partition key",
     _document(partitions=["a"], fields=_fields({"name": "t", "type": "INT64", "is_partition_key": True})),
     "partition key"),
    ("auto_id on a VARCHAR key",
     _document(auto_id=True, fields=[{"name": "id", "type": "VARCHAR", "max_length": 8, "is_primary": True},
                                     {"name": "v", "type": "FLOAT_VECTOR", "dim": 4}]), "'auto_id' needs an INT64"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "document", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_one_schema_error_line_naming_the_file(
    case: str, document: Any, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "schema.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    with pytest.raises(SchemaError) as raised:
        load_schema(str(path))
    text = str(raised.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_an_unknown_preset_name_lists_the_presets() -> None:
    with pytest.raises(SchemaError, match=r"no preset named 'catalogue'.*all_types"):
        load_schema("catalogue")


def test_cli_lists_and_shows_presets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["schemas"], capsys)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == preset_names()
    code, out, _ = run(["schemas", "show", "rag"], capsys)
    assert code == 0 and json.loads(out) == json.loads(preset_text("rag"))
    path = tmp_path / "mine.json"
    path.write_text(out, encoding="utf-8")
    code, again, _ = run(["schemas", "show", str(path)], capsys)
    assert code == 0 and json.loads(again) == json.loads(out)


def test_cli_refuses_a_bad_preset_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["schemas", "show", "nope"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "no preset named 'nope'" in err
