"""search-check: recall@k of Milvus searches against exact brute force over a snapshot of the shadow.

The shadow is exported (export_collection, source pg) into the output directory, query vectors are
drawn from it (query_vectors), Milvus answers the searches, and the exact top-k for the same vectors
is computed over the snapshot's candidates (candidates, brute_force), with the metric of the field's
index. With a filter, Milvus gets it as written and the candidates are the snapshot rows the DuckDB
translation selects.

Recall: a returned key counts when it is a candidate and its exact score is at least as good as the
k-th exact score, within a small tolerance. So ties at the k-th distance are never misses, whichever
of the tied rows Milvus picked. Recall@k of a query is the share of min(k, candidates) found.

A returned key that is not a candidate is not a recall loss but a correctness bug, counted apart:
absent from the shadow (with the journal's state: a deleted row came back, or a row Milvus holds that
was never written) or present but excluded by the filter. Any of them exits 1; so does overall recall
below `min_recall` (default 0: recall alone never fails a run, since approximate indexes trade it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.checks import brute_force
from milvusdiff.checks.candidates import Candidates
from milvusdiff.checks.outputs import CheckResult, staged_output, write_summary
from milvusdiff.checks.query_vectors import make_queries, milvus_queries
from milvusdiff.checks.search_report import report_sections
from milvusdiff.checks.stores import CheckStores, milvus_call, open_stores
from milvusdiff.config import Settings
from milvusdiff.errors import CheckError
from milvusdiff.services.journal import Journal
from milvusdiff.types.spec import CollectionSpec, FieldSpec
from milvusdiff.types.typemap import VECTOR_TYPES

MAX_K = 16384
_SEARCH_BATCH = 256


class SearchCheckResult(CheckResult):
    @property
    def recall(self) -> float:
        return float(self.summary["recall"])


@dataclass(frozen=True)
class _Request:
    field: FieldSpec
    metric: str
    index_type: str
    k: int
    expr: str | None


def vector_field(spec: CollectionSpec, name: str | None) -> FieldSpec:
    """The field to search: the one named, or the collection's only vector field."""
    vectors = [f for f in spec.fields if f.type in VECTOR_TYPES]
    if name is not None:
        found = [f for f in vectors if f.name == name]
        if not found:
            raise CheckError(f"{name!r} is not a vector field of {spec.name!r}: {', '.join(f.name for f in vectors)}")
        return found[0]
    if len(vectors) != 1:
        raise CheckError(f"{spec.name!r} has {len(vectors)} vector fields: choose one with `field`")
    return vectors[0]


def index_metric(stores: CheckStores, field: FieldSpec) -> tuple[str, str]:
    """(metric, index type) of the field's index: the metric Milvus ranks by, so the brute force must too."""
    client, name = stores.client, stores.spec.name
    indexes = milvus_call("list_indexes", client.list_indexes, name, field_name=field.name)
    if not indexes:
        raise CheckError(f"field {field.name!r} has no index, so Milvus cannot search it")
    described = milvus_call("describe_index", client.describe_index, name, index_name=indexes[0])
    metric = str(described.get("metric_type", "")).upper()
    brute_force.check_metric(field, metric)
    return metric, str(described.get("index_type", ""))


def search_check(
    collection: str,
    *,
    nq: int = 10,
    k: int = 10,
    expr: str | None = None,
    field: str | None = None,
    seed: int = 0,
    queries: str = "sample",
    min_recall: float = 0.0,
    out: str | Path | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
) -> SearchCheckResult:
    """Run `nq` searches for the top `k` on Milvus and score them against the exact answer from the shadow."""
    if nq < 1 or not 1 <= k <= MAX_K:
        raise CheckError(f"`nq` must be at least 1 and `k` between 1 and {MAX_K}")
    settings = settings or Settings.resolve()
    target = Path(out) if out is not None else None
    started = time.perf_counter()
    with (
        staged_output(target, kind="search-check", overwrite=overwrite, settings=settings) as building,
        open_stores(collection, settings) as stores,
        duckdb.connect() as con,
    ):
        chosen = vector_field(stores.spec, field)
        snapshot = building / "snapshots" / "pg.parquet"
        candidates = Candidates(con, snapshot, stores.spec, chosen, expr)  # translates the filter first
        metric, index_type = index_metric(stores, chosen)
        request = _Request(chosen, metric, index_type, k, expr)
        from milvusdiff.export import export_collection

        export_collection(collection, source="pg", out=snapshot, settings=settings)
        vectors, sources = make_queries(candidates, chosen, nq, seed, queries)
        returned = _search(stores, request, milvus_queries(vectors, chosen))
        per_query, flagged, candidate_count = _evaluate(candidates, request, vectors, returned, settings, stores)
        recall = _overall(per_query)
        summary = {
            "collection": collection,
            "field": chosen.name,
            "metric": metric,
            "index_type": index_type,
            "nq": nq,
            "k": k,
            "filter": expr,
            "seed": seed,
            "queries": queries,
            "candidates": candidate_count,
            "recall": recall,
            "min_recall": min_recall,
            **flagged,
            "different": bool(flagged["flagged"]) or recall < min_recall,
            "snapshot": str(snapshot),
            "elapsed_seconds": round(time.perf_counter() - started, 3),
            "per_query": per_query,
        }
        _write_queries(building / "queries.parquet", per_query, vectors, sources)
        write_summary(building, summary, report_sections(summary))
    return SearchCheckResult(_final_paths(summary, building, target), target)


def _final_paths(summary: dict[str, Any], building: Path, target: Path | None) -> dict[str, Any]:
    snapshot = Path(summary["snapshot"]).relative_to(building)
    return {**summary, "snapshot": str(target / snapshot) if target else None}


