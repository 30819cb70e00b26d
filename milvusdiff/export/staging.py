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

import functools
import os
from collections.abc import Iterable
from pathlib import Path

from milvusdiff.config import Settings
from milvusdiff.destination import WorkEntry, guard, remove, sweep_stale, work_token, write_marker
from milvusdiff.errors import SnapshotError


def fsync_path(path: Path) -> None:
    """Flush a file or a directory entry table to disk (directories make renames durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """A temporary sibling of `out` (a directory, or a file path when `directory` is false) plus scratch space.

    The destination is checked by the one output rule (milvusdiff.destination.guard) for an output of
    `kind`; both work entries stay locked while this process lives, and stale ones left by killed runs
    beside `out` are removed first.
    """

    def __init__(
        self,
        out: Path,
        *,
        directory: bool,
        overwrite: bool,
        kind: str,
        durable: bool = True,
        inputs: Iterable[Path] = (),
        settings: Settings | None = None,
    ) -> None:
        self._check = functools.partial(
            guard, out, kind=kind, overwrite=overwrite, inputs=tuple(inputs), settings=settings
        )
        self._check()
        self.out = out
        self.durable = durable
        self.kind = kind
        self._directory = directory
        sweep_stale(out.parent)
        token = work_token()
        entries: list[WorkEntry] = []
        try:
            entries.append(WorkEntry(out.parent, f".{out.name}.scratch-{token}", directory=True))
            entries.append(WorkEntry(out.parent, f".{out.name}.partial-{token}", directory=directory))
        except OSError as exc:
            for entry in entries:
                entry.discard()
            raise SnapshotError(f"cannot write in {out.parent}: {exc.strerror or exc}") from exc
        self._scratch, self._staged = entries
        self.scratch, self.path = self._scratch.path, self._staged.path

    def publish(self) -> None:
        """Make the staged output visible under its final name in one rename (durable first, if asked)."""
        self._scratch.discard()
        if self._directory:
            write_marker(self.path, self.kind)
            if self.durable:
                fsync_path(self.path)
        self._check()  # something may have appeared meanwhile
        previous = self.out.parent / f".{self.out.name}.replaced-{work_token()}"
        if self.out.exists():
            self.out.rename(previous)
        os.rename(self.path, self.out)
        self._staged.release()
        if self.durable:
            fsync_path(self.out.parent)
        remove(previous)

    def discard(self) -> None:
        self._staged.discard()
        self._scratch.discard()
