"""validate: export Milvus, the shadow and the journal, then compare Milvus against PostgreSQL with
the journal as arbiter, all in one output directory that appears complete or not at all.

Layout of the output directory:
  summary.json, diff.parquet, report.md, report.html   the comparison (A = milvus, B = pg)
  snapshots/milvus, snapshots/pg, snapshots/journal      the three snapshots it was computed from
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milvusdiff.compare.result import CompareResult
from milvusdiff.config import Settings

if TYPE_CHECKING:
    from milvusdiff.export.manifest import Manifest

DEFAULT_RUNS = "runs"


@dataclass(frozen=True)
class ValidateResult(CompareResult):
    """A CompareResult whose output directory always exists, with the summary's `store_warnings` filled:
    its exit code is 1 when the stores differ, and also when they agree row for row but a store contradicts
    itself (count(*) against the rows read, duplicate keys) or the journal holds writes never confirmed."""

    out: Path


def runs_dir(settings: Settings) -> Path:
    """Where validate puts its output when not told otherwise (and where repair looks for it)."""
    return settings.home / DEFAULT_RUNS


def _store_warnings(manifest: Manifest, collection: str) -> list[str]:
    """What the rows alone cannot show: a store whose own count(*) disagrees with the rows it returned, or
    that returned a key twice (real servers keep re-inserted keys, and may serve only one copy), and writes
    the journal holds IN_DOUBT, and renames of the collection in doubt. The stores can agree row for row and still
    carry these."""
    warnings = list(manifest.warnings)
    journal = manifest.children.get("journal")
    extra = journal.extra if journal is not None else {}
    in_doubt = int((extra.get("states") or {}).get("IN_DOUBT", 0))
    if in_doubt:
        warnings.append(
            f"journal: {in_doubt} keys are IN_DOUBT (a write whose outcome Milvus never confirmed); "
            f"`milvusdiff repair --collection {collection} --from journal` settles them"
        )
    for rename in extra.get("renames_in_doubt") or []:
        warnings.append(
            f"journal: rename_collection {rename['from']!r} -> {rename['to']!r} (operation {rename['seq']}) is in "
            "doubt; a ShadowClient settles it when it opens (as `milvusdiff repair` does), by asking Milvus which "
            "name it holds"
        )
    return warnings


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
    overwrite: bool = False,
    **compare_options: Any,
) -> ValidateResult:
    """Export the three stores of `collection` and compare Milvus (A) with PostgreSQL (B)."""
    from milvusdiff.compare.api import diff_into, make_options
    from milvusdiff.compare.report import write_outputs
    from milvusdiff.export import export_collection
    from milvusdiff.export.staging import Staging
    from milvusdiff.workflow.adopt import adopted_for_validate

    settings = settings or Settings.resolve()
    target = Path(out) if out is not None else default_out(settings, collection)
    staging = Staging(target, directory=True, overwrite=overwrite, kind="validate", durable=False, settings=settings)
    building = staging.path
    try:
        snapshots = building / "snapshots"
        export_options: dict[str, Any] = {"settings": settings, "quiet": quiet}
        if batch_size is not None:
            export_options["batch_size"] = batch_size
        # Rows of auto_id inserts in doubt read as IN_DOUBT, not unknown; the journal itself is left as it was.
        export_options["adopted"] = adopted_for_validate(collection, settings)
        manifest = export_collection(collection, source="all", out=snapshots, **export_options)
        options = make_options(journal=snapshots / "journal", three_way=True, **compare_options)
        scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=options.temp_dir or staging.scratch))
        try:
            summary, sample = diff_into(snapshots / "milvus", snapshots / "pg", options, building, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # The one render: warnings in, paths named where the directory ends up, then written once.
        summary = replace(summary, store_warnings=_store_warnings(manifest, collection))
        summary = summary.relocated(str(building), str(target))
        write_outputs(building, summary, sample)
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return ValidateResult(summary, target)
