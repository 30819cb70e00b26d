"""`verify SNAPSHOT`: everything a read checks, on every column, plus every file's full sha256.

A read checks only what it reads (see milvusdiff.snapshot_verify); this is the full check for a
snapshot about to be archived, shipped or trusted as evidence later. A `--source all` directory is
verified child by child.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from milvusdiff.compare.inputs import read_footers, snapshot_parts
from milvusdiff.errors import SnapshotError
from milvusdiff.snapshot_format import MANIFEST_NAME, PART_GLOB
from milvusdiff.snapshot_verify import check_checksums, check_rows, verify_pages


@dataclass
class Verified:
    path: Path
    files: int = 0
    rows: int = 0
    hashed: int = 0
    children: list[Verified] = field(default_factory=list)


def verify_snapshot(path: str | Path) -> Verified:
    """Raise SnapshotError naming the first file that does not match; return what was checked."""
    path = Path(path)
    if path.is_dir() and not (path / MANIFEST_NAME).exists() and not any(path.glob(PART_GLOB)):
        children = sorted(p for p in path.iterdir() if p.is_dir() and (p / MANIFEST_NAME).exists())
        if not children:
            raise SnapshotError(f"{path} is not a snapshot (no manifest.json, no part-*.parquet)")
        return Verified(path, children=[verify_snapshot(child) for child in children])
    files, manifest = snapshot_parts(path, "snapshot")
    data = list(files)
    if path.is_dir():
        data += [path / e["name"] for e in (manifest or {}).get("files", []) if not (path / e["name"]).match(PART_GLOB)]
    _, rows = read_footers(files, "snapshot")
    if manifest is not None:
        check_rows(files, rows, manifest, "snapshot")
    verify_pages(data, None, "snapshot")
    hashed = check_checksums(path, manifest) if manifest is not None and path.is_dir() else 0
    return Verified(path, files=len(data), rows=sum(rows), hashed=hashed)
