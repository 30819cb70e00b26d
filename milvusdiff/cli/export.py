"""`milvusdiff export`: parse options, call milvusdiff.export, print the outcome and any disagreement."""

from __future__ import annotations

from pathlib import Path

import click

from milvusdiff.cli.main import EXIT_SAME, cli, connection_options, overwrite_option, settings_from_options


@cli.command("export")
@click.option("-c", "--collection", required=True, help="Collection to export.")
@click.option(
    "--source",
    type=click.Choice(["milvus", "pg", "journal", "all"]),
    default="milvus",
    show_default=True,
    help="Store to read; 'all' writes milvus/, pg/ and journal/ side by side.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Snapshot directory, or a file ending in .parquet for one self-describing file.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16384, show_default=True, help="Rows per read.")
@click.option("--flush/--no-flush", default=True, show_default=True, help="Flush Milvus before reading.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Milvus readers over disjoint primary-key ranges (INT64 keys).",
)
@click.option(
    "--rows-per-part", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="Rows per part file."
)
@click.option(
    "--buckets",
    type=click.IntRange(min=1),
    default=None,
    help="Lay rows out in N buckets of the primary key, with per-bucket row counts and digest sums in the "
    "manifest, so that compare of two snapshots with the same N skips the buckets they agree on.",
)
@overwrite_option
@click.option(
    "--fsync/--no-fsync",
    default=False,
    show_default=True,
    help="Flush the snapshot to disk before publishing it, so that it survives a crash of the machine.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors (no progress bar either).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a summary line.")
@connection_options
def export_command(
    collection: str,
    source: str,
    out: Path,
    batch_size: int,
    flush: bool,
    parallel: int,
    rows_per_part: int,
    buckets: int | None,
    overwrite: bool,
    fsync: bool,
    quiet: bool,
    as_json: bool,
    **connection: str | None,
) -> int:
    """Stream a collection from Milvus, the PostgreSQL shadow or the journal into a Parquet snapshot.

    Rows written are checked against the store's own count(*) and distinct keys; any disagreement
    is recorded in the manifest and printed as a warning (rows are never deduplicated). Exit 0 when
    the snapshot was written, 2 on trouble (unknown collection, unreachable store, unwritable output).

    \b
    Examples:
      milvusdiff export -c docs --out snaps/docs-milvus
      milvusdiff export -c docs --source pg --out docs-pg.parquet
      milvusdiff export -c docs --source all --out snaps/docs      # milvus/ pg/ journal/
      MILVUS_URI=http://localhost:19530 milvusdiff export -c docs --parallel 4 --out snaps/docs
      milvusdiff export -c docs --source all --buckets 64 --out snaps/docs-b64
    """
    from milvusdiff.export import export_collection

    manifest = export_collection(
        collection,
        source=source,
        out=out,
        settings=settings_from_options(**connection),
        batch_size=batch_size,
        flush=flush,
        parallel=parallel,
        quiet=quiet or as_json,
        rows_per_part=rows_per_part,
        buckets=buckets,
        overwrite=overwrite,
        fsync=fsync,
    )
    if as_json:
        click.echo(manifest.to_json())
    else:
        for child in manifest.children.values() or [manifest]:
            click.echo(
                f"{child.source}: {child.rows_written} rows of {collection!r} "
                f"({child.distinct_keys} distinct keys, store count {_count(child.store_count)}) "
                f"in {child.elapsed_seconds:.1f}s"
            )
        click.echo(f"snapshot: {out}")
    return EXIT_SAME  # disagreements were logged as warnings by the export and are in the manifest


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)
