"""query-check: run one filter on Milvus and on the PostgreSQL shadow and diff the two result sets.

The filter goes to Milvus as written and to PostgreSQL through the translator (filters.to_postgres),
which implements Milvus' semantics; both result sets are written as snapshots and compared by
primary key with the compare engine, so rows missing from either side and rows whose values differ
all count, exactly as in validate. The translation happens before either store is read: a filter
the translator refuses is trouble (exit 2, with its position), never a half-run check.

Output directory (`--out`): summary.json (compare's summary plus a `query_check` section: the
filter, row counts, and every differing key with its explanation, see explain.py), diff.parquet,
report.md, report.html, and snapshots/milvus.parquet and snapshots/pg.parquet.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from milvusdiff.checks.explain import explain_differences
from milvusdiff.checks.outputs import staged_output
from milvusdiff.checks.results import milvus_result, result_schema, shadow_result, write_snapshot
from milvusdiff.checks.stores import CheckStores, filter_columns, open_stores
from milvusdiff.compare.report import Section
from milvusdiff.compare.shown import keys_table
from milvusdiff.compare.summary import Summary
from milvusdiff.compare.values import fmt
from milvusdiff.config import Settings
from milvusdiff.errors import CheckError
from milvusdiff.export import DEFAULT_BATCH_SIZE
from milvusdiff.filters import to_postgres
from milvusdiff.snapshot_format import META_COLUMN
from milvusdiff.types.spec import CollectionSpec

SECTION = "query_check"


@dataclass(frozen=True)
class QueryCheckResult:
    """compare's Summary with the query-check section added (`summary.extra["query_check"]`)."""

    summary: Summary
    out: Path | None

    @property
    def check(self) -> dict[str, Any]:
        """The query-check section: filter, row counts, differing keys with explanations."""
        return dict(self.summary.extra[SECTION])

    @property
    def differences(self) -> int:
        return self.summary.differences

    @property
    def exit_code(self) -> int:
        """0 when the result sets agree, 1 when they differ (trouble raises instead)."""
        return self.summary.exit_code


def project(spec: CollectionSpec, output_fields: Sequence[str] | None) -> tuple[CollectionSpec, bool]:
    """The spec restricted to the primary key plus `output_fields` (`$meta` names the dynamic field),
    and whether that is the whole collection."""
    if not output_fields:
        return spec, True
    known = {f.name for f in spec.fields} | ({META_COLUMN} if spec.enable_dynamic_field else set())
    unknown = [name for name in output_fields if name not in known]
    if unknown:
        raise CheckError(
            f"unknown output field {unknown[0]!r}: choose from {', '.join(sorted(known))}"
            " (dynamic keys come together, as $meta)"
        )
    wanted = set(output_fields) | {spec.primary.name}
    fields = tuple(f for f in spec.fields if f.name in wanted)
    view = replace(spec, fields=fields, enable_dynamic_field=META_COLUMN in wanted)
    return view, view == spec


def run_query(
    stores: CheckStores,
    expr: str,
    building: Path,
    *,
    output_fields: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    engine: str = "duckdb",
) -> QueryCheckResult:
    """Check one filter with the stores already open, building the outputs in `building`."""
    from milvusdiff.compare.api import diff_into, make_options
    from milvusdiff.compare.report import write_outputs

    spec = stores.spec
    where, params = to_postgres(expr, filter_columns(spec), dynamic=spec.enable_dynamic_field)
    view, full = project(spec, output_fields)
    snapshots = building / "snapshots"
    milvus_path, pg_path = snapshots / "milvus.parquet", snapshots / "pg.parquet"
    rows_milvus = write_snapshot(
        milvus_path,
        result_schema(view, stores.with_partition, "milvus", expr),
        milvus_result(stores, view, expr, full=full, batch_size=batch_size),
    )
    rows_pg = write_snapshot(
        pg_path, result_schema(view, stores.with_partition, "pg", expr), shadow_result(stores, view, where, params)
    )
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=building))
    try:
        compared, sample = diff_into(milvus_path, pg_path, make_options(engine=engine), building, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    findings = explain_differences(stores, building / "diff.parquet") if compared.different else []
    section = {
        "collection": spec.name,
        "key": spec.primary.name,
        "filter": expr,
        "output_fields": [f.name for f in view.fields] + ([META_COLUMN] if view.enable_dynamic_field else []),
        "rows_milvus": rows_milvus,
        "rows_pg": rows_pg,
        "explanations": dict(Counter(f["explanation"] for f in findings)),
        "differing_keys": findings,
    }
    summary = replace(compared, extra={**compared.extra, SECTION: section})
    write_outputs(building, summary, sample)
    return QueryCheckResult(summary, building)


def query_check(
    collection: str,
    expr: str,
    *,
    output_fields: Sequence[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    engine: str = "duckdb",
) -> QueryCheckResult:
    """Run `expr` on Milvus and on the shadow of `collection` and compare the result sets by primary key.

    Exit code (`result.exit_code`) as compare: 0 same rows, 1 differences. Trouble raises a
    MilvusDiffError (FilterConversionError for a filter that cannot be translated).
    """
    settings = settings or Settings.resolve()
    target = Path(out) if out is not None else None
    with (
        staged_output(target, kind="query-check", overwrite=overwrite, settings=settings) as building,
        open_stores(collection, settings) as stores,
    ):
        result = run_query(stores, expr, building, output_fields=output_fields, batch_size=batch_size, engine=engine)
    return QueryCheckResult(_retargeted(result.summary, building, target), target)


def _retargeted(summary: Summary, building: Path, target: Path | None) -> Summary:
    """The summary as it reads after publication: paths under the final directory, or relative to the
    output directory when none was kept."""
    if target is None:
        return summary.relocated(str(building) + os.sep, "")
    return summary.relocated(str(building), str(target))


_CLASS_LABELS = {
    "only_a": "only Milvus returned it",
    "only_b": "only the shadow returned it",
    "changed": "both returned it, values differ",
    "duplicate_a": "Milvus returned the key twice",
    "duplicate_b": "the shadow returned the key twice",
}


def key_sections(summary: Summary, shown: int) -> list[Section]:
    """The filter, row counts and the first `shown` differing keys with their explanations."""
    check = summary.extra[SECTION]
    findings = check["differing_keys"]
    notes = [
        f"filter: {check['filter']}",
        f"rows: milvus {check['rows_milvus']}, pg {check['rows_pg']}",
        "result: " + ("DIFFERENCES FOUND" if summary.different else "the result sets agree"),
    ]
    notes += [f"{n} differing keys: {why}" for why, n in check["explanations"].items()]
    sections = [Section("milvusdiff query-check", notes=notes)]
    if findings:
        rows = [[fmt(f["key"]), _CLASS_LABELS[f["class"]], f["explanation"]] for f in findings[:shown]]
        sections.append(keys_table([check["key"], "class", "why"], rows, summary.differences))
    return sections
