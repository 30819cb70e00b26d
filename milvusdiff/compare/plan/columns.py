"""Pair the non-key columns of both sides and decide how each pair is compared."""

from __future__ import annotations

import pyarrow as pa

from milvusdiff.compare.inputs import Side
from milvusdiff.compare.options import CompareOptions
from milvusdiff.compare.plan.kinds import Kind, family, is_vector, kind_of, plain
from milvusdiff.compare.plan.model import Column, KeyColumn, Plan
from milvusdiff.errors import CompareError
from milvusdiff.snapshot_format import DIGEST_COLUMN


def build_columns(side_a: Side, side_b: Side, keys: tuple[KeyColumn, ...], options: CompareOptions) -> Plan:
    rename = options.rename
    # `$digest` describes a row, it is not part of it: never a compared column (staged compare uses it)
    names_a = [n for n in side_a.schema.names if n not in {k.name for k in keys} and n != DIGEST_COLUMN]
    names_b = [n for n in side_b.schema.names if n not in {k.b_name for k in keys} and n != DIGEST_COLUMN]
    keyed = sorted(set(options.json_columns) & {k.name for k in keys})
    if keyed:
        raise CompareError(f"`json_columns`: {keyed[0]!r} is a key column; keys are compared exactly")
    _check_named(options, names_a, names_b)
    wanted = set(options.columns) if options.columns else None
    ignored = set(options.ignore)
    inverse = {b: a for a, b in rename.items()}

    def selected(a_name: str) -> bool:
        return (wanted is None or a_name in wanted) and a_name not in ignored and rename.get(a_name) not in ignored

    columns: list[Column] = []
    only_a: list[str] = []
    incomparable: dict[str, str] = {}
    for name in filter(selected, names_a):
        b_name = rename.get(name, name)
        if b_name not in names_b:
            only_a.append(name)
            continue
        field_a, field_b = side_a.schema.field(name), side_b.schema.field(b_name)
        if family(field_a.type) != family(field_b.type):
            incomparable[name] = f"{field_a.type} vs {field_b.type}"
            continue
        _check_width(name, field_a.type, field_b.type)
        kind = kind_of(field_a, field_b, as_json=name in options.json_columns)
        if kind is Kind.JSON and family(field_a.type) != "string":
            raise CompareError(f"column {name!r} cannot be compared as JSON: it holds {field_a.type}, not text")
        columns.append(
            Column(
                name,
                b_name,
                kind,
                options.tolerance_for(name),
                plain(field_a.type),
                plain(field_b.type),
                vector=is_vector(field_a) and is_vector(field_b),
            )
        )
    targets = {rename.get(n, n) for n in names_a}
    only_b = [n for n in names_b if n not in targets and selected(inverse.get(n, n))]
    return Plan(keys, tuple(columns), tuple(only_a), tuple(only_b), incomparable, tuple(sorted(ignored)))


def _check_width(name: str, type_a: pa.DataType, type_b: pa.DataType) -> None:
    """Vectors of different dimensions are not two versions of one collection: refuse, do not diff."""
    for check, width in ((pa.types.is_fixed_size_list, "list_size"), (pa.types.is_fixed_size_binary, "byte_width")):
        if check(type_a) and check(type_b) and getattr(type_a, width) != getattr(type_b, width):
            raise CompareError(
                f"column {name!r}: dimension mismatch, {getattr(type_a, width)} in A vs {getattr(type_b, width)} in B"
            )


def _check_named(options: CompareOptions, names_a: list[str], names_b: list[str]) -> None:
    known = set(names_a) | set(names_b)
    for option, names in (
        ("--columns", options.columns),
        ("--ignore", options.ignore),
        ("--tol", options.column_tolerance),
        ("--json", options.json_columns),
    ):
        unknown = sorted(set(names) - known)
        if unknown:
            raise CompareError(f"{option}: no such column in either input: {', '.join(unknown)}")


def check_rename(rename: dict[str, str], names_a: list[str], names_b: list[str]) -> None:
    """`--map A_NAME=B_NAME` names a column on each side; a name that is not there is a mistake, not a difference."""
    for a_name, b_name in rename.items():
        for name, names, side in ((a_name, names_a, "A"), (b_name, names_b, "B")):
            if name not in names:
                raise CompareError(f"--map {a_name}={b_name}: no column {name!r} in {side}")
