"""The summary on a terminal: the same sections as report.md, drawn as rich tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from milvusdiff.compare.report import Section, build_sections

if TYPE_CHECKING:
    from milvusdiff.compare.summary import Summary


def print_summary(summary: Summary, console: Console | None = None) -> None:
    print_sections(build_sections(summary, sample=[]), console)


def print_differing_keys(diff: Path, summary: Summary, shown: int, console: Console | None = None) -> None:
    """The first `shown` differing keys of an output directory's diff.parquet (nothing when none differ)."""
    from milvusdiff.compare.shown import differing_keys_section

    section = differing_keys_section(diff, summary, shown)
    if section is not None:
        print_sections([section], console)


def print_sections(sections: list[Section], console: Console | None = None) -> None:
    """Report sections (any command's) as rich tables with their notes."""
    console = console or Console()
    for section in sections:
        if section.headers:
            table = Table(title=section.title, title_justify="left")
            for header in section.headers:
                table.add_column(header)
            for row in section.rows:
                table.add_row(*row)
            console.print(table)
        else:
            console.print(f"[bold]{section.title}[/bold]")
        for note in section.notes:
            console.print(f"  {note}", highlight=False, markup=False)
