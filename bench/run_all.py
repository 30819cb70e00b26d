"""`make bench`: every benchmark once, each in its own process, with its default sizes.

Each script prints its own figures and the ratio against the raw driver or peer it measured in the
same run; nothing here asserts a speed. `--quick` runs every script at a small size, to check that
they all still run. Extra arguments after `--` go to every script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_insert.py", "bench_export.py", "bench_compare.py", "bench_concurrent.py"]
QUICK_ARGS = {
    "bench_insert.py": ["--rows", "20000"],
    "bench_export.py": ["--rows", "20000"],
    "bench_compare.py": ["--rows", "100000"],
    "bench_concurrent.py": ["--ops", "2000"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: check that every script runs")
    parser.add_argument("--only", nargs="*", default=SCRIPTS, choices=SCRIPTS)
    args = parser.parse_args()
    failed = []
    for script in args.only:
        extra = QUICK_ARGS[script] if args.quick else []
        print(f"\n=== {script} {' '.join(extra)}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / script), *extra], check=False)
        print(f"=== {script}: exit {done.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
        if done.returncode:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
