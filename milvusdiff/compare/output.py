"""An output directory that appears complete or not at all: built under a temporary name, then renamed."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from milvusdiff.errors import SnapshotError
from milvusdiff.export.staging import check_destination


@dataclass(frozen=True)
class Workspace:
    outputs: Path  # becomes the --out directory on success
    scratch: Path  # intermediate files and DuckDB spill; never survives


def _replace(built: Path, out: Path) -> None:
    """rename(2) cannot replace a non-empty directory, so move the old one aside first."""
    if not out.exists():
        built.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{built.parent.name}")
    out.rename(old)
    built.rename(out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def workspace(out: Path | None, temp_dir: Path | None) -> Iterator[Workspace]:
    parent = out.parent if out is not None else temp_dir
    if out is not None:
        check_destination(out, overwrite=True)  # a clear refusal for a parent that is a file or unwritable
    try:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=".milvusdiff-compare-", dir=parent))
    except OSError as exc:
        raise SnapshotError(f"cannot write in the output directory {parent}: {exc.strerror or exc}") from exc
    space = Workspace(root / "out", root / "scratch")
    space.outputs.mkdir()
    space.scratch.mkdir()
    try:
        yield space
        if out is not None:
            _replace(space.outputs, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
