"""`milvusdiff demo`: the whole job end to end, on the embedded default unless told otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from milvusdiff.cli.main import connection_options, overwrite_option, quiet_requested, settings_from_options

_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "analyze_diff.ipynb"


@click.command("demo")
@click.option("--collection", default="milvusdiff_demo", show_default=True)
@click.option("--rows", type=int, default=3000, show_default=True, help="Rows loaded before the operation mix.")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: .milvusdiff/runs/C-TIME].")
@overwrite_option
@connection_options
def demo_command(
    collection: str,
    rows: int,
    threads: int,
    seed: int,
    out: Path | None,
    overwrite: bool,
    **connection: str | None,
) -> int:
    """Create a collection, write through ShadowClient, corrupt a few rows in each store, validate,
    and show which keys differ, what differs and which store is wrong. Exits 1: it finds the corruption.

    \b
    Examples:
      milvusdiff demo
      MILVUS_URI=http://localhost:19530 PG_CONN=postgresql://postgres:postgres@localhost/postgres milvusdiff demo
    """
    import pyarrow.parquet as pq

    from milvusdiff.compare.shown import DEFAULT_SHOWN, one_line
    from milvusdiff.compare.terminal import print_differing_keys, print_summary
    from milvusdiff.workflow.demo import run_demo

    settings = settings_from_options(**connection)
    run = run_demo(
        settings,
        collection=collection,
        rows=rows,
        threads=threads,
        seed=seed,
        out=out,
        overwrite=overwrite,
        progress=sys.stderr.isatty() and not quiet_requested(),
        say=click.echo,
    )
    assert run.result is not None
    summary, diff_path = run.result.summary, run.result.out / "diff.parquet"
    print_summary(summary)
    print_differing_keys(diff_path, summary, DEFAULT_SHOWN)
    key = summary.key[0]
    diff = pq.read_table(diff_path)
    types = {name: diff.schema.field(name).type for name in diff.schema.names}
    found = {row[key]: row for row in diff.to_pylist()}
    click.echo("What validate found for each corrupted row:")
    for change in run.corruptions:
        row = found.get(change.key)
        line = one_line(row, summary, types) if row else "NOT FOUND"
        click.echo(f"  {change.store:6} {change.kind:6} {key}={change.key!r}: {line}")
    others = len(set(found) - {c.key for c in run.corruptions})
    if others:
        click.echo(f"{others} other differing keys: the demo corrupted none of them (see the table above).")
    # Absolute: the path must work wherever Jupyter is started (its kernel runs in notebooks/).
    outputs = run.result.out.resolve()
    click.echo(f"outputs: {outputs}")
    click.echo(f"notebook: {_NOTEBOOK}")
    click.echo(f"  open it on this run: MILVUSDIFF_DIFF_DIR={outputs} jupyter lab {_NOTEBOOK}")
    click.echo("  or, in the checkout: make notebook (installs JupyterLab, opens the newest run, prints the URL)")
    click.echo(f"took: workload {run.seconds['workload']:.1f} s, validate {run.seconds['validate']:.1f} s")
    return run.result.exit_code
