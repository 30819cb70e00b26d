"""`milvusdiff query-check`: one filter (or N generated ones) on Milvus and on the shadow, result sets diffed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from milvusdiff.cli.main import connection_options, overwrite_option, settings_from_options

if TYPE_CHECKING:
    from milvusdiff.compare.summary import Summary

_KEYS_SHOWN = 20


@click.command("query-check")
@click.option("--collection", required=True, help="Collection to query.")
@click.option("--filter", "expr", metavar="EXPR", help="Milvus filter expression to check.")
@click.option("--random", "count", type=click.IntRange(min=1), metavar="N", help="Check N generated filters instead.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random (filters and sampled values).")
@click.option("--output-fields", metavar="A,B", help="Compare only these fields (the key always; $meta: dynamic).")
@click.option("--out", type=click.Path(path_type=Path), help="Write summary.json, diff.parquet, reports, snapshots.")
@overwrite_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@connection_options
def query_check_command(
    collection: str,
    expr: str | None,
    count: int | None,
    seed: int,
    output_fields: str | None,
    out: Path | None,
    overwrite: bool,
    fmt: str,
    **connection: str | None,
) -> int:
    """Run a filter on Milvus and on the PostgreSQL shadow and compare the result sets by primary key:
    rows only Milvus returns, rows only the shadow returns and rows whose values differ all count.

    Exit 0 when the result sets agree, 1 when they differ, 2 on trouble (a filter that cannot be
    translated is reported with its position). Each differing key is explained: missing in one
    store, rows differ, or the same row judged differently by the two filter engines.

    With --random N, N filters are generated from the collection's schema with values sampled from
    its data (on Milvus Lite, only constructs whose semantics Lite shares with Milvus); the exit
    code is the worst of the filters'.

    \b
    Examples:
      milvusdiff query-check --collection products --filter 'category == "books" and price < 20'
      milvusdiff query-check --collection products --filter 'tags is not null' --output-fields tags
      milvusdiff query-check --collection products --random 50 --seed 7 --out qc-run
    """
    if (expr is None) == (count is None):
        raise click.UsageError("give exactly one of --filter EXPR and --random N")
    settings = settings_from_options(**connection)
    fields = [name.strip() for name in (output_fields or "").split(",") if name.strip()] or None
    if count is not None:
        from milvusdiff.checks.query_random import query_check_random, report_sections
        from milvusdiff.compare.terminal import print_sections

        random_result = query_check_random(
            collection, count, seed=seed, output_fields=fields, out=out, overwrite=overwrite, settings=settings
        )
        if fmt == "json":
            click.echo(json.dumps(random_result.summary, indent=2, default=str))
        else:
            print_sections(report_sections(random_result.summary))
            _say_outputs(out)
        return random_result.exit_code
    from milvusdiff.checks.query_check import query_check

    assert expr is not None
    result = query_check(collection, expr, output_fields=fields, out=out, overwrite=overwrite, settings=settings)
    if fmt == "json":
        click.echo(result.summary.to_json(), nl=False)
    else:
        _print_result(result.summary)
        _say_outputs(out)
    return result.exit_code


def _print_result(summary: Summary) -> None:
    from milvusdiff.checks.query_check import key_sections
    from milvusdiff.compare.terminal import print_sections, print_summary

    print_summary(summary)
    print_sections(key_sections(summary, _KEYS_SHOWN))


def _say_outputs(out: Path | None) -> None:
    if out is not None:
        click.echo(f"outputs: {out}")
