"""validate: export Milvus, the shadow and the journal, then compare Milvus against PostgreSQL with
the journal as arbiter, all in one output directory that appears complete or not at all.

Layout of the output directory:
  summary.json, diff.parquet, report.md, report.html   the comparison (A = milvus, B = pg)
  snapshots/milvus, snapshots/pg, snapshots/journal      the three snapshots it was computed from
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milvusdiff.config import Settings
from milvusdiff.errors import SnapshotError

DEFAULT_RUNS = "runs"


@dataclass(frozen=True)
class ValidateResult:
    summary: dict[str, Any]
    out: Path

    @property
    def different(self) -> bool:
        return bool(self.summary["different"])

    @property
    def exit_code(self) -> int:
        return 1 if self.different else 0


def _point_at(produced: Path, building: Path, target: Path) -> None:
    """Reports name the snapshots they were computed from: name them where they end up, not where
    they were built."""
    if produced.suffix in (".json", ".md", ".html"):
        text = produced.read_text(encoding="utf-8")
        produced.write_text(text.replace(str(building), str(target)), encoding="utf-8")


def runs_dir(settings: Settings) -> Path:
    """Where validate puts its output when not told otherwise (and where repair looks for it)."""
    return settings.home / DEFAULT_RUNS


def default_out(settings: Settings, collection: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return runs_dir(settings) / f"{collection}-{stamp}"


def validate(
    collection: str,
    *,
    out: str | Path | None = None,
    settings: Settings | None = None,
    quiet: bool = True,
    batch_size: int | None = None,
    **compare_options: Any,
) -> ValidateResult:
    """Export the three stores of `collection` and compare Milvus (A) with PostgreSQL (B)."""
    from milvusdiff.compare import compare
    from milvusdiff.export import export_collection
    from milvusdiff.export.staging import check_destination

    settings = settings or Settings.resolve()
    target = Path(out) if out is not None else default_out(settings, collection)
    if target.exists():
        raise SnapshotError(f"output directory {target} already exists: choose another --out or remove it")
    check_destination(target, overwrite=False)
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise SnapshotError(f"cannot write in the output directory {target.parent}: {exc.strerror or exc}") from exc
    try:
        snapshots = building / "snapshots"
        export_options: dict[str, Any] = {"settings": settings, "quiet": quiet}
        if batch_size is not None:
            export_options["batch_size"] = batch_size
        export_collection(collection, source="all", out=snapshots, **export_options)
        compare(
            snapshots / "milvus",
            snapshots / "pg",
            journal=snapshots / "journal",
            out=building / "compare",
            **compare_options,
        )
        for produced in (building / "compare").iterdir():
            _point_at(produced, building, target)
            produced.rename(building / produced.name)
        (building / "compare").rmdir()
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    summary = json.loads((target / "summary.json").read_text(encoding="utf-8"))
    return ValidateResult(summary, target)
