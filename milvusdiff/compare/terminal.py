"""The summary on a terminal: the same sections as report.md, drawn as rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from milvusdiff.compare.report import build_sections


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for section in build_sections(summary, sample=[]):
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
