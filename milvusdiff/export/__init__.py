"""Snapshot export: Milvus, the PostgreSQL shadow or the journal, streamed to Parquet with a manifest."""

from milvusdiff.export.api import DEFAULT_BATCH_SIZE, export_collection
from milvusdiff.export.manifest import FileEntry, Manifest

__all__ = ["DEFAULT_BATCH_SIZE", "FileEntry", "Manifest", "export_collection"]
