"""`milvusdiff compare A B`: parse options, call milvusdiff.compare, print, exit as diff(1) does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from milvusdiff.cli.gating import gate
from milvusdiff.cli.lean import skip_pandas_probe
from milvusdiff.cli.main import cli, overwrite_option
from milvusdiff.compare.options import DEFAULT_MEMORY_LIMIT, ENGINES


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """`--columns a,b --columns c` and `--columns a --columns b,c` mean the same."""
    return tuple(name for value in values for name in value.split(",") if name)


def _scratch_out(ctx: click.Context, temp_dir: Path | None) -> Path:
    """Where the diff goes without --out when keys are shown (they are read from diff.parquet): a
    directory removed when the command ends."""
    held = ctx.with_resource(tempfile.TemporaryDirectory(prefix=".milvusdiff-show-", dir=temp_dir))
    return Path(held) / "out"


@cli.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--key", multiple=True, help="Key column (repeat for a composite key). Default: from metadata.")
@click.option("--columns", multiple=True, help="Compare only these columns (comma-separated or repeated).")
@click.option("--ignore", multiple=True, help="Do not compare this column (repeatable).")
@click.option("--map", "rename", multiple=True, metavar="A_NAME=B_NAME", help="Column renamed in B (repeatable).")
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute float tolerance.")
@click.option("--rtol", type=float, default=0.0, show_default=True, help="Relative float tolerance (of |b|).")
@click.option("--tol", multiple=True, metavar="COL=ATOL[,RTOL]", help="Tolerance for one column (repeatable).")
@click.option(
    "--json", "json_columns", multiple=True, metavar="COL", help="Compare this text column as JSON (repeatable)."
)
@click.option("--engine", type=click.Choice(ENGINES), default="duckdb", show_default=True)
@click.option(
    "--spark-master",
    metavar="URL",
    help="With --engine spark: local[N], a cluster URL, or sc://host:15002 for Spark Connect [default: local[*]].",
)
@click.option("--max-diffs", type=int, help="Stop after N differing keys; counts become lower bounds.")
@click.option(
    "--memory-limit",
    default=DEFAULT_MEMORY_LIMIT,
    show_default=True,
    help="DuckDB memory limit; beyond it the join spills to --temp-dir.",
)
@click.option("--temp-dir", type=click.Path(path_type=Path), help="Where DuckDB spills and scratch files go.")
@click.option("--threads", type=click.IntRange(min=1), help="Engine threads [default: all cores].")
@click.option("--journal", type=click.Path(path_type=Path), help="Journal snapshot or LMDB journal: arbitrate.")
@click.option(
    "--staged/--no-staged",
    default=True,
    show_default=True,
    help="Bucketed snapshots with the same layout: skip buckets whose manifests agree, read full rows only "
    "for keys whose digests differ.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes for staged buckets."
)
@click.option("--out", type=click.Path(path_type=Path), help="Write summary.json, diff.parquet, report.md/.html here.")
@overwrite_option
@click.option("--sample", type=int, default=20, show_default=True, help="Differences per class shown in reports.")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True, help="Differing keys printed.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--junit-xml", type=click.Path(path_type=Path), help="Also write the outcome as JUnit XML here (for CI).")
@click.pass_context
def compare_command(
    ctx: click.Context,
    a: Path,
    b: Path,
    key: tuple[str, ...],
    columns: tuple[str, ...],
    ignore: tuple[str, ...],
    rename: tuple[str, ...],
    atol: float,
    rtol: float,
    tol: tuple[str, ...],
    json_columns: tuple[str, ...],
    engine: str,
    spark_master: str | None,
    max_diffs: int | None,
    memory_limit: str,
    temp_dir: Path | None,
    threads: int | None,
    journal: Path | None,
    staged: bool,
    jobs: int,
    out: Path | None,
    overwrite: bool,
    sample: int,
    show: int,
    fmt: str,
    junit_xml: Path | None,
) -> None:
    """Diff two snapshots by key; exit 0 when equal, 1 when they differ, 2 on trouble.

    A and B are snapshot directories (manifest.json + part-*.parquet) or .parquet files; any two
    Parquet files with a common key column work.

    \b
    Examples:
      milvusdiff compare snap/milvus snap/pg --out diff
      milvusdiff compare a.parquet b.parquet --key id --atol 1e-6 --ignore updated_at
      milvusdiff compare a.parquet b.parquet --key tenant --key doc --map text=body
      milvusdiff compare snap/milvus snap/pg --journal snap/journal --format json
      milvusdiff compare snap/milvus snap/pg --out diff --junit-xml reports/milvusdiff.xml
      milvusdiff compare b64/milvus b64/pg --jobs 2   # exported with --buckets 64: staged
      milvusdiff compare snap/milvus snap/pg --engine spark --spark-master sc://spark.example:15002
    """
    from milvusdiff.compare import compare, make_options
    from milvusdiff.compare.options import parse_column_tolerance, parse_rename
    from milvusdiff.compare.terminal import print_differing_keys, print_summary

    if engine != "spark":  # PySpark's driver converts through pandas
        skip_pandas_probe()

    target = out if out is not None or not show or fmt == "json" else _scratch_out(ctx, temp_dir)
    extra = {"threads": threads} if threads else {}
    options = make_options(
        key=key,
        columns=_split(columns),
        ignore=_split(ignore),
        rename=parse_rename(rename),
        atol=atol,
        rtol=rtol,
        tol=parse_column_tolerance(tol),
        json_columns=_split(json_columns),
        engine=engine,
        spark_master=spark_master,
        max_diffs=max_diffs,
        memory_limit=memory_limit,
        temp_dir=temp_dir,
        journal=journal,
        out=target,
        overwrite=overwrite,
        sample_size=sample,
        staged=staged,
        jobs=jobs,
        **extra,
    )
    with gate("compare", f"{a} vs {b}", junit_xml) as record:
        result = compare(a, b, options)
        record(result.summary, out, result.exit_code)
    if fmt == "json":
        click.echo(result.summary.to_json(), nl=False)
    else:
        print_summary(result.summary)
        if target is not None:
            print_differing_keys(target / "diff.parquet", result.summary, show)
        if out is not None:
            click.echo(f"outputs: {out}")
    ctx.exit(result.exit_code)
