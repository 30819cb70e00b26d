"""Benchmark: staged compare of bucketed snapshots against the full compare of the same files. Prints; asserts nothing.

Snapshots are written from generated Arrow tables by the export's own writer (`write_table_snapshot`:
`$digest`, buckets, manifest exactly as `export --buckets N` writes them): an int64 key, a float64, a
string and a DIM-dim float32 vector. Figures, each compare in a subprocess of its own (peak RSS is
VmHWM; with --jobs the largest worker's too):

- equal snapshots (B = hard links to A's files) at --rows and at --big rows: the staged compare answers
  from the manifests, so its time should stay flat as rows grow (goal < 1 s);
- --big rows with --changed (default 1%) of keys changed in B: staged against unstaged (`--no-staged`)
  on the same files (goal: ratio <= 0.5), and staged with --jobs 2 (goal: peak RSS < 1 GB);
- the writer's throughput while generating (hashing, bucketing, writing: the export's cost minus
  the store read).

    python bench/bench_staged.py                          # 1M and 10M rows x 128 dims, 64 buckets
    python bench/bench_staged.py --rows 200000 --big 2000000
    python bench/bench_staged.py --keep / --reuse DIR     # keep or reuse the generated snapshots
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BATCH = 65536


def _spec(dim: int) -> Any:
    from milvusdiff.types.spec import CollectionSpec, FieldSpec

    return CollectionSpec(
        "bench_staged",
        (
            FieldSpec("id", "INT64", is_primary=True),
            FieldSpec("score", "DOUBLE"),
            FieldSpec("title", "VARCHAR", max_length=64),
            FieldSpec("vec", "FLOAT_VECTOR", dim=dim),
        ),
    )


def _batches(rows: int, dim: int, changed: float, side: str) -> Iterator[Any]:
    import numpy as np
    import pyarrow as pa

    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        rng = np.random.default_rng(start)
        ids = np.arange(start, start + n, dtype=np.int64)
        vectors = rng.random((n, dim), dtype=np.float32)
        if side == "b":  # the same rows, but a fraction of keys (spread over all buckets) get another vector
            hit = np.random.default_rng(start + 1).random(n) < changed
            vectors[hit, 0] += 1.0
        yield pa.table(
            {
                "id": ids,
                "score": rng.random(n),
                "title": pa.array([f"doc {i}" for i in range(start, start + n)]),
                "vec": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            }
        )


def generate(out: Path, rows: int, dim: int, buckets: int, changed: float, side: str) -> float:
    from milvusdiff.export.tables import write_table_snapshot

    started = time.perf_counter()
    write_table_snapshot(_batches(rows, dim, changed, side), _spec(dim), out, source=side, buckets=buckets)
    return time.perf_counter() - started


def linked_copy(source: Path, target: Path) -> None:
    """An equal snapshot without writing it again: hard links to every file."""
    target.mkdir()
    for path in source.iterdir():
        os.link(path, target / path.name)


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def measure(argv: list[str]) -> None:
    """Child process: one compare, timed after its imports."""
    a, b, staged, jobs = argv[0], argv[1], argv[2] == "staged", int(argv[3])
    import milvusdiff.compare.engine_duckdb
    import milvusdiff.compare.staged  # noqa: F401  (imports are not what is measured)
    from milvusdiff.compare import compare
    from milvusdiff.compare.api import make_options

    options = make_options(staged=staged, jobs=jobs, out=Path(tempfile.mkdtemp(prefix="bench-staged-out-")) / "o")
    started = time.perf_counter()
    result = compare(a, b, options)
    seconds = time.perf_counter() - started
    shutil.rmtree(options.out.parent)  # type: ignore[union-attr]
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = result.summary
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
                "worker_peak_mb": workers,
                "changed": summary.changed,
                "staged": None if summary.staged is None else summary.staged.__dict__,
            }
        )
    )


def child(*args: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        measure(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--buckets", type=int, default=64)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", type=Path)
    options = parser.parse_args()
    work = options.reuse or Path(tempfile.mkdtemp(prefix="bench-staged-"))
    try:
        run(options, work)
    finally:
        if options.keep or options.reuse:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(options: argparse.Namespace, work: Path) -> None:
    dim, buckets = options.dim, options.buckets
    small, big = work / f"a-{options.rows}", work / f"a-{options.big}"
    changed = work / f"b-{options.big}"
    for path, rows, side in ((small, options.rows, "a"), (big, options.big, "a"), (changed, options.big, "b")):
        if not path.exists():
            seconds = generate(path, rows, dim, buckets, options.changed, side)
            print(f"wrote {path.name}: {rows:,} rows x {dim} dims, {buckets} buckets, {rows / seconds:,.0f} rows/s")
    for path in (small, big):
        if not (path.parent / f"{path.name}-copy").exists():
            linked_copy(path, path.parent / f"{path.name}-copy")
    print("(a shared 2-core machine: single runs, other work running; read the ratios, not the seconds)")
    print(f"\n{'case':<44}{'seconds':>9}{'peak MB':>9}{'worker MB':>11}  notes")
    for rows, path in ((options.rows, small), (options.big, big)):
        found = child(path, f"{path}-copy", "staged", 1)
        settled = found["staged"]["settled"]
        line = f"equal, {rows:,} rows (manifests only)"
        print(f"{line:<44}{found['seconds']:>9.2f}{found['peak_rss_mb']:>9.0f}{'-':>11}  settled {settled}/{buckets}")
    full = child(big, changed, "full", 1)
    staged = child(big, changed, "staged", 1)
    jobs = child(big, changed, "staged", 2)
    assert full["changed"] == staged["changed"] == jobs["changed"], (full, staged, jobs)
    for label, found in (("unstaged (--no-staged)", full), ("staged", staged), ("staged --jobs 2", jobs)):
        line = f"{options.changed:.0%} changed, {options.big:,} rows: {label}"
        worker = f"{found['worker_peak_mb']:.0f}" if label.endswith("2") else "-"
        notes = "" if found["staged"] is None else f"candidates {found['staged']['candidate_keys']:,}"
        print(f"{line:<44}{found['seconds']:>9.2f}{found['peak_rss_mb']:>9.0f}{worker:>11}  {notes}")
    print(f"\nstaged / unstaged: {staged['seconds'] / full['seconds']:.2f} (goal <= 0.5)")
    print(f"staged --jobs 2 / unstaged: {jobs['seconds'] / full['seconds']:.2f}")
    print(f"changed keys found: {full['changed']:,}")


if __name__ == "__main__":
    main()
