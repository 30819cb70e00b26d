"""Keyed diff of two snapshots: DuckDB and Polars engines, journal arbitration, reports."""

from __future__ import annotations

from milvusdiff.compare.api import compare, make_options
from milvusdiff.compare.options import CompareOptions, Tolerance
from milvusdiff.compare.result import CompareResult

__all__ = ["CompareOptions", "CompareResult", "Tolerance", "compare", "make_options"]