def _search(stores: CheckStores, request: _Request, data: list[Any]) -> list[list[tuple[Any, float]]]:
    """Milvus' answers, per query: (key, distance) best first."""
    key = stores.spec.primary.name
    answers: list[list[tuple[Any, float]]] = []
    for start in range(0, len(data), _SEARCH_BATCH):
        found = milvus_call(
            "the search",
            stores.client.search,
            stores.spec.name,
            data=data[start : start + _SEARCH_BATCH],
            anns_field=request.field.name,
            limit=request.k,
            filter=request.expr or "",
            output_fields=[key],
            search_params={"metric_type": request.metric},
            consistency_level="Strong",
        )
        answers += [[(hit[key], float(hit["distance"])) for hit in hits] for hits in found]
    return answers


def _exact(candidates: Candidates, request: _Request, queries: brute_force.Vectors) -> tuple[list[Any], Any, Any]:
    """(exact keys per query, their scores, threshold) over every candidate, block by block."""
    top = brute_force.ExactTopK(len(queries), request.k)
    keys: list[pa.Array] = []
    for batch in candidates.batches(brute_force.block_rows(len(queries))):
        if batch.num_rows:
            block = brute_force.prepare(batch.column(1), request.field, request.metric)
            top.add(brute_force.scores(request.metric, queries, block))
            keys.append(batch.column(0))
    rows, ranked = top.ranked()
    valid = rows >= 0
    chosen = pa.concat_arrays(keys).take(pa.array(rows[valid])).to_pylist() if keys else []
    ends = np.cumsum(valid.sum(axis=1))
    exact = [chosen[end - count : end] for end, count in zip(ends.tolist(), valid.sum(axis=1).tolist(), strict=True)]
    return exact, ranked, top


def _evaluate(
    candidates: Candidates,
    request: _Request,
    vectors: pa.Array,
    returned: list[list[tuple[Any, float]]],
    settings: Settings,
    stores: CheckStores,
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Per-query recall rows, the flagged keys, and the number of candidates."""
    queries = brute_force.prepare(vectors, request.field, request.metric)
    exact, ranked, top = _exact(candidates, request, queries)
    threshold = top.threshold
    allowed = threshold + brute_force.tolerance(request.metric, threshold)
    distinct = list(dict.fromkeys(key for hits in returned for key, _ in hits))
    found = candidates.lookup(distinct, filtered=True)
    column = {key: i for i, key in enumerate(found.column(0).to_pylist())}
    hit_scores = (
        brute_force.scores(request.metric, queries, brute_force.prepare(found.column(1), request.field, request.metric))
        if found.num_rows
        else np.zeros((len(queries), 0))
    )
    rows = []
    for q, hits in enumerate(returned):
        expected = min(request.k, top.seen)
        good = {key for key, _ in hits if key in column and hit_scores[q, column[key]] <= allowed[q]}
        rows.append(
            {
                "query": q,
                "returned": len(hits),
                "expected": expected,
                "hits": min(len(good), expected),
                "recall": min(len(good), expected) / expected if expected else 1.0,
                "kth_distance": float(brute_force.distance(request.metric, threshold[q])) if expected else None,
                "returned_keys": [key for key, _ in hits],
                "returned_distances": [d for _, d in hits],
                "exact_keys": exact[q],
                "exact_distances": brute_force.distance(request.metric, ranked[q, : len(exact[q])]).tolist(),
                "missed": [key for key in exact[q] if key not in good and key not in {h for h, _ in hits}],
            }
        )
    outside = [key for key in distinct if key not in column]
    return rows, _flag(candidates, outside, returned, settings, stores), top.seen


def _flag(
    candidates: Candidates,
    outside: list[Any],
    returned: list[list[tuple[Any, float]]],
    settings: Settings,
    stores: CheckStores,
) -> dict[str, Any]:
    """Returned keys that are not candidates: deleted, absent from the shadow, or excluded by the filter."""
    stored = set(candidates.lookup(outside, filtered=False).column(0).to_pylist())
    missing = [key for key in outside if key not in stored]
    states = _journal_states(settings, stores.shadow.database, stores.spec.name, missing)
    queries_of: dict[Any, list[int]] = {}
    for q, hits in enumerate(returned):
        for key, _ in hits:
            queries_of.setdefault(key, []).append(q)

    def entry(key: Any) -> dict[str, Any]:
        return {"key": key, "journal": states.get(key), "queries": queries_of[key]}

    deleted = [entry(key) for key in missing if states.get(key) == "DELETED"]
    absent = [entry(key) for key in missing if states.get(key) != "DELETED"]
    excluded = [entry(key) for key in outside if key in stored]
    return {
        "deleted_returned": deleted,
        "absent_returned": absent,
        "excluded_returned": excluded,
        "flagged": len(deleted) + len(absent) + len(excluded),
    }


def _journal_states(settings: Settings, database: str | None, collection: str, keys: list[Any]) -> dict[Any, str]:
    """What the journal last recorded for these keys (nothing when there is no journal)."""
    if not keys or not (settings.journal_path / "data.mdb").exists():
        return {}
    with Journal(settings.journal_path, readonly=True, database=database) as journal:
        return {key: state.state for key, state in journal.states(collection, keys).items()}


def _overall(per_query: list[dict[str, Any]]) -> float:
    expected = sum(row["expected"] for row in per_query)
    return sum(row["hits"] for row in per_query) / expected if expected else 1.0


def _write_queries(path: Path, per_query: list[dict[str, Any]], vectors: pa.Array, sources: list[Any] | None) -> None:
    """queries.parquet: one row per query with its vector, Milvus' answer and the exact answer."""
    table = pa.Table.from_pylist(per_query).append_column("source_key", pa.array(sources or [None] * len(per_query)))
    pq.write_table(table.append_column("vector", vectors), path)
