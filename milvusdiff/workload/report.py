"""What a workload did: operations and rows by kind, failed writes, the keys that should be live.

The counters are shared by every worker and guarded by one lock; they are touched once per operation,
never per row, so the lock costs nothing next to a Milvus call.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from milvusdiff.errors import InDoubtError

_ERROR_SAMPLES = 5


@dataclass(frozen=True)
class ValidationRun:
    """One call of the validate hook: when (seconds into the run) and what it returned."""

    elapsed: float
    result: Any


@dataclass
class WorkloadReport:
    collection: str
    preset: str
    seed: int
    threads: int
    batch: int
    reproducible: bool  # same seed, threads and sizes give the same final state
    elapsed: float = 0.0  # writing time: validation pauses are not counted
    validation_seconds: float = 0.0
    ops: Counter[str] = field(default_factory=Counter)  # "load", "insert", "upsert", "delete:<kind>"
    rows: Counter[str] = field(default_factory=Counter)
    sync_errors: int = 0  # includes the in-doubt ones
    in_doubt_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    stopped_early: str | None = None
    live_keys: list[Any] = field(default_factory=list)
    uncertain_keys: list[Any] = field(default_factory=list)
    validations: list[ValidationRun] = field(default_factory=list)

    @property
    def total_ops(self) -> int:
        return sum(self.ops.values())

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def ops_per_second(self) -> float:
        return self.total_ops / self.elapsed if self.elapsed > 0 else 0.0

    def summary_lines(self) -> list[str]:
        """A few lines for people: what ran, how fast, and every failure, never hidden."""
        ops = ", ".join(f"{name} {count}" for name, count in sorted(self.ops.items()))
        validating = f" (+{self.validation_seconds:.1f} s validating)" if self.validations else ""
        lines = [
            f"workload {self.preset} -> {self.collection}: {self.total_ops} operations ({ops})",
            f"  {self.total_rows} rows written in {self.elapsed:.1f} s{validating}, {self.ops_per_second:.1f} ops/s, "
            f"{self.threads} thread(s), batch {self.batch}, seed {self.seed}"
            + ("" if self.reproducible else " (final state not reproducible: duration or auto_id)"),
            f"  {len(self.live_keys)} keys live",
        ]
        if self.sync_errors:
            lines.append(
                f"  {self.sync_errors} writes failed ({self.in_doubt_errors} in doubt); "
                f"{len(self.uncertain_keys)} keys left as the journal records them"
            )
            lines.extend(f"    {sample}" for sample in self.error_samples)
        if self.stopped_early:
            lines.append(f"  stopped early: {self.stopped_early}")
        lines.extend(f"  validate at {v.elapsed:.1f} s: {v.result}" for v in self.validations)
        return lines


class Tally:
    """The report's counters while workers run."""

    def __init__(self, report: WorkloadReport) -> None:
        self.report = report
        self._lock = threading.Lock()

    def count(self, op: str, rows: int) -> None:
        with self._lock:
            self.report.ops[op] += 1
            self.report.rows[op] += rows

    def error(self, op: str, exc: Exception) -> int:
        """Record a failed write; returns the number of failures so far."""
        with self._lock:
            self.report.sync_errors += 1
            if isinstance(exc, InDoubtError):
                self.report.in_doubt_errors += 1
            if len(self.report.error_samples) < _ERROR_SAMPLES:
                self.report.error_samples.append(f"{op}: {exc}")
            return self.report.sync_errors

    def totals(self) -> tuple[int, int]:
        with self._lock:
            return self.report.total_ops, self.report.total_rows
