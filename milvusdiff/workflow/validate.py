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
from typing import TYPE_CHECKING, Any

from milvusdiff.config import Settings
from milvusdiff.errors import SnapshotError

if TYPE_CHECKING:
    from milvusdiff.export.manifest import Manifest

DEFAULT_RUNS = "runs"
STORE_WARNINGS = "store_warnings"


@dataclass(frozen=True)
class ValidateResult:
    summary: dict[str, Any]
    out: Path

    @property
    def different(self) -> bool:
        return bool(self.summary["different"])

    @property
    def store_warnings(self) -> list[str]:
        return list(self.summary.get(STORE_WARNINGS, []))

    @property
    def exit_code(self) -> int:
        """1 when the stores differ, and also when they agree row for row but a store contradicts itself
        (count(*) against the rows read, duplicate keys) or the journal holds writes never confirmed."""
        return 1 if self.different or self.store_warnings else 0


def _point_at(produced: Path, building: Path, target: Path) -> None:
    """Reports name the snapshots they were computed from: name them where they end up, not where
    they were built."""
    if produced.suffix in (".json", ".md", ".html"):
        text = produced.read_text(encoding="utf-8")
        produced.write_text(text.replace(str(building), str(target)), encoding="utf-8")


def runs_dir(settings: Settings) -> Path:
    """Where validate puts its output when not told otherwise (and where repair looks for it)."""
    return settings.home / DEFAULT_RUNS


def _add_store_warnings(summary_path: Path, manifest: Manifest, collection: str) -> None:
    """What the rows alone cannot show, in summary.json: a store whose own count(*) disagrees with the rows
    it returned, or that returned a key twice (real servers keep re-inserted keys, and may serve only one
    copy), and writes the journal holds IN_DOUBT. The stores can agree row for row and still carry these."""
    warnings = list(manifest.warnings)
    journal = manifest.children.get("journal")
    in_doubt = int((journal.extra.get("states") or {}).get("IN_DOUBT", 0)) if journal is not None else 0
    if in_doubt:
        warnings.append(
            f"journal: {in_doubt} keys are IN_DOUBT (a write whose outcome Milvus never confirmed); "
            f"`milvusdiff repair --collection {collection} --from journal` settles them"
        )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary[STORE_WARNINGS] = warnings
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


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
        manifest = export_collection(collection, source="all", out=snapshots, **export_options)
        compare(
            snapshots / "milvus",
            snapshots / "pg",
            journal=snapshots / "journal",
            out=building / "compare",
            **compare_options,
        )
        _add_store_warnings(building / "compare" / "summary.json", manifest, collection)
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
