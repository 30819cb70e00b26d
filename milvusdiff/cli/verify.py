"""`milvusdiff verify SNAPSHOT`: the full check of a snapshot against its manifest."""

from __future__ import annotations

from pathlib import Path

import click

from milvusdiff.cli.main import EXIT_SAME, cli


@cli.command("verify")
@click.argument("snapshot", type=click.Path(path_type=Path))
def verify_command(snapshot: Path) -> int:
    """Check a snapshot completely: the file list against the manifest, each file's size, row count and
    sha256, and every page's checksum. Exit 0 when it is intact, 2 naming the first file that is not.

    compare and validate check the file list, sizes, row counts and the pages they read on every read;
    verify also hashes every byte.

    \b
    Examples:
      milvusdiff verify snaps/docs-milvus
      milvusdiff verify shop-pg.parquet
      milvusdiff verify .milvusdiff/runs/shop-20261203T101500Z/snapshots
    """
    from milvusdiff.workflow.verify import Verified, verify_snapshot

    def say(done: Verified) -> None:
        for child in done.children:
            say(child)
        if not done.children:
            click.echo(f"{done.path}: intact ({done.files} files, {done.rows} rows, {done.hashed} sha256 checked)")

    say(verify_snapshot(snapshot))
    return EXIT_SAME
