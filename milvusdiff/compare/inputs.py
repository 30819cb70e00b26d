"""Open one side of a comparison: a snapshot directory or a single Parquet file.

Only footers are read here (schema, key-value metadata, row counts), so opening is instant whatever
the size; the engines read the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.errors import SnapshotError

KEY_META = b"milvusdiff.key"
SPEC_META = b"milvusdiff.spec"
SOURCE_META = b"milvusdiff.source"
MANIFEST_META = b"milvusdiff.manifest"


@dataclass(frozen=True)
class Side:
    label: str
    path: Path
    files: tuple[Path, ...]
    schema: pa.Schema
    rows: int
    key: tuple[str, ...] | None
    spec_json: str | None
    manifest: dict[str, Any] | None
    source: str | None

    @property
    def file_list(self) -> list[str]:
        return [str(f) for f in self.files]


def open_side(path: str | Path, label: str) -> Side:
    path = Path(path)
    if not path.exists():
        raise SnapshotError(f"input {label.upper()} does not exist: {path}")
    manifest: dict[str, Any] | None = None
    if path.is_dir():
        files = tuple(sorted(path.glob("part-*.parquet")))
        if not files:
            raise SnapshotError(f"input {label.upper()} has no part-*.parquet files: {path}")
        manifest_path = path / "manifest.json"
        if manifest_path.exists():
            manifest = _load_json(manifest_path.read_text(encoding="utf-8"), f"{manifest_path}")
    else:
        files = (path,)
    schema, rows = _read_footers(files, label)
    meta = schema.metadata or {}
    if manifest is None and MANIFEST_META in meta:
        manifest = _load_json(meta[MANIFEST_META].decode(), f"{path} metadata")
    key = _key_from(meta, manifest)
    source = meta[SOURCE_META].decode() if SOURCE_META in meta else (manifest or {}).get("source")
    spec_json = meta[SPEC_META].decode() if SPEC_META in meta else None
    return Side(label, path, files, schema, rows, key, spec_json, manifest, source)


def _read_footers(files: tuple[Path, ...], label: str) -> tuple[pa.Schema, int]:
    """All parts must share one schema: a snapshot whose parts disagree is not one table."""
    schema: pa.Schema | None = None
    rows = 0
    for file in files:
        try:
            parquet = pq.ParquetFile(file)
        except (OSError, pa.ArrowException) as exc:
            raise SnapshotError(f"input {label.upper()} is not readable Parquet: {file}: {exc}") from exc
        rows += parquet.metadata.num_rows
        part_schema = parquet.schema_arrow
        if schema is None:
            schema = part_schema
        elif not part_schema.remove_metadata().equals(schema.remove_metadata()):
            raise SnapshotError(f"input {label.upper()}: {file.name} has a different schema than {files[0].name}")
    assert schema is not None
    return schema, rows


def _key_from(meta: dict[bytes, bytes], manifest: dict[str, Any] | None) -> tuple[str, ...] | None:
    if KEY_META in meta:
        raw: Any = _load_json(meta[KEY_META].decode(), "milvusdiff.key metadata")
    else:
        raw = (manifest or {}).get("key") or (manifest or {}).get("primary_key")
    if raw is None:
        return None
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{where} is not valid JSON: {exc}") from exc
