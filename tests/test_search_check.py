"""search-check on real Milvus Lite and real PostgreSQL, collections written through ShadowClient.

FLAT indexes are exact, so recall must be 1.0 for every metric Lite has, ties included; a row
deleted through the ShadowClient and put back into Milvus behind its back must be flagged when
search returns it. The brute-force scores are checked against the metrics' definitions computed
pair by pair, including the binary and sparse metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pymilvus import DataType, MilvusClient
from test_query_check import COLLECTION, lite_settings, run_cli

from milvusdiff import ShadowClient
from milvusdiff.checks import brute_force
from milvusdiff.checks.search_check import search_check
from milvusdiff.config import Settings
from milvusdiff.types.spec import FieldSpec

DIM = 8


def build(settings: Settings, metric: str, vectors: np.ndarray, *, sparse: bool = False) -> list[dict[str, Any]]:
    """A collection with one vector field under a FLAT (or sparse inverted) index, one row per vector."""
    client = ShadowClient.from_settings(settings)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("group", DataType.INT32)
    if sparse:
        schema.add_field("vec", DataType.SPARSE_FLOAT_VECTOR)
    else:
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="SPARSE_INVERTED_INDEX" if sparse else "FLAT", metric_type=metric)
    client.create_collection(COLLECTION, schema=schema, index_params=index)
    rows = [{"id": i, "group": i % 4, "vec": vector} for i, vector in enumerate(vectors)]
    client.insert(COLLECTION, rows)
    client.close()
    return rows


def dense(count: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)


def sparse_rows(count: int, seed: int = 4) -> list[dict[int, float]]:
    rng = np.random.default_rng(seed)
    return [
        {int(i): float(v) for i, v in zip(rng.choice(40, 5, replace=False), rng.random(5), strict=True)}
        for _ in range(count)
    ]


def cli(argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli("search-check", argv, settings, capsys)


@pytest.fixture
def settings(tmp_path: Path, pg_conn: str) -> Settings:
    return lite_settings(tmp_path, pg_conn)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_a_flat_index_has_recall_one(settings: Settings, metric: str) -> None:
    build(settings, metric, dense(300))
    result = search_check(COLLECTION, nq=20, k=10, seed=1, settings=settings)
    summary = result.summary
    assert (result.exit_code, result.recall, summary["flagged"], summary["metric"]) == (0, 1.0, 0, metric)
    assert summary["candidates"] == 300
    for query in summary["per_query"]:
        assert query["returned_keys"] == query["exact_keys"]  # no ties among random floats: the same order
        assert np.allclose(query["returned_distances"], query["exact_distances"], rtol=1e-5, atol=1e-5)


def test_random_queries_and_a_filter_keep_recall_one(settings: Settings) -> None:
    build(settings, "L2", dense(300))
    result = search_check(
        COLLECTION, nq=15, k=8, expr="group == 2 or id < 10", queries="random", seed=2, settings=settings
    )
    assert (result.exit_code, result.recall, result.summary["flagged"]) == (0, 1.0, 0)
    assert result.summary["candidates"] == sum(1 for i in range(300) if i % 4 == 2 or i < 10)
    returned = {key for query in result.summary["per_query"] for key in query["returned_keys"]}
    assert all(key % 4 == 2 or key < 10 for key in returned)


def test_ties_at_the_kth_distance_are_not_misses(settings: Settings) -> None:
    # 30 distinct vectors, 10 rows each: every neighbourhood is one big tie, broken arbitrarily by Milvus.
    vectors = np.repeat(dense(30, seed=5), 10, axis=0)
    build(settings, "L2", vectors)
    result = search_check(COLLECTION, nq=25, k=5, seed=3, settings=settings)
    assert (result.exit_code, result.recall) == (0, 1.0)
    assert any(q["returned_keys"] != q["exact_keys"] for q in result.summary["per_query"])  # ties were broken


def test_sparse_vectors_with_inner_product(settings: Settings) -> None:
    build(settings, "IP", np.array(sparse_rows(200), dtype=object), sparse=True)
    result = search_check(COLLECTION, nq=20, k=5, seed=4, settings=settings)
    assert (result.exit_code, result.recall, result.summary["metric"]) == (0, 1.0, "IP")


def test_a_deleted_row_that_comes_back_is_flagged(settings: Settings, tmp_path: Path, capsys) -> None:
    vectors = dense(60)
    vectors[17] = vectors[18]  # so that the queries near 18 find 17 once it is back
    rows = build(settings, "L2", vectors)
    client = ShadowClient.from_settings(settings)
    client.delete(COLLECTION, ids=[17])
    client.close()
    milvus = MilvusClient(settings.milvus_uri)
    milvus.insert(COLLECTION, [rows[17], {"id": 1000, "group": 0, "vec": vectors[33]}])  # 1000 was never written
    milvus.close()
    # Every stored row is a query once (nq = rows), so the neighbours of 17 and 33 are searched for.
    out = tmp_path / "run"
    code, stdout, _ = cli(["--nq", "59", "--k", "5", "--out", str(out)], settings, capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert code == 1 and summary["different"]
    assert [(e["key"], e["journal"]) for e in summary["deleted_returned"]] == [(17, "DELETED")]
    assert [(e["key"], e["journal"]) for e in summary["absent_returned"]] == [(1000, None)]
    assert summary["excluded_returned"] == [] and summary["flagged"] == 2
    assert "17" in stdout and "deleted (journal)" in stdout
    assert {p.name for p in out.iterdir()} == {
        "summary.json",
        "report.md",
        "report.html",
        "queries.parquet",
        "snapshots",
        ".milvusdiff-output.json",  # the marker: an earlier search-check output, for --overwrite
    }
    assert summary["snapshot"] == str(out / "snapshots" / "pg.parquet")


def test_a_row_the_filter_excludes_is_flagged(settings: Settings) -> None:
    build(settings, "L2", dense(80))
    milvus = MilvusClient(settings.milvus_uri)
    milvus.upsert(COLLECTION, [{"id": 5, "group": 3, "vec": dense(80)[5]}])  # group 1 in the shadow, 3 in Milvus
    milvus.close()
    result = search_check(COLLECTION, nq=80, k=3, expr="group == 3", seed=5, settings=settings)
    assert result.exit_code == 1
    assert [e["key"] for e in result.summary["excluded_returned"]] == [5]


def test_min_recall_and_trouble(settings: Settings, capsys) -> None:
    build(settings, "L2", dense(50))
    assert cli(["--nq", "3", "--min-recall", "1"], settings, capsys)[0] == 0
    code, stdout, stderr = cli(["--field", "nosuch"], settings, capsys)
    assert (code, stdout) == (2, "") and len(stderr.strip().splitlines()) == 1 and "nosuch" in stderr
    code, _, stderr = cli(["--filter", "group >"], settings, capsys)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "position" in stderr


# -- the brute force against the definitions, pair by pair ------------------------------------------


def _column(field: FieldSpec, values: list[Any]) -> pa.Array:
    from milvusdiff.types.typemap import rule

    return rule(field).from_python(values, field)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_metrics_match_their_definitions(metric: str) -> None:
    field = FieldSpec("b", "BINARY_VECTOR", dim=32)
    rng = np.random.default_rng(6)
    queries, stored = rng.integers(0, 256, (4, 4), dtype=np.uint8), rng.integers(0, 256, (30, 4), dtype=np.uint8)
    stored[0] = 0  # an empty vector
    got = brute_force.scores(
        metric,
        brute_force.prepare(_column(field, [q.tobytes() for q in queries]), field, metric),
        brute_force.prepare(_column(field, [s.tobytes() for s in stored]), field, metric),
    )
    bits_q, bits_s = np.unpackbits(queries, axis=1).astype(bool), np.unpackbits(stored, axis=1).astype(bool)
    for i, q in enumerate(bits_q):
        for j, s in enumerate(bits_s):
            if metric == "HAMMING":
                want = float((q != s).sum())
            else:
                union = (q | s).sum()
                want = 1.0 - (q & s).sum() / union if union else 0.0
            assert got[i, j] == pytest.approx(want)


def test_sparse_inner_product_matches_its_definition() -> None:
    field = FieldSpec("s", "SPARSE_FLOAT_VECTOR")
    queries, stored = sparse_rows(5, seed=7), [*sparse_rows(40, seed=8), {3: 0.5}]
    got = brute_force.scores(
        "IP",
        brute_force.prepare(_column(field, queries), field, "IP"),
        brute_force.prepare(_column(field, stored), field, "IP"),
    )
    for i, q in enumerate(queries):
        for j, s in enumerate(stored):
            want = sum(np.float32(v) * np.float32(s[k]) for k, v in q.items() if k in s)
            assert -got[i, j] == pytest.approx(float(want), abs=1e-6)


def test_streaming_top_k_equals_a_full_sort() -> None:
    rng = np.random.default_rng(9)
    block_scores = rng.integers(0, 20, (6, 500)).astype(float)  # many ties
    top = brute_force.ExactTopK(6, 7)
    for start in range(0, 500, 64):
        top.add(block_scores[:, start : start + 64])
    rows, ranked = top.ranked()
    assert np.array_equal(ranked, np.sort(block_scores, axis=1)[:, :7])
    assert np.array_equal(np.take_along_axis(block_scores, rows, axis=1), ranked)
