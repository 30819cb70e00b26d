"""What `compare()` returns: the typed summary, the exit code, and the differing rows as a Polars frame."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from milvusdiff.compare.summary import SUMMARY_FILE, Summary
from milvusdiff.errors import CompareError

if TYPE_CHECKING:
    import polars as pl

DIFF_FILE = "diff.parquet"


@dataclass(frozen=True)
class CompareResult:
    """`summary` as written to summary.json; `out` the output directory when one was asked for."""

    summary: Summary
    out: Path | None = None
    kept_diff: Path | None = None  # without `out`: diff.parquet in a directory that lives as long as this result

    @classmethod
    def keeping(cls, summary: Summary, diff: Path, temp_dir: Path | None) -> CompareResult:
        """A result for a comparison without `out`: its diff.parquet moves out of the workspace (about to be
        removed) into a directory of its own, removed when the result is garbage-collected or at exit."""
        holder = Path(tempfile.mkdtemp(prefix="milvusdiff-diff-", dir=temp_dir))
        kept = shutil.move(diff, holder / DIFF_FILE)
        result = cls(summary, None, Path(kept))
        weakref.finalize(result, shutil.rmtree, holder, True)
        return result

    @property
    def different(self) -> bool:
        return self.summary.different

    @property
    def store_warnings(self) -> list[str]:
        return list(self.summary.store_warnings)

    @property
    def exit_code(self) -> int:
        """As diff(1): 0 when the inputs hold the same data, 1 when they differ or a store raised warnings."""
        return self.summary.exit_code

    def path(self, name: str) -> Path | None:
        return self.out / name if self.out is not None else None

    @property
    def diff_path(self) -> Path | None:
        return self.path(DIFF_FILE) or self.kept_diff

    @property
    def summary_path(self) -> Path | None:
        return self.path(SUMMARY_FILE)

    def diff(self) -> pl.LazyFrame:
        """One row per differing key: the key columns, `class` (only_a, only_b, changed, duplicate_a/_b),
        `changed_columns`, both sides' values of the changed columns (`col__a`, `col__b`) and `verdict`.

        With `out` the file there is scanned lazily, so a diff of millions of rows is never loaded whole.
        Without it the rows are read into memory: the frame must stay valid after this result is gone,
        and the file goes with it."""
        import polars as pl

        if self.out is not None:
            return pl.scan_parquet(self.out / DIFF_FILE)
        if self.kept_diff is None:
            raise CompareError("this result has no diff: it was built without an output directory or a kept diff")
        return pl.read_parquet(self.kept_diff).lazy()
