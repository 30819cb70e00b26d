"""Atomic publication: build an output under a hidden temporary name beside it, then rename it into place.

A snapshot is evidence; a half-written one that looks whole would be worse than none. So nothing is
written at the destination until everything is written, and a run that dies leaves only a dot-named
`.NAME.partial-*` entry that no reader takes for a snapshot. The staging entry lives in the
destination's own directory so the final rename never crosses a filesystem.

`durable` adds fsync before the rename, for outputs that must survive a crash of the machine itself,
not only of the process. It is a choice because it costs the disk's write time at the end of every
export (measured: 0.15-0.2s per 200 MB here, a quarter of a 400k-row PostgreSQL read). Without it a
power cut can leave a published file short, never wrong: a Parquet file without its footer or a
manifest cut short fails loudly on read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

from milvusdiff.errors import SnapshotError


def fsync_path(path: Path) -> None:
    """Flush a file or a directory entry table to disk (directories make renames durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_destination(out: Path, *, overwrite: bool) -> None:
    """Refuse early, before any store is read, an output that exists or cannot be created."""
    if out.exists() and not overwrite and not (out.is_dir() and not any(out.iterdir())):
        raise SnapshotError(f"output {out} already exists (pass --overwrite to replace it)")
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    if not existing.is_dir():
        raise SnapshotError(f"cannot create the output directory {out.parent}: {existing} is a file, not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnapshotError(f"cannot create the output directory {out.parent}: {exc.strerror or exc}") from exc
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise SnapshotError(f"output directory {out.parent} is not writable")


class Staging:
    """A temporary sibling of `out` (a directory, or a file path when `directory` is false) plus scratch space."""

    def __init__(self, out: Path, *, directory: bool, overwrite: bool, durable: bool = True) -> None:
        check_destination(out, overwrite=overwrite)
        self.out = out
        self.durable = durable
        self._overwrite = overwrite
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.path = out.parent / f".{out.name}.partial-{token}"
        self.scratch = out.parent / f".{out.name}.scratch-{token}"
        try:
            self.scratch.mkdir()
            if directory:
                self.path.mkdir()
        except OSError as exc:
            self.discard()
            raise SnapshotError(f"cannot write in {out.parent}: {exc.strerror or exc}") from exc

    def publish(self) -> None:
        """Make the staged output visible under its final name in one rename (durable first, if asked)."""
        _remove(self.scratch)
        if self.durable and self.path.is_dir():
            fsync_path(self.path)
        check_destination(self.out, overwrite=self._overwrite)  # something may have appeared meanwhile
        previous = self.out.parent / f".{self.out.name}.replaced-{self.path.name.rsplit('-', 1)[-1]}"
        if self.out.exists():
            self.out.rename(previous)
        os.rename(self.path, self.out)
        if self.durable:
            fsync_path(self.out.parent)
        _remove(previous)

    def discard(self) -> None:
        _remove(self.path)
        _remove(self.scratch)
