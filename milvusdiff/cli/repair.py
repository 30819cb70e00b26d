"""`milvusdiff repair`: make Milvus and the shadow agree again for the keys a drill or validate flagged."""

from __future__ import annotations

import json

import click

from milvusdiff.cli.main import connection_options, settings_from_options


def _parse_keys(values: tuple[str, ...], key_type: str) -> list[int | str]:
    keys = [k for value in values for k in value.split(",") if k != ""]
    if key_type != "INT64":
        return list(keys)
    try:
        return [int(k) for k in keys]
    except ValueError as exc:
        raise click.BadParameter(f"the primary key is INT64: {exc}", param_hint="--keys") from None


@click.command("repair")
@click.option("--collection", required=True, help="Collection to repair.")
@click.option(
    "--from", "source", type=click.Choice(["milvus", "pg", "journal"]), required=True, help="Which side wins."
)
@click.option("--keys", multiple=True, help="Keys to repair (comma-separated or repeated) [default: unsettled keys].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@connection_options
def repair_command(collection: str, source: str, keys: tuple[str, ...], fmt: str, **connection: str | None) -> int:
    """Re-read the winning side for the affected keys and write it over the other store, then
    journal what was done (IN_DOUBT and pg_missing marks are cleared).

    Without --keys, the keys are those the journal holds as IN_DOUBT or pg_missing. With
    --from journal each key follows what was written: the store holding that row wins, a deleted
    key is deleted everywhere, an in-doubt key is settled by what Milvus holds.

    \b
    Examples:
      milvusdiff repair --collection products --from journal
      milvusdiff repair --collection products --from milvus --keys 17,42
    """
    from milvusdiff.client.shadow import ShadowClient
    from milvusdiff.workflow.repair import repair

    settings = settings_from_options(**connection)
    client = ShadowClient(
        settings.milvus_uri,
        token=settings.milvus_token or "",
        pg_conn=settings.pg_conn,
        journal_path=settings.journal_path,
    )
    try:
        key_list = _parse_keys(keys, client.spec(collection).primary.type) if keys else None
        report = repair(client, collection, source, key_list)
    finally:
        client.close()
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        for label, values in (
            ("written to PostgreSQL", report.written_to_pg),
            ("deleted from PostgreSQL", report.deleted_from_pg),
            ("written to Milvus", report.written_to_milvus),
            ("deleted from Milvus", report.deleted_from_milvus),
        ):
            if values:
                click.echo(f"{label}: {len(values)} key(s): {', '.join(map(str, values[:20]))}")
        for key, why in report.unresolved.items():
            click.echo(f"unresolved {key}: {why}")
        click.echo(f"{report.keys_examined} key(s) examined")
    return 2 if report.unresolved else 0
