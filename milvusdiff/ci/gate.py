"""One verdict line per compared pair or validated collection, for the places a CI job reads.

The pytest plugin's failure message, the JUnit testcase's failure message and the terminal line of
`validate --all` all say the same thing in the same words, so they come from here: counts, verdicts,
the first differing keys and where the full report is. Only the differing rows are read (the first few
of diff.parquet), never the snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from milvusdiff.compare.summary import DIFFERENCE_CLASSES, Summary

FIRST_KEYS = 5


@dataclass(frozen=True)
class GateCase:
    """The outcome of one compared pair or validated collection, as a CI system records it.

    `exit_code` follows the command line: 0 the data agrees, 1 differences or store warnings,
    2 trouble (the check could not be made). `line` is the one-line verdict; `details` the Markdown
    report when there is one.
    """

    name: str
    exit_code: int
    line: str
    details: str = ""
    seconds: float = 0.0
    report: Path | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def first_keys(
    diff_path: Path | None, keys: list[str], labels: Mapping[str, str], limit: int = FIRST_KEYS
) -> list[str]:
    """'key (class, verdict)' for the `limit` smallest differing keys: the ones the CLI's table shows first."""
    if diff_path is None or not diff_path.exists() or limit <= 0 or not keys:
        return []
    from milvusdiff.compare.shown import first_differing

    rows, _ = first_differing(diff_path, keys, limit)
    out = []
    for row in rows:
        key = ",".join(str(row[k]) for k in keys)
        named = [labels.get(str(row[t]), str(row[t])) for t in ("class", "verdict") if row.get(t)]
        out.append(f"{key} ({', '.join(named)})" if named else key)
    return out


def verdict_line(name: str, summary: Summary, *, diff_path: Path | None = None, report: Path | None = None) -> str:
    """`name: changed 2, only_a 1; verdicts: milvus wrong 3; first keys: 7 (changed, milvus wrong); report: ...`"""
    if not summary.exit_code:
        return f"{name}: no differences ({summary.rows_a} rows)"
    counts = [f"{c} {getattr(summary, c)}" for c in DIFFERENCE_CLASSES if getattr(summary, c)]
    parts = [", ".join(counts) if counts else "rows agree"]
    labels = summary.verdict_labels
    named = [f"{labels.get(v, v)} {n}" for v, n in (summary.verdicts or {}).items() if n]
    if named:
        parts.append("verdicts: " + ", ".join(named))
    keys = first_keys(diff_path, summary.key, labels)
    if keys:
        parts.append("first keys: " + "; ".join(keys))
    warnings = summary.store_warnings
    if warnings:
        parts.append(f"store warnings: {len(warnings)} ({warnings[0]})")
    if report is not None:
        parts.append(f"report: {report}")
    return f"{name}: " + "; ".join(parts)


def result_case(name: str, summary: Summary, out: Path | None, exit_code: int, seconds: float) -> GateCase:
    """The gate's view of one finished comparison (compare's or validate's output directory)."""
    report = out / "report.md" if out is not None else None
    diff = out / "diff.parquet" if out is not None else None
    line = verdict_line(name, summary, diff_path=diff, report=report)
    details = report.read_text(encoding="utf-8") if report is not None and report.exists() else line
    return GateCase(name, exit_code, line, details, seconds, report)


def trouble_case(name: str, message: str, seconds: float = 0.0) -> GateCase:
    """The gate's view of a check that could not be made (exit code 2)."""
    line = f"{name}: error: {message}"
    return GateCase(name, 2, line, line, seconds)
