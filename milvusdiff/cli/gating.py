"""The CI side of `compare` and `validate`: JUnit XML on request, the GitHub job summary when present.

A command wraps its work in `gate(...)` and records the outcome; when the work raises instead, the
trouble is recorded as an error case before the exception goes on to become exit code 2, so the CI
job finds a report either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from milvusdiff.errors import MilvusDiffError, first_line

if TYPE_CHECKING:
    from milvusdiff.compare.summary import Summary

Record = Callable[["Summary", Path | None, int], None]


@contextmanager
def gate(suite: str, name: str, junit_xml: Path | None) -> Iterator[Record]:
    from milvusdiff.ci.gate import GateCase, result_case, trouble_case
    from milvusdiff.ci.publish import publish, wanted

    started = time.perf_counter()
    cases: list[GateCase] = []

    def record(summary: Summary, out: Path | None, exit_code: int) -> None:
        if wanted(junit_xml):
            cases.append(result_case(name, summary, out, exit_code, time.perf_counter() - started))

    try:
        yield record
    except (MilvusDiffError, OSError, ValueError) as exc:
        publish(suite, [trouble_case(name, first_line(exc), time.perf_counter() - started)], junit_xml=junit_xml)
        raise
    publish(suite, cases, junit_xml=junit_xml)
