"""Keyed diff of two snapshots: DuckDB and Polars engines, journal arbitration, reports.

The entry points load on first use, so the CLI can read option defaults from here without
importing the engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milvusdiff.compare.api import compare, make_options
    from milvusdiff.compare.options import CompareOptions
    from milvusdiff.compare.result import CompareResult
    from milvusdiff.compare.tolerance import Tolerance

_EXPORTS = {
    "compare": "milvusdiff.compare.api",
    "make_options": "milvusdiff.compare.api",
    "CompareOptions": "milvusdiff.compare.options",
    "Tolerance": "milvusdiff.compare.tolerance",
    "CompareResult": "milvusdiff.compare.result",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'milvusdiff.compare' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = ["CompareOptions", "CompareResult", "Tolerance", "compare", "make_options"]
