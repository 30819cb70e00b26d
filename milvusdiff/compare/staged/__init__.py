"""Staged compare of two co-partitioned (bucketed) snapshots: the cost follows the differences.

(a) layout.py: buckets whose row count and digest sums agree in both manifests are settled unread;
(b) bucket.py: in the other buckets only key + `$digest` (+ `$partition`) are joined, giving the keys
    that may differ (one side only, duplicated, or a different digest);
(c) bucket.py: the full rows of those keys are copied, exactly typed, into small scratch files, and
    run.py hands them to the ordinary engine and comparator as reduced inputs, so every equality rule,
    report and verdict is the one an unbucketed compare applies.

Equal digests mean equal rows (the digest covers every field bit for bit, and the comparator never
calls bit-identical values different), so leaving them out cannot hide a difference; with tolerances
a different digest only makes a row a candidate, and the comparator decides.
"""

from milvusdiff.compare.staged.run import Reduced, reduce_sides

__all__ = ["Reduced", "reduce_sides"]
