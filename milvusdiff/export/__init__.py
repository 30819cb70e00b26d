"""Snapshot export: Milvus, the PostgreSQL shadow or the journal, streamed to Parquet with a manifest.

The names load on first use: compare reads `milvusdiff.export.staging` (the output-directory rule),
and importing this package must not load the readers, pymilvus and the digest with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milvusdiff.export.api import DEFAULT_BATCH_SIZE, export_collection
    from milvusdiff.export.manifest import FileEntry, Manifest

_EXPORTS = {
    "DEFAULT_BATCH_SIZE": "milvusdiff.export.api",
    "export_collection": "milvusdiff.export.api",
    "FileEntry": "milvusdiff.export.manifest",
    "Manifest": "milvusdiff.export.manifest",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'milvusdiff.export' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = ["DEFAULT_BATCH_SIZE", "FileEntry", "Manifest", "export_collection"]
