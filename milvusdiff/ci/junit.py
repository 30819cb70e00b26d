"""JUnit XML, the format Jenkins, GitLab and GitHub Actions test reporters all read.

One testcase per compared pair or validated collection: a <failure> when the data differs or a store
warned (exit code 1), an <error> when the check could not be made (exit code 2). The file is written
under a temporary name and renamed, so a CI job never parses half a report.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from milvusdiff.ci.gate import GateCase

_DETAILS_LIMIT = 64_000  # CI viewers choke on megabytes of text; the report file has the rest.


def junit_tree(suite: str, cases: Sequence[GateCase]) -> ET.ElementTree:
    failures = sum(1 for c in cases if c.exit_code == 1)
    errors = sum(1 for c in cases if c.exit_code not in (0, 1))
    seconds = sum(c.seconds for c in cases)
    suites = ET.Element(
        "testsuites", name="milvusdiff", tests=str(len(cases)), failures=str(failures), errors=str(errors)
    )
    node = ET.SubElement(
        suites,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{seconds:.3f}",
    )
    for case in cases:
        element = ET.SubElement(node, "testcase", classname=f"milvusdiff.{suite}", name=case.name)
        element.set("time", f"{case.seconds:.3f}")
        if case.exit_code == 0:
            continue
        tag, kind = ("failure", "differences") if case.exit_code == 1 else ("error", "trouble")
        outcome = ET.SubElement(element, tag, message=case.line, type=kind)
        outcome.text = (case.details or case.line)[:_DETAILS_LIMIT]
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, suite: str, cases: Sequence[GateCase]) -> None:
    """Write the report atomically next to its destination."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            junit_tree(suite, cases).write(handle, encoding="utf-8", xml_declaration=True)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
