"""Canonical JSON text, as the snapshot contract defines it, for values that are not already canonical.

Snapshots store canonical JSON, so equal text is the common case and costs nothing; this module is
only called for the rows whose text differs, which is what makes key order and `1` vs `1.0` free.
"""

from __future__ import annotations

import json
from typing import Any

_EXACT_INT = 2**53


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def canonical_json(text: str | None) -> str | None:
    """Text that is not JSON stays as it is: it then equals only identical text."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
