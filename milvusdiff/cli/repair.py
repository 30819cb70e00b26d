"""`milvusdiff repair`: make Milvus and the shadow agree again for the keys a drill or validate flagged."""

from __future__ import annotations

import json
from pathlib import Path

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
@click.option("--keys", multiple=True, help="Keys to repair (comma-separated or repeated).")
@click.option(
    "--diff",
    type=click.Path(path_type=Path, file_okay=False),
    help="A validate output directory whose differing keys to repair [default: the collection's latest run].",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@connection_options
def repair_command(
    collection: str, source: str, keys: tuple[str, ...], diff: Path | None, fmt: str, **connection: str | None
) -> int:
    """Re-read the winning side for the affected keys and write it over the other store, then
    journal what was done (IN_DOUBT and pg_missing marks are cleared).

    Without --keys, the keys are those the journal holds as IN_DOUBT or pg_missing, plus those the
    latest `validate` of the collection found different (or the run named by --diff). With
    --from journal each key follows what was written: the store holding that row wins, a deleted
    key is deleted everywhere, an in-doubt key is settled by what Milvus holds. The Milvus rows of an
    auto_id insert in doubt (keys never returned) are found by their digests and count as in-doubt keys.

    \b
    Examples:
      milvusdiff repair --collection products --from journal
      milvusdiff repair --collection products --from milvus --keys 17,42
    """
    from milvusdiff.client.shadow import ShadowClient
    from milvusdiff.services.milvus import resolve_collection
    from milvusdiff.workflow.repair import latest_run, repair
    from milvusdiff.workflow.validate import runs_dir

    settings = settings_from_options(**connection)
    database, name = resolve_collection(settings, collection)
    client = ShadowClient.from_settings(settings, db_name=database)
    try:
        key_list = _parse_keys(keys, client.spec(name).primary.type) if keys else None
        if key_list is None and diff is None:
            diff = latest_run(runs_dir(settings), collection)
        if key_list is None and fmt == "text":
            click.echo(f"keys: the journal's unsettled keys{f' and the differences found in {diff}' if diff else ''}")
        report = repair(client, name, source, key_list, diff=diff)
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
