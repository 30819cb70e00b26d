"""The peer: datacompy 1.1 with its Polars backend, on the benchmark's two files.

Runs in .venv-peer (datacompy needs polars<1.45) as a subprocess of bench_compare.py, and prints one
JSON line: seconds, peak RSS, and the counts datacompy reports.
"""

from __future__ import annotations

import json
import sys
import time


def peak_rss_mb() -> float:
    """VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(path_a: str, path_b: str) -> None:
    import datacompy
    import polars as pl

    started = time.perf_counter()
    compare = datacompy.PolarsCompare(pl.read_parquet(path_a), pl.read_parquet(path_b), join_columns="id")
    intersect = len(compare.intersect_rows)
    counts = {
        "only_a": len(compare.df1_unq_rows),
        "only_b": len(compare.df2_unq_rows),
        "changed": intersect - compare.count_matching_rows(),
    }
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "counts": counts}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
