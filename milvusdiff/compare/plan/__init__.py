"""The comparison plan: key, column pairs and how each pair is compared."""

from __future__ import annotations

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan.columns import build_columns, check_rename
from milvusdiff.compare.plan.keys import resolve_keys
from milvusdiff.compare.plan.kinds import Kind
from milvusdiff.compare.plan.model import Column, KeyColumn, Plan, a_col, b_col, flag_col


def build_plan(side_a: Side, side_b: Side, options: CompareOptions) -> Plan:
    check_rename(options.rename, side_a.schema.names, side_b.schema.names)
    keys = resolve_keys(side_a, side_b, options.key, options.rename)
    return build_columns(side_a, side_b, keys, options)


__all__ = ["Column", "KeyColumn", "Kind", "Plan", "a_col", "b_col", "build_plan", "flag_col"]
