"""`milvusdiff corrupt`: damage one store behind the ShadowClient's back, for drills and demos."""

from __future__ import annotations

import click

from milvusdiff.cli.main import EXIT_SAME, cli, connection_options, settings_from_options


@cli.command("corrupt")
@click.option("--collection", required=True, help="Collection to damage.")
@click.option("--store", required=True, metavar="milvus|pg", help="The one store to change.")
@click.option("--kind", required=True, metavar="delete|update|vector|insert", help="What to do to each row.")
@click.option("--count", type=int, default=1, show_default=True, help="Rows to change.")
@click.option("--seed", type=int, help="Seed of the choice of rows, fields and elements [default: random].")
@connection_options
def corrupt_command(
    collection: str, store: str, kind: str, count: int, seed: int | None, **connection: str | None
) -> int:
    """Change COUNT rows in ONE store (Milvus or the PostgreSQL shadow) without telling the journal,
    and print exactly which keys were changed and how.

    Kinds: delete rows; update one scalar field; perturb one vector element; insert a row that was
    never written through the ShadowClient. `validate` should then report exactly these keys, and
    the journal should name the store that was changed as the wrong one.

    \b
    Examples:
      milvusdiff corrupt --collection products --store milvus --kind delete --count 3
      milvusdiff corrupt --collection products --store pg --kind vector --count 2 --seed 1
      milvusdiff corrupt --collection chunks --store milvus --kind insert && milvusdiff validate --collection chunks
    """
    from milvusdiff.workload.corrupt import corrupt

    settings = settings_from_options(**connection)
    changes = corrupt(settings, collection, store=store, kind=kind, count=count, seed=seed)
    click.echo(f"changed {len(changes)} row(s) in {store} of {collection}:")
    for change in changes:
        click.echo(f"  {change}")
    return EXIT_SAME
