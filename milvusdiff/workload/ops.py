"""The operation mix of a workload, and how each delete is phrased.

Deletes come in the four forms applications use: by ids, by an `in` filter on the key, by a key
range, and by a scalar predicate within a key range. Each plan carries the exact positions it
removes, computed from the worker's own tracked state, so the tracked live set stays equal to what
the stores hold without reading anything back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from milvusdiff.errors import ConfigError
from milvusdiff.workload.pool import KeyPool

OPERATIONS = ("insert", "upsert", "delete")
DEFAULT_OPS = {"insert": 60, "upsert": 25, "delete": 15}
DELETE_KINDS = ("ids", "in", "range", "scalar")


def parse_ops(text: str) -> dict[str, int]:
    """`insert=60,upsert=25,delete=15` -> weights; unnamed operations get weight 0."""
    weights = dict.fromkeys(OPERATIONS, 0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in weights:
            raise ConfigError(f"--ops: expected name=weight with name in {', '.join(OPERATIONS)}, got {part!r}")
        try:
            weights[name] = int(value)
        except ValueError:
            raise ConfigError(f"--ops: weight of {name} must be an integer, got {value.strip()!r}") from None
    return check_ops(weights)


def check_ops(ops: Mapping[str, float]) -> dict[str, int]:
    unknown = sorted(set(ops) - set(OPERATIONS))
    if unknown:
        raise ConfigError(f"unknown operation {unknown[0]!r} (operations: {', '.join(OPERATIONS)})")
    if any(v < 0 for v in ops.values()) or sum(ops.values()) <= 0:
        raise ConfigError("operation weights must be non-negative and not all zero")
    return {name: int(ops.get(name, 0)) for name in OPERATIONS}


@dataclass(frozen=True)
class DeletePlan:
    kind: str
    positions: np.ndarray  # the pool positions this delete removes
    ids: list[Any] | None = None
    filter: str | None = None


def plan_delete(
    kind: str,
    pool: KeyPool,
    rng: np.random.Generator,
    size: int,
    keys: Callable[[np.ndarray], list[Any]],
    key_name: str,
    probe_name: str | None,
) -> DeletePlan:
    """A delete of about `size` live keys of `pool` in the given form; `keys` maps ordinals to key values.

    Key ranges are only safe when the pool's keys are a contiguous block (not with auto_id, where
    Milvus interleaves the workers' keys); there, the scalar form narrows an `in` list instead.
    """
    if kind == "ids":
        positions = pool.sample(rng, size)
        return DeletePlan(kind, positions, ids=keys(pool.ordinals[positions]))
    if kind == "in":
        positions = pool.sample(rng, size)
        return DeletePlan(kind, positions, filter=f"{key_name} in {_literal(keys(pool.ordinals[positions]))}")
    contiguous = pool.first_ordinal is not None
    if contiguous:
        lo, hi = pool.window(rng, size if kind == "range" else 2 * size)
        scope = np.arange(lo, hi + 1)
        bounds = keys(pool.ordinals[[lo, hi]])
        where = f"{key_name} >= {_literal(bounds[0])} and {key_name} <= {_literal(bounds[1])}"
    else:
        scope = pool.sample(rng, 2 * size)
        where = f"{key_name} in {_literal(keys(pool.ordinals[scope]))}"
    scope = scope[pool.live[scope]]
    if kind == "range" or probe_name is None:
        return DeletePlan("range" if contiguous else "in", scope, filter=where)
    valid = scope[pool.probe_valid[scope]]
    if len(valid) == 0:
        return DeletePlan("range" if contiguous else "in", scope, filter=where)
    threshold = int(np.median(pool.probe[valid]))
    matched = valid[pool.probe[valid] <= threshold]
    return DeletePlan(kind, matched, filter=f"{where} and {probe_name} <= {threshold}")


def _literal(value: Any) -> str:
    """A Milvus filter literal: numbers as is, strings double-quoted with JSON escapes."""
    return json.dumps(value, ensure_ascii=False)
