"""Exact nearest neighbours by brute force: every candidate scored against every query, block by block.

Scores are matrix products over a block of candidates at a time (never a Python loop over rows),
in float64 so the exact answer does not inherit float32 rounding. Every metric is turned into a
score where lower is better (IP and COSINE similarities are negated), so one top-k routine serves
all of them; `distance` turns a score back into what Milvus reports.

Metrics, as Milvus defines them: L2 is the squared Euclidean distance; IP the inner product;
COSINE the cosine similarity; HAMMING the number of differing bits; JACCARD 1 - |a & b| / |a | b|
(0 when both vectors are empty); sparse vectors use IP over the indices they share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.errors import CheckError
from milvusdiff.types.spec import FieldSpec
from milvusdiff.types.typemap import coerce_pg_column

SIMILARITIES = frozenset({"IP", "COSINE"})
METRICS_BY_TYPE = {
    "FLOAT_VECTOR": {"L2", "IP", "COSINE"},
    "FLOAT16_VECTOR": {"L2", "IP", "COSINE"},
    "BFLOAT16_VECTOR": {"L2", "IP", "COSINE"},
    "INT8_VECTOR": {"L2", "IP", "COSINE"},
    "BINARY_VECTOR": {"HAMMING", "JACCARD"},
    "SPARSE_FLOAT_VECTOR": {"IP"},
}
# Scores (query x candidate) held in memory at once: about 64 MB of float64.
_BLOCK_CELLS = 8_000_000


@dataclass(frozen=True)
class Vectors:
    """Vectors of one field ready for scoring: a dense matrix (bits as 0/1 for binary vectors) with
    its row norms, or a sparse matrix as CSR parts (offsets, indices, values)."""

    dense: np.ndarray | None = None
    norms: np.ndarray | None = None
    sparse: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        if self.sparse is not None:
            return len(self.sparse[0]) - 1
        assert self.dense is not None
        return len(self.dense)


def check_metric(field: FieldSpec, metric: str) -> None:
    if metric not in METRICS_BY_TYPE.get(field.type, set()):
        raise CheckError(f"metric {metric} on {field.type} field {field.name!r} is not supported by search-check")


def block_rows(queries: int) -> int:
    """Candidates per block so that a block's score matrix stays within _BLOCK_CELLS."""
    return max(1024, _BLOCK_CELLS // max(queries, 1))


def prepare(column: pa.Array | pa.ChunkedArray, field: FieldSpec, metric: str) -> Vectors:
    """Vectors of a snapshot (or DuckDB) column, which holds no nulls, in the form `metric` scores."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if field.type == "SPARSE_FLOAT_VECTOR":
        indices, values = array.field("indices"), array.field("values")
        offsets = np.asarray(indices.offsets.to_numpy(), dtype=np.int64)
        flat_indices = np.asarray(pc.list_flatten(indices).to_numpy(zero_copy_only=False), dtype=np.int64)
        flat_values = np.asarray(pc.list_flatten(values).to_numpy(zero_copy_only=False), dtype=np.float64)
        return Vectors(sparse=(offsets - offsets[0], flat_indices, flat_values))
    if field.type == "BINARY_VECTOR":
        fixed = array if pa.types.is_fixed_size_binary(array.type) else coerce_pg_column(array, field)
        raw = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
        width = fixed.type.byte_width
        raw = raw[fixed.offset * width : (fixed.offset + len(fixed)) * width].reshape(len(fixed), width)
        bits = np.unpackbits(raw, axis=1).astype(np.float64)
        return Vectors(dense=bits, norms=bits.sum(axis=1))
    flat = pc.list_flatten(array).to_numpy(zero_copy_only=False)
    matrix = np.asarray(flat, dtype=np.float64).reshape(len(array), -1) if len(array) else np.zeros((0, field.dim or 0))
    if metric == "COSINE":
        lengths = np.linalg.norm(matrix, axis=1)
        matrix = matrix / np.where(lengths == 0, 1.0, lengths)[:, None]
    return Vectors(dense=matrix, norms=np.einsum("ij,ij->i", matrix, matrix))


def scores(metric: str, queries: Vectors, candidates: Vectors) -> np.ndarray:
    """(queries x candidates) scores, lower is better."""
    if queries.sparse is not None:
        assert candidates.sparse is not None
        return -_sparse_products(queries.sparse, candidates.sparse)
    assert queries.dense is not None and candidates.dense is not None
    assert queries.norms is not None and candidates.norms is not None
    products = queries.dense @ candidates.dense.T
    if metric in SIMILARITIES:
        return -products
    if metric == "JACCARD":
        union = queries.norms[:, None] + candidates.norms[None, :] - products
        return 1.0 - np.divide(products, union, out=np.ones_like(products), where=union > 0)
    # L2 and HAMMING: |q|^2 + |x|^2 - 2 q.x (for bits, |q| is the number of ones)
    return np.maximum(queries.norms[:, None] + candidates.norms[None, :] - 2.0 * products, 0.0)


def _sparse_products(
    queries: tuple[np.ndarray, np.ndarray, np.ndarray], candidates: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """Inner products of sparse vectors: the queries densified over the indices they use, each
    candidate entry matched to that index set, contributions summed per candidate row."""
    q_offsets, q_indices, q_values = queries
    used = np.unique(q_indices)
    dense = np.zeros((len(q_offsets) - 1, len(used)))
    q_rows = np.repeat(np.arange(len(q_offsets) - 1), np.diff(q_offsets))
    np.add.at(dense, (q_rows, np.searchsorted(used, q_indices)), q_values)
    c_offsets, c_indices, c_values = candidates
    c_rows = np.repeat(np.arange(len(c_offsets) - 1), np.diff(c_offsets))
    position = np.minimum(np.searchsorted(used, c_indices), max(len(used) - 1, 0))
    shared = used[position] == c_indices if len(used) else np.zeros(len(c_indices), dtype=bool)
    products = np.zeros((len(c_offsets) - 1, dense.shape[0]))
    np.add.at(products, c_rows[shared], (dense[:, position[shared]] * c_values[shared]).T)
    return products.T


def distance(metric: str, score: np.ndarray) -> np.ndarray:
    """Scores back into the distance (or similarity) Milvus reports."""
    return -score if metric in SIMILARITIES else score


def tolerance(metric: str, threshold: np.ndarray) -> np.ndarray:
    """How far a score may stray from the k-th exact score and still count as a tie: Milvus computes in
    float32, this module in float64; Hamming distances are integers and exact."""
    if metric == "HAMMING":
        return np.zeros_like(threshold)
    finite = np.where(np.isfinite(threshold), np.abs(threshold), 0.0)
    return 1e-5 + 1e-4 * finite


class ExactTopK:
    """The k best candidates per query over a stream of blocks, as global row numbers and scores."""

    def __init__(self, queries: int, k: int) -> None:
        self.k = k
        self.scores = np.full((queries, k), np.inf)
        self.rows = np.full((queries, k), -1, dtype=np.int64)
        self.seen = 0

    def add(self, block: np.ndarray) -> None:
        """Fold in the scores of the next `block.shape[1]` candidates."""
        rows = np.broadcast_to(np.arange(self.seen, self.seen + block.shape[1]), block.shape)
        merged_scores = np.hstack([self.scores, block])
        merged_rows = np.hstack([self.rows, rows])
        best = np.argpartition(merged_scores, self.k - 1, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(merged_scores, best, axis=1)
        self.rows = np.take_along_axis(merged_rows, best, axis=1)
        self.seen += block.shape[1]

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) per query, best first; rows -1 (score inf) where fewer than k candidates exist."""
        order = np.argsort(self.scores, axis=1, kind="stable")
        return np.take_along_axis(self.rows, order, axis=1), np.take_along_axis(self.scores, order, axis=1)

    @property
    def threshold(self) -> np.ndarray:
        """The k-th best exact score per query (inf when there are fewer than k candidates)."""
        return self.scores.max(axis=1)
