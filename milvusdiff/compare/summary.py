"""summary.json: the counts, per-column findings and provenance of one comparison."""

from __future__ import annotations

import re
from typing import Any

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan import Plan
from milvusdiff.compare.tally import Tally

VERDICTS = ("a_wrong", "b_wrong", "both_wrong", "in_doubt", "unknown")
_STORES = {"milvus": "milvus", "pg": "pg", "postgres": "pg", "postgresql": "pg"}
_SECRET = re.compile(r"password|passwd|token|secret|api_key|credential", re.IGNORECASE)
_USERINFO = re.compile(r"(\w+://[^/@:\s]*):[^/@\s]*@")


def side_names(side_a: Side, side_b: Side) -> tuple[str, str]:
    """'milvus' and 'pg' when the manifests say so (and they differ), else 'A' and 'B'."""
    store_a, store_b = _STORES.get(side_a.source or ""), _STORES.get(side_b.source or "")
    if store_a and store_b and store_a != store_b:
        return store_a, store_b
    return "A", "B"


def verdict_labels(side_a: Side, side_b: Side) -> dict[str, str]:
    name_a, name_b = side_names(side_a, side_b)
    return {
        "a_wrong": f"{name_a} wrong",
        "b_wrong": f"{name_b} wrong",
        "both_wrong": "both wrong",
        "in_doubt": "in doubt",
        "unknown": "unknown",
    }


def _scrub(value: Any) -> Any:
    """Manifests should hold no credentials; make sure none reaches a report."""
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _USERINFO.sub(r"\1:[redacted]@", value)
    return value


def _input(side: Side) -> dict[str, Any]:
    return {
        "path": str(side.path),
        "files": len(side.files),
        "source": side.source,
        "key": list(side.key) if side.key else None,
        "manifest": _scrub(side.manifest),
    }


def build_summary(
    side_a: Side,
    side_b: Side,
    plan: Plan,
    tally: Tally,
    options: CompareOptions,
    verdicts: dict[str, int] | None,
    elapsed: float,
) -> dict[str, Any]:
    lower_bound = options.max_diffs is not None and tally.written >= options.max_diffs
    counts = {name: tally.classes.get(name, 0) for name in ("only_a", "only_b", "changed")}
    unchanged = None if lower_bound else side_a.rows - tally.duplicate_rows_a - counts["only_a"] - counts["changed"]
    different = bool(tally.written or plan.schema_differs)
    return {
        "rows_a": side_a.rows,
        "rows_b": side_b.rows,
        **counts,
        "unchanged": unchanged,
        "duplicate_a": tally.duplicate_keys_a,
        "duplicate_b": tally.duplicate_keys_b,
        "different": different,
        "lower_bound": lower_bound,
        "max_diffs": options.max_diffs,
        "key": plan.key_names,
        "columns": {
            c.name: {
                "b_name": c.b_name,
                "kind": c.kind.value,
                "mismatches": tally.columns[c.name].mismatches,
                "max_deviation": tally.columns[c.name].max_deviation,
            }
            for c in plan.columns
        },
        "columns_only_a": list(plan.columns_only_a),
        "columns_only_b": list(plan.columns_only_b),
        "columns_incomparable": plan.incomparable,
        "columns_ignored": list(plan.ignored),
        "tolerances": {
            "default": {"atol": options.tolerance.atol, "rtol": options.tolerance.rtol},
            "per_column": {n: {"atol": t.atol, "rtol": t.rtol} for n, t in options.column_tolerance.items()},
        },
        "verdicts": verdicts,
        "verdict_labels": verdict_labels(side_a, side_b),
        "sides": dict(zip(("a", "b"), side_names(side_a, side_b), strict=True)),
        "inputs": {
            "a": _input(side_a),
            "b": _input(side_b),
            "journal": str(options.journal) if options.journal else None,
        },
        "engine": options.engine,
        "elapsed_seconds": round(elapsed, 3),
    }
