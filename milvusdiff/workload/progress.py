"""A live progress line for a workload (rich), shown only on a terminal.

Logs, CI and pipes get nothing: a progress bar redrawn into a file is noise, and the report at the
end says everything the bar did.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class WorkloadProgress:
    def __init__(self, enabled: bool, total_ops: int | None, description: str) -> None:
        console = Console(stderr=True)
        self._progress: Progress | None = None
        if enabled and console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("ops  {task.fields[rate]:>8.1f} ops/s  {task.fields[rows]} rows"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total_ops, rate=0.0, rows=0)

    def __enter__(self) -> WorkloadProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, ops: int, rows: int, elapsed: float) -> None:
        if self._progress is not None:
            rate = ops / elapsed if elapsed > 0 else 0.0
            self._progress.update(self._task, completed=ops, rate=rate, rows=rows)
