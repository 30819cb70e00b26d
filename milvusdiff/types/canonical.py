"""Canonical forms of values whose text or container form is not unique.

Two stores can return the same JSON value with keys in another order, or `1.0` where `1` was written;
the same instant with another UTC offset. Comparing and hashing canonical forms makes those
spellings equal while every real difference (another number, another key) still shows.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np


def normalize_json_value(value: Any) -> Any:
    """Integral floats become ints (float -> int is exact at any magnitude); containers recurse.

    No magnitude bound: PostgreSQL's jsonb keeps numbers as numeric and prints 1e+16 as
    10000000000000000, so a bound would make the same value canonicalise differently per store.
    """
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): normalize_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize_json_value(v) for v in value]
    return value


def canonical_floats(values: np.ndarray) -> np.ndarray:
    """Floats as digests hash them: their exact bits (so -0.0 and 0.0 differ), except that every NaN,
    whatever its sign and payload, becomes the one quiet NaN. Two floats have equal canonical bits
    exactly when compare's rule without tolerance calls them equal (compare/comparator.py), so compare
    and arbitration never disagree. Other dtypes are returned as they are."""
    if values.dtype.kind != "f":
        return values
    nan = np.isnan(values)
    if not nan.any():
        return values
    out = values.copy()
    out[nan] = np.nan
    return out


def canonical_json(value: Any) -> str:
    """One text per JSON value: sorted keys, no insignificant whitespace, normalised numbers."""
    if isinstance(value, (bytes, bytearray)):
        value = json.loads(value)
    return json.dumps(normalize_json_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json_text(text: str | bytes) -> str:
    """Canonical form of a JSON document given as text (as PostgreSQL or a foreign file returns it)."""
    return canonical_json(json.loads(text))


def same_json(x: Any, y: Any) -> bool:
    """Whether two parsed JSON values have the same canonical_json text, without building it.

    The comparator asks this of every pair of JSON texts that differ, and serialising both sides cost
    several times more than the parse. Equivalence with canonical text equality (tested in
    tests/test_comparator.py against canonical_json on generated values): numbers compare by value (an
    integral float normalises to the int of the same value, -0.0 to 0, and Python compares int with float
    exactly), every NaN equals every NaN, booleans never equal numbers (`true` is not `1`), objects match
    regardless of key order."""
    if type(x) is bool or type(y) is bool:
        return type(x) is type(y) and x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return bool(x == y or (x != x and y != y))
    if isinstance(x, dict) and isinstance(y, dict):
        return len(x) == len(y) and all(key in y and same_json(value, y[key]) for key, value in x.items())
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same_json(a, b) for a, b in zip(x, y, strict=True))
    return type(x) is type(y) and bool(x == y)


def same_json_text(x: str, y: str) -> bool:
    """Whether two JSON texts have the same canonical_json text; text that is not JSON equals only itself.

    Python's own `==` on the parsed values runs in C and already ignores key order and equates 1 with
    1.0 and -0.0 with 0, as the canonical form does. It differs from it in two ways only: True equals 1
    (canonically they differ) and NaN does not equal NaN (canonically it does; inside containers `==`
    agrees, as json.loads returns one NaN object and containers compare items by identity first). So `==`
    decides, unless the texts hold a boolean (`==` said equal) or a NaN (`==` said different); then
    same_json does."""
    if x == y:
        return True
    try:
        parsed_x, parsed_y = json.loads(x), json.loads(y)
    except ValueError:
        return False
    if parsed_x == parsed_y:
        if not any(word in text for text in (x, y) for word in ("true", "false")):
            return True
    elif "NaN" not in x and "NaN" not in y:
        return False
    return same_json(parsed_x, parsed_y)


def parse_timestamptz(value: Any) -> datetime | None:
    """An aware UTC datetime from what pymilvus accepts or returns (ISO text with offset, or datetime).

    A text without an offset is ambiguous; Milvus rejects it unless the collection sets a timezone,
    so it is read as UTC only when it ends in Z or carries an offset, and rejected otherwise.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1_000_000, tz=timezone.utc)
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"TIMESTAMPTZ value {value!r} has no timezone offset")
    return moment.astimezone(timezone.utc)
