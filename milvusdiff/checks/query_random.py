"""query-check --random: N generated filters, each checked as query-check checks one.

Filters come from random_filters with literals sampled from the shadow (a seeded, repeatable
TABLESAMPLE), so the same seed on the same data gives the same filters. On Milvus Lite the
generator avoids the constructs where Lite's semantics depart from Milvus (decided here: avoid,
rather than run and discount), so every difference reported is one a real server would show too.
A difference whose rows are identical in both stores is still explained as "engine semantics
differ" (see explain.py), apart from missing or changed rows.

Output directory: summary.json (one entry per filter), report.md/.html (the same table), and
filters/NNN/ with the full query-check outputs of each filter that found differences.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql

from milvusdiff.checks.outputs import CheckResult, staged_output, write_summary
from milvusdiff.checks.query_check import run_query
from milvusdiff.checks.random_filters import FilterGenerator, is_sampled, targets
from milvusdiff.checks.stores import CheckStores, filter_columns, open_stores
from milvusdiff.compare.report import Section
from milvusdiff.config import Settings, is_milvus_lite
from milvusdiff.errors import FilterConversionError, MilvusDiffError
from milvusdiff.filters import to_postgres
from milvusdiff.snapshot_format import META_COLUMN

SAMPLE_ROWS = 200


class RandomCheckResult(CheckResult):
    @property
    def filters(self) -> list[dict[str, Any]]:
        return list(self.summary["filters"])

    @property
    def exit_code(self) -> int:
        """The worst filter's: 2 if one could not run, else 1 if one differed, else 0."""
        return int(self.summary["exit_code"])


def sample_rows(stores: CheckStores, seed: int, limit: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """Up to `limit` shadow rows (the columns a filter can use), chosen by a repeatable sample."""
    spec = stores.spec
    names = [f.name for f in spec.fields if is_sampled(f.type)] + ([META_COLUMN] if spec.enable_dynamic_field else [])
    if not names:
        return []
    percent = min(100.0, 400.0 * limit / max(stores.shadow.count(spec.name), 1))
    query = sql.SQL("SELECT {} FROM {} TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s) LIMIT %s").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), stores.shadow.table(spec.name)
    )
    with stores.shadow.connection() as conn:
        rows = conn.execute(query, (percent, seed, limit)).fetchall()
    return [dict(zip(names, _exact_float32(list(row), names, stores), strict=True)) for row in rows]


def _exact_float32(values: list[Any], names: list[str], stores: CheckStores) -> list[Any]:
    """PostgreSQL prints a `real` in its shortest form (0.1); a filter literal must be the float32 value itself."""
    for i, name in enumerate(names):
        if name == META_COLUMN or values[i] is None:
            continue
        field = stores.spec.field(name)
        if field.type == "FLOAT":
            values[i] = float(np.float32(values[i]))
        elif field.type == "ARRAY" and field.element_type == "FLOAT":
            values[i] = [None if v is None else float(np.float32(v)) for v in values[i]]
    return values


def generate_filters(stores: CheckStores, count: int, seed: int, *, lite_safe: bool) -> list[str]:
    """`count` distinct filters the translator accepts, with literals from a sample of the data."""
    columns = filter_columns(stores.spec)

    def translatable(expr: str) -> bool:
        try:
            to_postgres(expr, columns, dynamic=stores.spec.enable_dynamic_field)
        except FilterConversionError:
            return False
        return True

    generator = FilterGenerator(targets(stores.spec, sample_rows(stores, seed)), seed, lite_safe=lite_safe)
    return generator.filters(count, translatable)


def query_check_random(
    collection: str,
    count: int,
    *,
    seed: int = 0,
    output_fields: Sequence[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
    lite_safe: bool | None = None,
) -> RandomCheckResult:
    """Check `count` generated filters; exit code 2 if any could not run, else 1 if any differed, else 0.

    `lite_safe` defaults to whether Milvus is Milvus Lite.
    """
    settings = settings or Settings.resolve()
    lite = is_milvus_lite(settings.milvus_uri) if lite_safe is None else lite_safe
    target = Path(out) if out is not None else None
    started = time.perf_counter()
    with (
        staged_output(target, kind="query-check", overwrite=overwrite, settings=settings) as building,
        open_stores(collection, settings) as stores,
    ):
        entries = []
        for index, expr in enumerate(generate_filters(stores, count, seed, lite_safe=lite)):
            directory = building / "filters" / f"{index:03d}"
            entries.append(_run_one(stores, index, expr, directory, output_fields))
        if entries and not any((building / "filters").iterdir()):
            (building / "filters").rmdir()
        summary = {
            "collection": collection,
            "seed": seed,
            "requested": count,
            "lite_safe": lite,
            "filters": entries,
            "different": any(e["exit_code"] == 1 for e in entries),
            "exit_code": max((e["exit_code"] for e in entries), default=0),
            "elapsed_seconds": round(time.perf_counter() - started, 3),
        }
        write_summary(building, summary, report_sections(summary))
    return RandomCheckResult(summary, target)


def _run_one(
    stores: CheckStores, index: int, expr: str, directory: Path, output_fields: Sequence[str] | None
) -> dict[str, Any]:
    """One filter's entry; its outputs are kept only when it found differences."""
    entry: dict[str, Any] = {"index": index, "filter": expr}
    directory.mkdir(parents=True)
    try:
        result = run_query(stores, expr, directory, output_fields=output_fields)
    except MilvusDiffError as exc:
        shutil.rmtree(directory)
        return {**entry, "rows_milvus": None, "rows_pg": None, "differences": None, "error": str(exc), "exit_code": 2}
    check = result.check
    entry.update(
        rows_milvus=check["rows_milvus"],
        rows_pg=check["rows_pg"],
        differences=result.differences,
        explanations=check["explanations"],
        exit_code=result.exit_code,
    )
    if result.exit_code == 0:
        shutil.rmtree(directory)
    else:
        entry["outputs"] = str(directory)
    return entry


def report_sections(summary: dict[str, Any]) -> list[Section]:
    """The per-filter table (report.md, report.html and the terminal show the same)."""
    entries = summary["filters"]
    differing = sum(e["exit_code"] == 1 for e in entries)
    failed = sum(e["exit_code"] == 2 for e in entries)
    notes = [
        f"collection: {summary['collection']} · seed {summary['seed']} · {len(entries)} filters"
        + (" (Milvus Lite-safe constructs only)" if summary["lite_safe"] else ""),
        f"result: {differing} with differences, {failed} could not run, {len(entries) - differing - failed} agree",
    ]
    if len(entries) < summary["requested"]:
        notes.append(f"only {len(entries)} distinct filters could be generated from the sampled data")
    rows = []
    for e in entries:
        why = e.get("error") or ", ".join(f"{n} {what}" for what, n in (e.get("explanations") or {}).items())
        cells = [e["rows_milvus"], e["rows_pg"], e["differences"]]
        rows.append([str(e["index"]), e["filter"], *("" if c is None else str(c) for c in cells), why])
    headers = ["#", "filter", "rows milvus", "rows pg", "differences", "why"]
    return [Section("milvusdiff query-check --random", notes=notes), Section("Filters", headers, rows)]
