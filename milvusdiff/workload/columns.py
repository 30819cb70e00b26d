"""Vectorized value generators: one column of one Milvus type per call, drawn from a numpy Generator.

Each generator returns the whole column at once, built with numpy (string columns with numpy's string
functions, lists and sparse vectors from flat arrays cut at offsets), in the Python form pymilvus
takes. Values are chosen to stay exact through every store: floats are float32 where the type is,
WKT is written in the spacing Milvus Lite returns, timestamps carry explicit offsets and microseconds,
and integer columns include the extremes of their type now and then, where lossy paths break first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from milvusdiff.types.spec import FieldSpec
from milvusdiff.workload.schemas import INT_RANGES, Hints

# A few non-ASCII words so byte-length limits and encodings are exercised, not just ASCII.
_WORD_TEXT = (
    "alpha beta gamma delta river stone cloud amber vector matrix signal harbor garden silver rapid quiet "
    "north south pixel lumen orbit cobalt maple cedar falcon ember prism quartz willow zenith data index "
    "query shadow journal lantern meadow copper velvet summit café naïve Zürich 日本 데이터 ñandú émigré"
)
# Every word followed by one space, so a word and its separator are one contiguous slice.
_VOCABULARY = np.frombuffer((_WORD_TEXT + " ").encode("utf-8"), dtype=np.uint8)
_WORD_BYTES = np.array([len(w.encode("utf-8")) for w in _WORD_TEXT.split(" ")], dtype=np.int64)
_WORD_START = np.cumsum(_WORD_BYTES + 1) - (_WORD_BYTES + 1)
_STR = np.dtypes.StringDType()
_DEFAULT_INT_SPAN = {"INT32": 10**6, "INT64": 10**12}
_EDGE_RATE = 0.01
_EPOCH_2020 = 1_577_836_800
_SIX_YEARS = 6 * 365 * 86_400
_OFFSET_MINUTES = np.array([0, 60, 120, -300, 330, 540, -480, 345, -210])
_OFFSET_TEXT = np.array(
    [f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in _OFFSET_MINUTES.tolist()], dtype=_STR
)


def integers(rng: np.random.Generator, n: int, type_name: str, hints: Hints) -> np.ndarray:
    """Uniform in the hinted range; without a hint, a type-sized range plus the type's extremes at 1%."""
    low, high = INT_RANGES[type_name]
    if hints.min is not None or hints.max is not None:
        lo = int(hints.min) if hints.min is not None else low
        hi = int(hints.max) if hints.max is not None else high
        return rng.integers(lo, hi, n, dtype=np.int64, endpoint=True)
    span = _DEFAULT_INT_SPAN.get(type_name)
    values = (
        rng.integers(-span, span, n, dtype=np.int64, endpoint=True)
        if span
        else rng.integers(low, high, n, endpoint=True)
    )
    edges = rng.random(n) < _EDGE_RATE
    values[edges] = rng.choice(np.array([low, high, 0], dtype=np.int64), int(edges.sum()))
    return values.astype(np.int64)


