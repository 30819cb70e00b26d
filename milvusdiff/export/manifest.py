"""The manifest: what a snapshot holds, where it came from, and whether the store agreed with it.

It is the evidence that goes with the data. The counts the store reports are kept next to what was
actually written, so a lost or duplicated row shows up as a recorded disagreement instead of vanishing.
Nothing in it may carry credentials: URIs are redacted before they get here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from milvusdiff.snapshot_format import FORMAT_VERSION, MANIFEST_FORMAT_FIELD


@dataclass(frozen=True)
class FileEntry:
    name: str
    rows: int
    bytes: int | None  # None (like sha256) inside a single-file snapshot: a file cannot describe its own bytes
    sha256: str | None
    bucket: int | None = None  # bucketed snapshots: the bucket every row of this file belongs to


@dataclass(frozen=True)
class BucketStats:
    """One bucket of a bucketed snapshot (types/buckets.py defines the bucket and both sums)."""

    bucket: int
    rows: int
    digest_sum: str
    placement_sum: str | None = None  # snapshots with a `$partition` column only


@dataclass(frozen=True)
class KeyStats:
    """Key census of the rows written: distinct keys, and the keys that occur more than once."""

    distinct_keys: int
    duplicate_keys: int
    duplicate_rows: int
    duplicate_sample: list[Any]


@dataclass
class Manifest:
    source: str
    collection: str
    uri: str | None = None
    spec: dict[str, Any] | None = None
    primary_key: str | None = None
    primary_key_type: str | None = None
    with_partition: bool = False
    rows_written: int = 0
    store_count: int | None = None
    distinct_keys: int | None = None
    duplicate_keys: int | None = None
    duplicate_rows: int | None = None
    duplicate_key_sample: list[Any] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    created_at: str = ""
    milvusdiff_version: str = ""
    children: dict[str, Manifest] = field(default_factory=dict)
    digest_column: str | None = None  # "$digest" when every row carries its row digest
    buckets: int | None = None  # bucketed layout: rows in bucket(primary key) of N, see types/buckets.py
    bucket_hash: str | None = None
    bucket_stats: list[BucketStats] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """True when the store's own counts agree with what was written (no warnings anywhere)."""
        return not self.warnings and all(child.consistent for child in self.children.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data[MANIFEST_FORMAT_FIELD] = FORMAT_VERSION
        data["key"] = [self.primary_key] if self.primary_key else None
        data["children"] = {name: child.to_dict() for name, child in self.children.items()}
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=True, default=str)


def store_warnings(rows_written: int, store_count: int | None, keys: KeyStats, store: str) -> list[str]:
    """The disagreements between what was read and what the store says it holds, in words."""
    found = []
    if store_count is not None and rows_written != store_count:
        found.append(f"{store} reports {store_count} rows (count(*)) but {rows_written} were read")
    if keys.duplicate_keys and store_count is not None and keys.distinct_keys != store_count:
        found.append(f"{store} reports {store_count} rows but only {keys.distinct_keys} distinct keys were read")
    if keys.duplicate_keys:
        sample = ", ".join(json.dumps(k, ensure_ascii=False) for k in keys.duplicate_sample)
        found.append(
            f"{keys.duplicate_keys} primary keys occur more than once "
            f"({keys.duplicate_rows} extra rows, all kept): {sample}"
        )
    return found
