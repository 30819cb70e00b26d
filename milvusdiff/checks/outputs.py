"""Where a check builds its outputs, and how it writes its own summary and reports.

A check's output directory is evidence, like a snapshot: it appears complete under its final name
or not at all. Everything is built in a staging directory beside it (export's Staging) and renamed
into place at the end; without `--out` the same work happens in a temporary directory that is
removed afterwards, so a check behaves the same whether or not its outputs are kept.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milvusdiff.compare.report import Section, render_html, render_markdown
from milvusdiff.config import Settings
from milvusdiff.export.staging import Staging

_TEXT_SUFFIXES = (".json", ".md", ".html")


@dataclass(frozen=True)
class CheckResult:
    """What a check returns: its summary (as in summary.json) and where its outputs are, if kept."""

    summary: dict[str, Any]
    out: Path | None

    @property
    def exit_code(self) -> int:
        """0 when the check found nothing wrong, 1 when it did (trouble raises instead)."""
        return 1 if self.summary["different"] else 0


@contextmanager
def staged_output(
    out: Path | None, *, kind: str, overwrite: bool = False, settings: Settings | None = None
) -> Iterator[Path]:
    """A directory to build in; published as `out` when the block completes, discarded if it fails."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="milvusdiff-check-") as scratch:
            yield Path(scratch)
        return
    staging = Staging(out, directory=True, overwrite=overwrite, kind=kind, settings=settings)
    try:
        yield staging.path
        _retarget(staging.path, out)
        staging.publish()
    except BaseException:
        staging.discard()
        raise


def _retarget(building: Path, out: Path) -> None:
    """Summaries and reports name their inputs by path: name them where they end up, not where they were built."""
    for produced in building.rglob("*"):
        if produced.suffix in _TEXT_SUFFIXES and produced.is_file():
            text = produced.read_text(encoding="utf-8")
            produced.write_text(text.replace(str(building), str(out)), encoding="utf-8")


def write_summary(directory: Path, summary: dict[str, Any], sections: list[Section]) -> None:
    """summary.json plus report.md and report.html rendered from the same sections (as compare does)."""
    (directory / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    (directory / "report.md").write_text(render_markdown(sections), encoding="utf-8")
    (directory / "report.html").write_text(render_html(sections), encoding="utf-8")
