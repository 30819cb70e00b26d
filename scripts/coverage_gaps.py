"""Name the modules whose line coverage is under 80%, from coverage.py's JSON report.

No threshold fails the build (a number to game helps nobody); the list says where tests are thin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

THRESHOLD = 80.0


def main(report: str) -> int:
    files = json.loads(Path(report).read_text(encoding="utf-8"))["files"]
    thin = sorted(
        (data["summary"]["percent_covered"], name)
        for name, data in files.items()
        if data["summary"]["percent_covered"] < THRESHOLD
    )
    if not thin:
        print(f"every module is at {THRESHOLD:.0f}% line coverage or more")
        return 0
    print(f"modules under {THRESHOLD:.0f}% line coverage:")
    for percent, name in thin:
        print(f"  {percent:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".coverage.json"))
