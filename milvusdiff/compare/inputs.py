"""Open one side of a comparison: a snapshot directory or a single Parquet file.

Only footers, the manifest and the directory listing are read here, so opening is instant whatever the
size; they are checked against each other (milvusdiff.snapshot_verify), and the engines read the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.errors import SnapshotError
from milvusdiff.snapshot_format import (
    DIGEST_COLUMN,
    FORMAT_META,
    KEY_META,
    MANIFEST_FORMAT_FIELD,
    MANIFEST_META,
    MANIFEST_NAME,
    PART_GLOB,
    SOURCE_META,
    SPEC_META,
    check_format,
)
from milvusdiff.snapshot_verify import check_listing, check_rows, verify_pages

if TYPE_CHECKING:
    from milvusdiff.compare.plan import Plan


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

    @property
    def bucketed(self) -> bool:
        """Exported with --buckets: what staged compare needs first (checked before it is even imported)."""
        return bool((self.manifest or {}).get("buckets"))


def open_side(path: str | Path, label: str) -> Side:
    path = Path(path)
    files, manifest = snapshot_parts(path, label)
    schema, rows = read_footers(files, label)
    if manifest is not None:
        check_rows(files, rows, manifest, label)
    meta = schema.metadata or {}
    key = _key_from(meta, manifest)
    source = meta[SOURCE_META].decode() if SOURCE_META in meta else (manifest or {}).get("source")
    spec_json = meta[SPEC_META].decode() if SPEC_META in meta else None
    return Side(label, path, files, schema, sum(rows), key, spec_json, manifest, source)


def snapshot_parts(path: Path, label: str) -> tuple[tuple[Path, ...], dict[str, Any] | None]:
    """The data files of a snapshot and its manifest, the file list checked against the manifest."""
    if not path.exists():
        raise SnapshotError(f"input {label.upper()} does not exist: {path}")
    if not path.is_dir():
        _refuse_other_formats(path, label)
        manifest = None
        try:
            meta = pq.read_schema(path).metadata or {}
        except (OSError, pa.ArrowException):
            meta = {}  # read_footers says why
        if MANIFEST_META in meta:
            manifest = _load_json(meta[MANIFEST_META].decode(), f"{path} metadata")
            check_format(manifest.get(MANIFEST_FORMAT_FIELD), f"input {label.upper()}: {path}")
        return (path,), manifest
    files = tuple(sorted(path.glob(PART_GLOB)))
    manifest_path = path / MANIFEST_NAME
    manifest = None
    if manifest_path.exists():
        manifest = _load_json(manifest_path.read_text(encoding="utf-8"), f"{manifest_path}")
        if not isinstance(manifest, dict):
            raise SnapshotError(f"{manifest_path} is not a manifest (a JSON object)")
        check_format(manifest.get(MANIFEST_FORMAT_FIELD), f"input {label.upper()}: {manifest_path}")
        if "files" in manifest:  # a hand-made manifest may list nothing; one milvusdiff wrote always does
            check_listing(path, manifest, label)
    if not files:
        raise SnapshotError(f"input {label.upper()} has no part-*.parquet files: {path}")
    return files, manifest


_PARQUET_MAGIC = b"PAR1"


def _refuse_other_formats(path: Path, label: str) -> None:
    """A file that is not Parquet at all (CSV, JSON, ...) gets a line saying what is read, not a Parquet error."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise SnapshotError(f"input {label.upper()} is not readable: {path}: {exc.strerror or exc}") from exc
    if head != _PARQUET_MAGIC:
        raise SnapshotError(
            f"input {label.upper()} is not readable Parquet: {path} is not a Parquet file; milvusdiff reads "
            "Parquet files and snapshot directories (manifest.json + part-*.parquet), so convert CSV or JSON first"
        )


def read_footers(files: tuple[Path, ...], label: str) -> tuple[pa.Schema, list[int]]:
    """All parts must share one schema: a snapshot whose parts disagree is not one table."""
    schema: pa.Schema | None = None
    rows: list[int] = []
    for file in files:
        try:
            parquet = pq.ParquetFile(file)
        except (OSError, pa.ArrowException) as exc:
            raise SnapshotError(f"input {label.upper()} is not readable Parquet: {file}: {exc}") from exc
        rows.append(parquet.metadata.num_rows)
        part_schema = parquet.schema_arrow
        check_format((part_schema.metadata or {}).get(FORMAT_META), f"input {label.upper()}: {file}")
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


def verify_read(plan: Plan, side_a: Side, side_b: Side) -> None:
    """The page checksums of exactly the columns the engines and arbitration will read, on both sides."""
    for side, names in (
        (side_a, [*(k.name for k in plan.keys), *(c.name for c in plan.columns)]),
        (side_b, [*(k.b_name for k in plan.keys), *(c.b_name for c in plan.columns)]),
    ):
        digest = [DIGEST_COLUMN] if DIGEST_COLUMN in side.schema.names else []
        verify_pages(side.files, [*names, *digest], side.label)
