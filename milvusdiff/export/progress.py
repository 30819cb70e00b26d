"""A progress bar on a terminal, and nothing at all anywhere else (pipes, CI logs, --quiet)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Advance(Protocol):
    def __call__(self, rows: int) -> None: ...


def _ignore(rows: int) -> None:
    """The silent progress: no bar, no output."""


@contextmanager
def progress(label: str, total: Callable[[], int | None], *, quiet: bool) -> Iterator[Advance]:
    """Yield a function that advances a bar by a number of rows; the ETA comes from `total()` (count(*)),
    asked again as rows arrive while it is unknown (a count running beside the read)."""
    if quiet or not sys.stderr.isatty():
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total() or None, rate="")

        def advance(rows: int) -> None:
            speed = bar.tasks[task].speed
            known = bar.tasks[task].total or total() or None
            bar.update(task, advance=rows, total=known, rate=f"{speed:,.0f} rows/s" if speed else "")

        yield advance
