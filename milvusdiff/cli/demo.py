"""`milvusdiff demo`: the whole job end to end, on the embedded default unless told otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from milvusdiff.cli.main import connection_options, settings_from_options

_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "analyze_diff.ipynb"
_VERDICT_WORDS = {"a_wrong": "Milvus is wrong", "b_wrong": "PostgreSQL is wrong", "both_wrong": "both are wrong"}


def _kind(row: dict[str, object]) -> tuple[str, str, str]:
    changed = row.get("changed_columns")
    columns = ", ".join(str(c) for c in changed) if isinstance(changed, list) else ""
    verdict = str(row.get("verdict") or "no journal")
    return str(row["class"]), columns or "-", _VERDICT_WORDS.get(verdict, verdict)


def _describe(row: dict[str, object]) -> str:
    cls, columns, verdict = _kind(row)
    return f"{cls} (columns: {columns}) -> {verdict}"


@click.command("demo")
@click.option("--collection", default="milvusdiff_demo", show_default=True)
@click.option("--rows", type=int, default=3000, show_default=True, help="Rows loaded before the operation mix.")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: .milvusdiff/runs/C-TIME].")
@connection_options
def demo_command(
    collection: str, rows: int, threads: int, seed: int, out: Path | None, **connection: str | None
) -> int:
    """Create a collection, write through ShadowClient, corrupt a few rows in each store, validate,
    and show which keys differ, what differs and which store is wrong. Exits 1: it finds the corruption.

    \b
    Examples:
      milvusdiff demo
      MILVUS_URI=http://localhost:19530 PG_CONN=postgresql://postgres:postgres@localhost/postgres milvusdiff demo
    """
    import polars as pl

    from milvusdiff.compare.terminal import print_summary
    from milvusdiff.workflow.demo import run_demo

    settings = settings_from_options(**connection)
    run = run_demo(
        settings,
        collection=collection,
        rows=rows,
        threads=threads,
        seed=seed,
        out=out,
        progress=sys.stderr.isatty(),
        say=click.echo,
    )
    assert run.result is not None
    print_summary(run.result.summary)
    key = run.result.summary.key[0]
    diff = pl.read_parquet(run.result.out / "diff.parquet")
    found = {row[key]: row for row in diff.iter_rows(named=True)}
    click.echo("What validate found for each corrupted row:")
    for change in run.corruptions:
        row = found.get(change.key)
        click.echo(
            f"  {change.store:6} {change.kind:6} {key}={change.key!r}: " + (_describe(row) if row else "NOT FOUND")
        )
    others = [row for k, row in found.items() if k not in {c.key for c in run.corruptions}]
    if others:
        click.echo(f"Other differences ({len(others)} keys), by kind:")
        groups: dict[tuple[str, str, str], list[object]] = {}
        for row in others:
            groups.setdefault(_kind(row), []).append(row[key])
        for (cls, columns, verdict), keys in sorted(groups.items(), key=lambda item: -len(item[1])):
            sample = ", ".join(map(repr, keys[:5]))
            click.echo(f"  {len(keys)} x {cls} [{columns}] -> {verdict}: {sample}{' ...' if len(keys) > 5 else ''}")
    click.echo(f"outputs: {run.result.out}")
    click.echo(f"notebook: {_NOTEBOOK} (open it in Jupyter with MILVUSDIFF_DIFF_DIR={run.result.out})")
    click.echo(f"took: workload {run.seconds['workload']:.1f} s, validate {run.seconds['validate']:.1f} s")
    return run.result.exit_code
