"""`milvusdiff validate`: export the three stores of a collection and diff Milvus against the shadow."""

from __future__ import annotations

import json
from pathlib import Path

import click

from milvusdiff.cli.main import connection_options, settings_from_options


@click.command("validate")
@click.option("--collection", required=True, help="Collection to validate.")
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: .milvusdiff/runs/C-TIME].")
@click.option("--engine", type=click.Choice(["duckdb", "polars"]), default="duckdb", show_default=True)
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute float tolerance.")
@click.option("--rtol", type=float, default=0.0, show_default=True, help="Relative float tolerance (of |b|).")
@click.option("--max-diffs", type=int, help="Stop after N differing keys; counts become lower bounds.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@connection_options
def validate_command(
    collection: str,
    out: Path | None,
    engine: str,
    atol: float,
    rtol: float,
    max_diffs: int | None,
    fmt: str,
    quiet: bool,
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
      MILVUS_URI=http://localhost:19530 PG_CONN=postgresql://postgres@localhost/db \\
        milvusdiff validate --collection products
    """
    from milvusdiff.compare.terminal import print_summary
    from milvusdiff.workflow.validate import validate

    result = validate(
        collection,
        out=out,
        settings=settings_from_options(**connection),
        quiet=quiet or fmt == "json",
        engine=engine,
        atol=atol,
        rtol=rtol,
        max_diffs=max_diffs,
    )
    if fmt == "json":
        click.echo(json.dumps(result.summary, indent=2))
    else:
        print_summary(result.summary)
        for warning in result.store_warnings:
            click.echo(f"warning: {warning}")
        click.echo(f"outputs: {result.out}")
    return result.exit_code
