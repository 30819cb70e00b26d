"""An output directory that appears complete or not at all: built under a temporary name, then renamed.

With `out`, the work happens in export's Staging beside it (the one output rule of
milvusdiff.destination decides whether `out` may be written, the inputs included); without, in a
locked scratch directory under `temp_dir` (or the system's), removed afterwards. Either way an entry
left by a killed run is removed by the next run that finds it there.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from milvusdiff.destination import WorkEntry, sweep_stale, work_token
from milvusdiff.errors import SnapshotError
from milvusdiff.export.staging import Staging


@dataclass(frozen=True)
class Workspace:
    outputs: Path  # becomes the --out directory on success
    scratch: Path  # intermediate files and DuckDB spill; never survives


@contextlib.contextmanager
def workspace(
    out: Path | None, temp_dir: Path | None, *, overwrite: bool = False, inputs: Iterable[Path] = ()
) -> Iterator[Workspace]:
    if out is not None:
        staging = Staging(out, directory=True, overwrite=overwrite, kind="compare", durable=False, inputs=inputs)
        try:
            yield Workspace(staging.path, staging.scratch)
            staging.publish()
        except BaseException:
            staging.discard()
            raise
        return
    parent = temp_dir if temp_dir is not None else Path(tempfile.gettempdir())
    try:
        parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(parent)
        root = WorkEntry(parent, f".milvusdiff-compare-{work_token()}", directory=True)
    except OSError as exc:
        raise SnapshotError(f"cannot write in the scratch directory {parent}: {exc.strerror or exc}") from exc
    try:
        space = Workspace(root.path / "out", root.path / "scratch")
        space.outputs.mkdir()
        space.scratch.mkdir()
        yield space
    finally:
        root.discard()
