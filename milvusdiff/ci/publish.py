"""Hand a gate's outcome to the CI system: JUnit XML when asked, the GitHub job summary when present.

`compare` and `validate` (one collection or `--all`) call this once, after their outputs exist, and
also when they fail with trouble, so a CI job always finds a report that says what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from milvusdiff.ci.gate import GateCase
from milvusdiff.ci.junit import write_junit
from milvusdiff.ci.step_summary import append_step_summary, step_summary_requested


def wanted(junit_xml: Path | None) -> bool:
    """Whether a gate's outcome goes anywhere: building it reads diff.parquet, which a plain run skips."""
    return junit_xml is not None or step_summary_requested()


def publish(suite: str, cases: Sequence[GateCase], *, junit_xml: Path | None) -> None:
    if junit_xml is not None:
        write_junit(junit_xml, suite, cases)
    if cases:
        append_step_summary("\n\n".join(c.details or c.line for c in cases))
