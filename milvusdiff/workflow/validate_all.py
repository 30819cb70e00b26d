"""validate every collection at once: what a CI job gates on after a test suite or a migration.

Each collection gets the same output directory `validate` writes, side by side under one root, plus
an index (`index.json`, the summary of summaries, and `index.md`). One collection's trouble (exit 2)
does not stop the others: the gate wants the whole picture, and the exit code is the worst of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milvusdiff.ci.gate import GateCase, result_case, trouble_case
from milvusdiff.config import Settings
from milvusdiff.destination import guard, write_marker
from milvusdiff.errors import MilvusDiffError, first_line

INDEX_JSON = "index.json"
INDEX_MD = "index.md"


@dataclass(frozen=True)
class ValidateAllResult:
    cases: list[GateCase]
    out: Path

    @property
    def exit_code(self) -> int:
        return max((c.exit_code for c in self.cases), default=0)


def journal_collections(settings: Settings) -> list[str]:
    """The collections the journal knows and has not seen dropped, in name order."""
    from milvusdiff.services.journal import Journal

    with Journal(settings.journal_path, readonly=True) as journal:
        return sorted(journal.collections())


def validate_one(collection: str, out: Path, settings: Settings, quiet: bool, **options: Any) -> GateCase:
    """Validate one collection; trouble becomes an error case instead of an exception."""
    from milvusdiff.workflow.validate import validate

    started = time.perf_counter()
    try:
        result = validate(collection, out=out, settings=settings, quiet=quiet, **options)
    except MilvusDiffError as exc:
        return trouble_case(collection, first_line(exc), time.perf_counter() - started)
    return result_case(collection, result.summary, result.out, result.exit_code, time.perf_counter() - started)


def validate_all(
    out: str | Path,
    *,
    collections: Sequence[str] | None = None,
    settings: Settings | None = None,
    quiet: bool = True,
    progress: Callable[[int, int, GateCase], None] | None = None,
    overwrite: bool = False,
    **options: Any,
) -> ValidateAllResult:
    """Validate `collections` (default: every collection the journal knows) into `out/<collection>`.

    `out` follows the one output rule (milvusdiff.destination); with `overwrite`, an earlier validate-all
    output there is written over, collection by collection. Its marker is written last, with the index.
    """
    settings = settings or Settings.resolve()
    root = Path(out)
    guard(root, kind="validate-all", overwrite=overwrite, settings=settings)
    names = list(collections) if collections is not None else journal_collections(settings)
    root.mkdir(parents=True, exist_ok=True)
    cases: list[GateCase] = []
    for number, name in enumerate(names, start=1):
        case = validate_one(name, root / name, settings, quiet, overwrite=overwrite, **options)
        cases.append(case)
        if progress is not None:
            progress(number, len(names), case)
    result = ValidateAllResult(cases, root)
    _write_index(result)
    write_marker(root, "validate-all")
    return result


def _write_index(result: ValidateAllResult) -> None:
    entries = [
        {
            "collection": c.name,
            "exit_code": c.exit_code,
            "line": c.line,
            "out": c.name if c.report is not None else None,
            "seconds": round(c.seconds, 3),
        }
        for c in result.cases
    ]
    index = {"exit_code": result.exit_code, "collections": entries}
    (result.out / INDEX_JSON).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    (result.out / INDEX_MD).write_text(index_markdown(result), encoding="utf-8")


def index_markdown(result: ValidateAllResult) -> str:
    status = {0: "agree", 1: "DIFFER", 2: "ERROR"}
    lines = [
        "# milvusdiff validate --all",
        "",
        f"{len(result.cases)} collections, exit code {result.exit_code}.",
        "",
        "| collection | result | details |",
        "|---|---|---|",
    ]
    for case in result.cases:
        link = f"[report]({case.name}/report.md)" if case.report is not None else ""
        detail = case.line.split(": ", 1)[-1].replace("|", "\\|")
        lines.append(f"| {case.name} | {status.get(case.exit_code, 'ERROR')} {link} | {detail} |")
    return "\n".join(lines) + "\n"
