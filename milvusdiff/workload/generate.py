"""Rows for a preset, generated a column at a time: keys, every field, nulls, defaults, dynamic keys.

Generation is seeded by the caller's numpy Generator and draws in schema order, so the same generator
state always yields the same rows. Columns are built with numpy (see `columns`); the list of row dicts
pymilvus needs is assembled once at the end. The numeric columns stay available as numpy arrays, so
a caller (the workload runner) can track values it will later filter on without reading them back.

Keys are derived from integer ordinals chosen by the caller: an INT64 key is the ordinal itself, a
VARCHAR key is the field's prefix plus the ordinal zero-padded to 12 digits, so that string order
equals ordinal order and a key range in a filter means the same set of rows as the ordinal range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from milvusdiff.errors import SchemaError
from milvusdiff.types.spec import FieldSpec
from milvusdiff.types.typemap import VECTOR_TYPES
from milvusdiff.workload import columns as gen
from milvusdiff.workload.schemas import INT_RANGES, Hints, Preset

KEY_DIGITS = 12
_STR = np.dtypes.StringDType()


@dataclass(frozen=True)
class Column:
    """One generated column: the Python values (None where null), and which rows leave the key out."""

    values: list[Any]
    null: np.ndarray
    omitted: np.ndarray
    raw: np.ndarray | None = None  # the numpy values of a scalar column, before nulls


@dataclass(frozen=True)
class Batch:
    rows: list[dict[str, Any]]
    columns: dict[str, Column]

    def stored_integers(self, f: FieldSpec) -> tuple[np.ndarray, np.ndarray]:
        """An integer field's values as Milvus stores them (defaults filled in) and where they are not null."""
        column = self.columns[f.name]
        if column.raw is None:
            raise SchemaError(f"field {f.name!r} is not an integer column")
        values = column.raw.astype(np.int64, copy=True)
        filled = column.omitted | column.null if f.default_value is not None else column.omitted
        values[filled] = f.default_value if f.default_value is not None else 0
        valid = ~column.null if f.default_value is None else np.ones(len(values), dtype=bool)
        return values, valid