def floats(rng: np.random.Generator, n: int, type_name: str, hints: Hints) -> np.ndarray:
    """float32 for FLOAT (so the value written is the value stored), float64 for DOUBLE."""
    if hints.min is not None or hints.max is not None:
        lo = float(hints.min) if hints.min is not None else 0.0
        hi = float(hints.max) if hints.max is not None else lo + 1000.0
        values = rng.uniform(lo, hi, n)
    else:
        values = rng.normal(0.0, 100.0, n)
    if hints.decimals is not None:
        values = np.round(values, hints.decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return values.astype(np.float32 if type_name == "FLOAT" else np.float64)


def booleans(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < 0.5


def choices(rng: np.random.Generator, n: int, options: Sequence[Any]) -> list[Any]:
    table = np.empty(len(options), dtype=object)
    table[:] = list(options)
    return list(table[rng.integers(0, len(options), n)])


def texts(rng: np.random.Generator, n: int, max_bytes: int, words: tuple[int, int] | None) -> list[str]:
    """Sentences of random words, cut at a word boundary so that each fits `max_bytes` of UTF-8.

    Built as one UTF-8 buffer gathered from the vocabulary with numpy and handed to Arrow as a string
    column: joining word by word would cost a pass over every row per word.
    """
    low, high = words or (1, max(1, min(8, max_bytes // 6)))
    if high == 0:
        return [""] * n
    count = rng.integers(low, high, n, endpoint=True)
    picks = rng.integers(0, len(_WORD_BYTES), (n, high))
    used = np.cumsum(_WORD_BYTES[picks] + 1, axis=1) - 1  # bytes up to and including word j, with spaces
    keep = (np.arange(high) < count[:, None]) & (used <= max_bytes)
    tokens = picks[keep]  # row-major: each row's words in order
    per_row = keep.sum(axis=1)
    last = np.zeros(len(tokens), dtype=bool)
    last[np.cumsum(per_row)[per_row > 0] - 1] = True
    token_bytes = _WORD_BYTES[tokens] + ~last  # a space follows every word but a row's last
    starts = np.cumsum(token_bytes) - token_bytes
    gather = np.repeat(_WORD_START[tokens] - starts, token_bytes) + np.arange(int(token_bytes.sum()))
    row_bytes = np.bincount(np.repeat(np.arange(n), per_row), weights=token_bytes, minlength=n).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(row_bytes)))
    column = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(_VOCABULARY[gather]))
    return column.to_pylist()


def documents(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """JSON objects of a realistic, varying shape: keys present or absent per row, nesting, lists."""
    tag_lists = lists(texts(rng, n * 3, 12, (1, 1)), rng.integers(0, 3, n, endpoint=True))
    columns = {
        "kind": choices(rng, n, ["article", "product", "event", "note"]),
        "count": rng.integers(0, 10_000, n).tolist(),
        "score": np.round(rng.random(n) * 100, 3).tolist(),
        "active": booleans(rng, n).tolist(),
        "tags": tag_lists,
        "pos": [
            {"x": x, "y": y}
            for x, y in zip(rng.integers(-50, 50, n).tolist(), np.round(rng.random(n), 4).tolist(), strict=True)
        ],
    }
    absent = {name: rng.random(n) < 0.25 for name in ("score", "active", "tags", "pos")}
    return assemble(columns, absent, n)


def lists(flat: list[Any], lengths: np.ndarray) -> list[list[Any]]:
    """Cut a flat list of scalars into consecutive lists of the given lengths (in C, through Arrow)."""
    offsets = pa.array(np.concatenate(([0], np.cumsum(lengths))), pa.int64())
    return pa.LargeListArray.from_arrays(offsets, pa.array(flat)).to_pylist()


def geometries(rng: np.random.Generator, n: int) -> np.ndarray:
    """WKT points and rectangles (the forms Milvus Lite accepts), in its canonical spacing."""
    x0 = np.round(rng.uniform(-180.0, 180.0, n), 4)
    y0 = np.round(rng.uniform(-90.0, 90.0, n), 4)
    x1 = _decimal_text(np.round(x0 + rng.uniform(0.001, 1.0, n), 4))
    y1 = _decimal_text(np.round(y0 + rng.uniform(0.001, 1.0, n), 4))
    x, y = _decimal_text(x0), _decimal_text(y0)
    point = _join("POINT (", x, " ", y, ")")
    ring = _join("POLYGON ((", x, " ", y, ", ", x1, " ", y, ", ", x1, " ", y1, ", ", x, " ", y1, ", ", x, " ", y, "))")
    return np.where(rng.random(n) < 0.7, point, ring).astype(_STR)


def _decimal_text(values: np.ndarray) -> np.ndarray:
    """Shortest plain decimal text of values with at most 4 decimals: 12.5, -3, 0 (never -0 or 1e-05)."""
    text = np.strings.rstrip(np.strings.rstrip(np.char.mod("%.4f", values + 0.0).astype(_STR), "0"), ".")
    return np.where(text == "-0", "0", text).astype(_STR)


def _join(*parts: Any) -> np.ndarray:
    out = np.asarray(parts[0], dtype=_STR)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part, dtype=_STR))
    return out


def timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    """ISO 8601 texts with microseconds and a UTC offset, 2020-2025; Milvus normalises them to UTC."""
    micros = (_EPOCH_2020 + rng.integers(0, _SIX_YEARS, n)) * 1_000_000 + rng.integers(0, 1_000_000, n)
    which = rng.integers(0, len(_OFFSET_MINUTES), n)
    local = (micros + _OFFSET_MINUTES[which] * 60_000_000).astype("datetime64[us]")
    return np.strings.add(np.datetime_as_string(local, unit="us").astype(_STR), _OFFSET_TEXT[which])


def dense_vectors(rng: np.random.Generator, n: int, f: FieldSpec) -> list[Any]:
    """Rows in the form pymilvus packs fastest and exactly: numpy rows, or bytes for bfloat16/binary."""
    dim = int(f.dim or 0)
    if f.type == "BINARY_VECTOR":
        return _byte_rows(rng.integers(0, 256, (n, dim // 8), dtype=np.uint8))
    if f.type == "INT8_VECTOR":
        return list(rng.integers(-128, 128, (n, dim), dtype=np.int8))
    matrix = rng.standard_normal((n, dim), dtype=np.float32)
    if f.type == "FLOAT16_VECTOR":
        return list(matrix.astype(np.float16))
    if f.type == "BFLOAT16_VECTOR":
        return _byte_rows((matrix.view(np.uint32) >> 16).astype("<u2").view(np.uint8).reshape(n, 2 * dim))
    return list(matrix)


def _byte_rows(matrix: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in matrix]


def sparse_vectors(rng: np.random.Generator, n: int, hints: Hints) -> list[dict[int, float]]:
    """{index: weight} rows with `nnz` distinct ascending indices below `sparse_dim`, weights > 0."""
    low, high = hints.nnz
    nnz = rng.integers(low, high, n, endpoint=True)
    total = int(nnz.sum())
    gaps = rng.integers(1, max(1, hints.sparse_dim // high), total, endpoint=True)
    running = np.cumsum(gaps)
    row_start = np.repeat(np.concatenate(([0], running))[np.cumsum(nnz) - nnz], nnz)
    indices = (running - row_start - 1).tolist()
    weights = (rng.random(total, dtype=np.float32) + np.float32(0.01)).tolist()
    ends = np.cumsum(nnz).tolist()
    starts = [0, *ends[:-1]]
    return [dict(zip(indices[a:b], weights[a:b], strict=True)) for a, b in zip(starts, ends, strict=True)]


def assemble(columns: dict[str, list[Any]], absent: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
    """Row dicts from per-column lists; a key is left out of the rows where its `absent` mask is set."""
    names = list(columns)
    rows = (
        [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        if names
        else [{} for _ in range(n)]
    )
    for name, mask in absent.items():
        for i in np.flatnonzero(mask).tolist():
            del rows[i][name]
    return rows
