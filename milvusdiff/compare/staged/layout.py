"""Stage (a): whether two snapshots are co-partitioned, and which buckets their manifests already settle.

Only manifests and footers are read here. Two snapshots are co-partitioned when both were exported
with the same `buckets` N and bucket hash, carry `$digest`, describe the same fields (so their digests
hash the same bytes), are compared on their primary key under its own name, and agree on whether rows
carry `$partition`. A bucket is settled when its row count, digest sum and placement sum agree; a
snapshot holding duplicate keys settles nothing, because compare reports every duplicated key even
when both sides hold the same duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan import Plan
from milvusdiff.snapshot_format import DIGEST_COLUMN, PARTITION_COLUMN
from milvusdiff.types.buckets import HASH_NAME


@dataclass(frozen=True)
class Layout:
    """Two co-partitioned snapshots: per bucket, each side's part files and whether the bucket is settled."""

    buckets: int
    key_a: str
    key_b: str
    with_partition: bool
    files_a: tuple[tuple[Path, ...], ...]
    files_b: tuple[tuple[Path, ...], ...]
    settled: tuple[bool, ...]
    rows: tuple[int, ...]  # per bucket, the larger side's count from the manifests (to size job groups)

    @property
    def unsettled(self) -> list[int]:
        return [bucket for bucket, done in enumerate(self.settled) if not done]


def co_partitioned(side_a: Side, side_b: Side, plan: Plan, options: CompareOptions) -> Layout | str:
    """The layout when staged compare applies, else the reason it does not (for the summary)."""
    manifest_a, manifest_b = side_a.manifest or {}, side_b.manifest or {}
    reason = _refusal(side_a, side_b, plan, options)
    if reason:
        return reason
    buckets = int(manifest_a["buckets"])
    files_a, files_b = _bucket_files(side_a, manifest_a, buckets), _bucket_files(side_b, manifest_b, buckets)
    if isinstance(files_a, str) or isinstance(files_b, str):
        return files_a if isinstance(files_a, str) else str(files_b)
    stats_a, stats_b = _stats(manifest_a, buckets), _stats(manifest_b, buckets)
    duplicates = bool(manifest_a.get("duplicate_keys") or manifest_b.get("duplicate_keys"))
    settled = tuple(not duplicates and a is not None and a == b for a, b in zip(stats_a, stats_b, strict=True))
    return Layout(
        buckets,
        plan.keys[0].name,
        plan.keys[0].b_name,
        PARTITION_COLUMN in side_a.schema.names,
        files_a,
        files_b,
        settled,
        tuple(max(_rows(a), _rows(b)) for a, b in zip(stats_a, stats_b, strict=True)),
    )


def _refusal(side_a: Side, side_b: Side, plan: Plan, options: CompareOptions) -> str | None:
    manifest_a, manifest_b = side_a.manifest or {}, side_b.manifest or {}
    if not side_a.bucketed or not side_b.bucketed:
        return "not both inputs are bucketed snapshots"
    if manifest_a["buckets"] != manifest_b["buckets"]:
        return f"bucket counts differ ({manifest_a['buckets']} vs {manifest_b['buckets']})"
    if manifest_a.get("bucket_hash") != HASH_NAME or manifest_b.get("bucket_hash") != HASH_NAME:
        return "unknown bucket hash"
    if DIGEST_COLUMN not in side_a.schema.names or DIGEST_COLUMN not in side_b.schema.names:
        return f"not both inputs carry {DIGEST_COLUMN}"
    if _digested(manifest_a.get("spec")) != _digested(manifest_b.get("spec")) or manifest_a.get("spec") is None:
        return "the inputs describe different fields, so their digests are not comparable"
    if options.rename:
        return "columns are renamed"
    primary_a, primary_b = manifest_a.get("primary_key"), manifest_b.get("primary_key")
    if len(plan.keys) != 1 or plan.keys[0].name != primary_a or plan.keys[0].b_name != primary_b:
        return "the compare key is not the primary key the buckets were made from"
    if (PARTITION_COLUMN in side_a.schema.names) != (PARTITION_COLUMN in side_b.schema.names):
        return f"only one input has {PARTITION_COLUMN}"
    return None


def _digested(spec: Any) -> Any:
    """The parts of a spec the row digest depends on (a collection may be compared under another name)."""
    if not isinstance(spec, dict):
        return None
    return spec.get("fields"), spec.get("enable_dynamic_field")


def _bucket_files(side: Side, manifest: dict[str, Any], buckets: int) -> tuple[tuple[Path, ...], ...] | str:
    per_bucket: list[list[Path]] = [[] for _ in range(buckets)]
    on_disk = {path.name: path for path in side.files}
    for entry in manifest.get("files", []):
        bucket = entry.get("bucket")
        if bucket is None:
            continue
        if not 0 <= bucket < buckets or entry["name"] not in on_disk:
            return f"input {side.label.upper()}: the manifest's file {entry['name']!r} does not match the snapshot"
        per_bucket[bucket].append(on_disk[entry["name"]])
    if sum(map(len, per_bucket)) != len(side.files):
        return f"input {side.label.upper()}: part files without a bucket in the manifest"
    return tuple(tuple(files) for files in per_bucket)


def _rows(stats: tuple[Any, ...] | None) -> int:
    return int(stats[0] or 0) if stats is not None else 0


def _stats(manifest: dict[str, Any], buckets: int) -> list[tuple[Any, ...] | None]:
    found: list[tuple[Any, ...] | None] = [None] * buckets
    for entry in manifest.get("bucket_stats", []):
        if 0 <= entry.get("bucket", -1) < buckets:
            found[entry["bucket"]] = (entry.get("rows"), entry.get("digest_sum"), entry.get("placement_sum"))
    return found
