"""What `compare()` returns: the summary (as written to summary.json) and where the outputs are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CompareResult:
    summary: dict[str, Any]
    out: Path | None = None

    @property
    def different(self) -> bool:
        return bool(self.summary["different"])

    @property
    def exit_code(self) -> int:
        """As diff(1): 0 when the inputs hold the same data, 1 when they differ."""
        return 1 if self.different else 0

    def path(self, name: str) -> Path | None:
        return self.out / name if self.out is not None else None

    @property
    def diff_path(self) -> Path | None:
        return self.path("diff.parquet")

    @property
    def summary_path(self) -> Path | None:
        return self.path("summary.json")