class RowGenerator:
    """Generates rows for one preset.

    `null_rate` / `default_rate` / `dynamic_presence`, when given, apply to every nullable / defaulted /
    dynamic field and win over the preset's hints: a run-level request is what a caller (or a test)
    wants measured. `dynamic_presence=1.0` gives every row every dynamic key, which makes Milvus Lite
    3.2's upsert (it merges the old row's dynamic keys instead of replacing them) agree with Milvus's
    documented override, when the point of a run is not to show that difference.
    """

    def __init__(
        self,
        preset: Preset,
        *,
        null_rate: float | None = None,
        default_rate: float | None = None,
        dynamic_presence: float | None = None,
    ) -> None:
        rates = (("null_rate", null_rate), ("default_rate", default_rate), ("dynamic_presence", dynamic_presence))
        for name, rate in rates:
            if rate is not None and not 0 <= rate <= 1:
                raise SchemaError(f"{name} must be from 0 to 1, got {rate}")
        self.preset = preset
        self.spec = preset.spec
        self.key = preset.spec.primary
        self._null_rate = null_rate
        self._default_rate = default_rate
        self._dynamic_presence = dynamic_presence
        prefix = preset.hint(self.key.name).prefix
        if self.key.type == "VARCHAR" and len(prefix.encode("utf-8")) + KEY_DIGITS > (self.key.max_length or 0):
            raise SchemaError(
                f"field {self.key.name!r}: max_length {self.key.max_length} cannot hold generated keys "
                f"({prefix!r} + {KEY_DIGITS} digits)"
            )
        self._prefix = prefix

    def keys(self, ordinals: np.ndarray) -> list[Any]:
        """The primary-key values of ordinals, as pymilvus takes them."""
        ordinals = np.asarray(ordinals, dtype=np.int64)
        if self.key.type == "INT64":
            return ordinals.tolist()
        digits = np.strings.zfill(ordinals.astype(_STR), KEY_DIGITS)
        return np.strings.add(np.asarray(self._prefix, dtype=_STR), digits).tolist()

    def generate(self, rng: np.random.Generator, ordinals: np.ndarray | None = None, n: int | None = None) -> Batch:
        """Rows for the given key ordinals, or `n` rows without keys for an auto_id collection."""
        if ordinals is None:
            if not self.spec.auto_id or n is None:
                raise SchemaError(f"collection {self.spec.name!r} needs explicit keys for its rows")
            count = n
        else:
            count = len(ordinals)
        out: dict[str, Column] = {}
        no_rows = np.zeros(count, dtype=bool)
        for f in self.spec.fields:
            if f.is_primary:
                if ordinals is not None:
                    out[f.name] = Column(self.keys(ordinals), no_rows, no_rows)
                continue
            out[f.name] = self._column(rng, f, count)
        for f in self.preset.dynamic_fields:
            values, raw = self._values(rng, f, self.preset.hint(f.name), count)
            absent = rng.random(count) >= _pick(self._dynamic_presence, self.preset.hint(f.name).presence)
            out[f.name] = Column(values, no_rows, absent, raw)
        rows = gen.assemble({k: c.values for k, c in out.items()}, {k: c.omitted for k, c in out.items()}, count)
        return Batch(rows, out)

    def _column(self, rng: np.random.Generator, f: FieldSpec, n: int) -> Column:
        hints = self.preset.hint(f.name)
        values, raw = self._values(rng, f, hints, n)
        null = np.zeros(n, dtype=bool)
        if f.nullable:
            null = rng.random(n) < _pick(self._null_rate, hints.null_rate, self.preset.null_rate)
            for i in np.flatnonzero(null).tolist():
                values[i] = None
        omitted = np.zeros(n, dtype=bool)
        if f.default_value is not None:
            omitted = rng.random(n) < _pick(self._default_rate, hints.default_rate, self.preset.default_rate)
        return Column(values, null, omitted, raw)

    def _values(
        self, rng: np.random.Generator, f: FieldSpec, hints: Hints, n: int
    ) -> tuple[list[Any], np.ndarray | None]:
        """Python values of one column, and the numpy array behind them for numeric scalars."""
        t = f.type
        if hints.choices is not None:
            values = gen.choices(rng, n, hints.choices)
            return values, np.asarray(values, dtype=np.int64) if t in INT_RANGES else None
        raw: np.ndarray | None = None
        if t == "BOOL":
            raw = gen.booleans(rng, n)
        elif t in INT_RANGES:
            raw = gen.integers(rng, n, t, hints)
        elif t in ("FLOAT", "DOUBLE"):
            raw = gen.floats(rng, n, t, hints)
        elif t in ("VARCHAR", "TEXT"):
            return gen.texts(rng, n, f.max_length or 256, hints.words), None
        elif t == "JSON":
            return list(gen.documents(rng, n)), None
        elif t == "ARRAY":
            return self._arrays(rng, f, hints, n), None
        elif t == "GEOMETRY":
            return gen.geometries(rng, n).tolist(), None
        elif t == "TIMESTAMPTZ":
            return gen.timestamps(rng, n).tolist(), None
        elif t == "SPARSE_FLOAT_VECTOR":
            return list(gen.sparse_vectors(rng, n, hints)), None
        elif t in VECTOR_TYPES:
            return gen.dense_vectors(rng, n, f), None
        else:
            raise SchemaError(f"field {f.name!r}: no generator for Milvus type {t}")
        return raw.tolist(), raw

    def _arrays(self, rng: np.random.Generator, f: FieldSpec, hints: Hints, n: int) -> list[Any]:
        lengths = rng.integers(0, int(f.max_capacity or 0), n, endpoint=True)
        element = FieldSpec(name=f.name, type=str(f.element_type), max_length=f.max_length)
        flat, _ = self._values(rng, element, hints, int(lengths.sum()))
        return gen.lists(flat, lengths)


def _pick(*rates: float | None) -> float:
    return next(r for r in rates if r is not None)
