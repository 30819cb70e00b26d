"""`milvusdiff validate`: export the three stores of a collection and diff Milvus against the shadow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from milvusdiff.cli.gating import gate
from milvusdiff.cli.main import connection_options, overwrite_option, settings_from_options
from milvusdiff.compare.options import ENGINES
from milvusdiff.config import Settings


@click.command("validate")
@click.option("--collection", help="Collection to validate.")
@click.option("--all", "every", is_flag=True, help="Every collection the journal knows (one output directory each).")
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: .milvusdiff/runs/C-TIME].")
@overwrite_option
@click.option("--engine", type=click.Choice(ENGINES), default="duckdb", show_default=True)
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute float tolerance.")
@click.option("--rtol", type=float, default=0.0, show_default=True, help="Relative float tolerance (of |b|).")
@click.option("--max-diffs", type=int, help="Stop after N differing keys; counts become lower bounds.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", is_flag=True, help="Print nothing but errors (no progress bars either).")
@click.option("--junit-xml", type=click.Path(path_type=Path), help="Also write the outcome as JUnit XML here (for CI).")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True, help="Differing keys printed.")
@connection_options
def validate_command(
    collection: str | None,
    every: bool,
    out: Path | None,
    overwrite: bool,
    engine: str,
    atol: float,
    rtol: float,
    max_diffs: int | None,
    fmt: str,
    quiet: bool,
    junit_xml: Path | None,
    show: int,
    **connection: str | None,
) -> int:
    """Export Milvus, the PostgreSQL shadow and the journal; compare Milvus (A) with PostgreSQL (B),
    the journal deciding which store is wrong for each differing key.

    Exit 0 when the stores agree, 1 when they differ, 2 on trouble. A store that contradicts itself
    (count(*) against the rows it returned, duplicate keys) or journal keys left IN_DOUBT also exit 1,
    with a warning line each, even when the rows agree.

    \b
    Examples:
      milvusdiff validate --collection products
      milvusdiff validate --collection products --out runs/after-upgrade --format json
      milvusdiff validate --all --out runs/nightly --junit-xml reports/milvusdiff.xml
      MILVUS_URI=http://localhost:19530 PG_CONN=postgresql://postgres@localhost/db \\
        milvusdiff validate --collection products
    """
    from milvusdiff.compare.terminal import print_differing_keys, print_summary
    from milvusdiff.workflow.validate import validate

    settings = settings_from_options(**connection)
    options: dict[str, Any] = {"engine": engine, "atol": atol, "rtol": rtol, "max_diffs": max_diffs}
    if every == (collection is not None):
        raise click.UsageError("give either --collection NAME or --all")
    if collection is None:
        return _validate_all(out, settings, quiet, fmt, junit_xml, {**options, "overwrite": overwrite})
    with gate("validate", collection, junit_xml) as record:
        result = validate(
            collection, out=out, overwrite=overwrite, settings=settings, quiet=quiet or fmt == "json", **options
        )
        record(result.summary, result.out, result.exit_code)
    if fmt == "json":
        click.echo(result.summary.to_json(), nl=False)
    else:
        print_summary(result.summary)  # store warnings included, as in report.md
        print_differing_keys(result.out / "diff.parquet", result.summary, show)
        click.echo(f"outputs: {result.out}")
    return result.exit_code


def _validate_all(
    out: Path | None, settings: Settings, quiet: bool, fmt: str, junit_xml: Path | None, options: dict[str, Any]
) -> int:
    from milvusdiff.ci.gate import GateCase
    from milvusdiff.ci.publish import publish
    from milvusdiff.workflow.validate import runs_dir
    from milvusdiff.workflow.validate_all import validate_all

    def progress(number: int, total: int, case: GateCase) -> None:
        if not quiet and fmt != "json":
            click.echo(f"[{number}/{total}] {case.line}", err=True)

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = out if out is not None else runs_dir(settings) / f"all-{stamp}"
    result = validate_all(target, settings=settings, progress=progress, **options)
    publish("validate", result.cases, junit_xml=junit_xml)
    if fmt == "json":
        click.echo((result.out / "index.json").read_text(encoding="utf-8"))
    else:
        click.echo(f"{len(result.cases)} collections validated, exit code {result.exit_code}; index: {result.out}")
    return result.exit_code
