"""GitHub Actions job summaries: Markdown appended to the file named by GITHUB_STEP_SUMMARY.

Actions shows that file on the run's page, so a failed gate explains itself without downloading
artifacts. Appending (never truncating) is the documented contract: several steps share the file.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "GITHUB_STEP_SUMMARY"


def step_summary_requested() -> bool:
    return bool(os.environ.get(ENV))


def append_step_summary(markdown: str) -> Path | None:
    """Append `markdown` when running under GitHub Actions; return the file written, else None."""
    target = os.environ.get(ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n\n")
    return path
