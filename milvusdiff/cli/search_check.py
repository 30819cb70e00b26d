"""`milvusdiff search-check`: recall@k of Milvus searches against exact brute force over the shadow."""

from __future__ import annotations

import json
from pathlib import Path

import click

from milvusdiff.cli.main import connection_options, overwrite_option, settings_from_options


@click.command("search-check")
@click.option("--collection", required=True, help="Collection to search.")
@click.option("--nq", type=click.IntRange(min=1), default=10, show_default=True, help="Number of query vectors.")
@click.option("--k", "k", type=click.IntRange(1, 16384), default=10, show_default=True, help="Top k per query.")
@click.option("--filter", "expr", metavar="EXPR", help="Milvus filter applied to the search and the brute force.")
@click.option("--field", help="Vector field to search [default: the collection's only one].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the query vectors.")
@click.option(
    "--queries",
    type=click.Choice(["sample", "random"]),
    default="sample",
    show_default=True,
    help="Stored vectors with a little noise, or random vectors at the data's scale.",
)
@click.option("--min-recall", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Exit 1 below this.")
@click.option("--out", type=click.Path(path_type=Path), help="Write summary.json, queries.parquet, reports, snapshot.")
@overwrite_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@connection_options
def search_check_command(
    collection: str,
    nq: int,
    k: int,
    expr: str | None,
    field: str | None,
    seed: int,
    queries: str,
    min_recall: float,
    out: Path | None,
    overwrite: bool,
    fmt: str,
    **connection: str | None,
) -> int:
    """Search Milvus with NQ query vectors and compare each answer with the exact top K, computed by
    brute force over a snapshot of the PostgreSQL shadow with the metric of the field's index.
    Ties at the k-th distance are not misses.

    Exit 1 when search returns a key the shadow does not hold (a deleted row come back, or a row
    never written) or one the filter excludes, or when recall@k is below --min-recall; 0 otherwise;
    2 on trouble.

    \b
    Examples:
      milvusdiff search-check --collection products --nq 100 --k 10
      milvusdiff search-check --collection products --nq 20 --k 5 --filter 'price < 50' --min-recall 0.95
      milvusdiff search-check --collection chunks --field embedding --queries random --out sc-run
    """
    from milvusdiff.checks.search_check import search_check
    from milvusdiff.checks.search_report import report_sections
    from milvusdiff.compare.terminal import print_sections

    result = search_check(
        collection,
        nq=nq,
        k=k,
        expr=expr,
        field=field,
        seed=seed,
        queries=queries,
        min_recall=min_recall,
        out=out,
        overwrite=overwrite,
        settings=settings_from_options(**connection),
    )
    if fmt == "json":
        click.echo(json.dumps(result.summary, indent=2, default=str))
    else:
        print_sections(report_sections(result.summary))
        if out is not None:
            click.echo(f"outputs: {out}")
    return result.exit_code
