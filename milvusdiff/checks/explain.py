"""Why a key differs between the two result sets of one filter.

A key that only one engine selected is either data that differs (the row is missing from, or
different in, the other store) or the same row judged differently by the two filter engines. Both
exit 1, but they mean different things (lost data against engine semantics, e.g. Milvus Lite's
departures from Milvus), so each differing key is looked up in full in both stores and its digests
compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from milvusdiff.checks.stores import CheckStores
from milvusdiff.snapshot_format import PARTITION_COLUMN
from milvusdiff.types.digest import row_digests
from milvusdiff.workflow.fetch import milvus_rows

EXPLAIN_LIMIT = 1000
MISSING_IN_PG = "missing in pg"
MISSING_IN_MILVUS = "missing in milvus"
ROWS_DIFFER = "rows differ"
FILTER_SEMANTICS = "engine semantics differ"
GONE = "in neither store"
DUPLICATE = "duplicate key"


def _versions(table: Any, stores: CheckStores) -> dict[Any, set[tuple[bytes, str | None]]]:
    """Per key, every (digest, partition) a store holds for it."""
    digests = row_digests(table, stores.spec).to_pylist()
    keys = table.column(stores.spec.primary.name).to_pylist()
    partitions = table.column(PARTITION_COLUMN).to_pylist()
    found: dict[Any, set[tuple[bytes, str | None]]] = {}
    for key, digest, partition in zip(keys, digests, partitions, strict=True):
        found.setdefault(key, set()).add((digest, partition))
    return found


def explain_differences(stores: CheckStores, diff: Path, limit: int = EXPLAIN_LIMIT) -> list[dict[str, Any]]:
    """The first `limit` differing keys of a diff.parquet, each with its class and explanation."""
    key = stores.spec.primary.name
    rows = pq.read_table(diff, columns=[key, "class"]).slice(0, limit).to_pylist()
    keys = [row[key] for row in rows if not row["class"].startswith("duplicate")]
    in_milvus = _versions(milvus_rows(stores.client, stores.spec, keys), stores) if keys else {}
    in_pg = _versions(stores.shadow.rows_for_keys(stores.spec, keys), stores) if keys else {}
    findings = []
    for row in rows:
        k, cls = row[key], row["class"]
        if cls.startswith("duplicate"):
            why = DUPLICATE
        elif k not in in_milvus:
            why = MISSING_IN_MILVUS if k in in_pg else GONE
        elif k not in in_pg:
            why = MISSING_IN_PG
        elif in_milvus[k] != in_pg[k]:
            why = ROWS_DIFFER
        else:
            why = FILTER_SEMANTICS
        findings.append({"key": k, "class": cls, "explanation": why})
    return findings
