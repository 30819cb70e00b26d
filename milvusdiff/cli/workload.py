"""`milvusdiff workload`: create a collection from a preset and drive a seeded write load through ShadowClient."""

from __future__ import annotations

from pathlib import Path

import click

from milvusdiff.cli.main import EXIT_DIFFERENT, EXIT_SAME, cli, connection_options, settings_from_options
from milvusdiff.config import Settings
from milvusdiff.errors import SyncError


class _PeriodicValidate:
    """The runner's validate hook: one `validate` run per call, each into its own output directory."""

    def __init__(self, settings: Settings, collection: str) -> None:
        self.settings = settings
        self.collection = collection
        self.runs = 0
        self.different = False

    def __call__(self) -> str:
        from milvusdiff.workflow.validate import default_out, validate

        self.runs += 1
        base = default_out(self.settings, self.collection)
        result = validate(self.collection, out=base.with_name(f"{base.name}-{self.runs}"), settings=self.settings)
        self.different |= result.different
        return f"{'DIFFERENCES' if result.different else 'no differences'}, outputs in {result.out}"


@cli.command("workload")
@click.option("--schema", required=True, help="Preset name (see `milvusdiff schemas`) or a preset JSON file.")
@click.option("--collection", required=True, help="Collection to create and write to.")
@click.option("--rows", type=int, default=10_000, show_default=True, help="Rows of the initial load.")
@click.option(
    "--ops",
    default="insert=60,upsert=25,delete=15",
    show_default=True,
    help="Mix of the operations after the load, as name=weight.",
)
@click.option("--operations", type=int, help="Operations after the load [default: rows/batch].")
@click.option("--batch", type=int, default=500, show_default=True, help="Rows per write.")
@click.option("--threads", type=int, default=1, show_default=True, help="Writers sharing one ShadowClient.")
@click.option("--duration", type=float, help="Run the mix for S seconds instead of a number of operations.")
@click.option("--seed", type=int, help="Seed of the run [default: random, printed in the report].")
@click.option("--null-rate", type=float, help="Share of nulls in every nullable field [default: the preset's].")
@click.option(
    "--dynamic-presence",
    type=float,
    help="Share of rows carrying each dynamic key [default: the preset's]; 1 avoids Milvus Lite's upsert merge.",
)
@click.option("--validate-every", type=float, help="Pause writers and validate every S seconds, and at the end.")
@click.option("--drop-existing", is_flag=True, help="Replace the collection if it exists.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors (no progress bar either).")
@connection_options
def workload_command(
    schema: str,
    collection: str,
    rows: int,
    ops: str,
    operations: int | None,
    batch: int,
    threads: int,
    duration: float | None,
    seed: int | None,
    null_rate: float | None,
    dynamic_presence: float | None,
    validate_every: float | None,
    drop_existing: bool,
    quiet: bool,
    **connection: str | None,
) -> int:
    """Create COLLECTION from a schema preset (or file) and write a realistic load to it through ShadowClient.

    After an initial load of --rows rows, inserts, upserts (of existing keys) and deletes (by ids, by
    `in` filter, by key range, by a scalar predicate) follow in the --ops proportions. The same seed,
    sizes and thread count give the same final collection. Failed writes are reported and exit 2;
    with --validate-every, differences found by validate exit 1.

    \b
    Examples:
      milvusdiff workload --schema ecommerce --collection products --rows 50000
      milvusdiff workload --schema rag --collection chunks --rows 20000 --threads 2 --seed 7
      milvusdiff workload --schema my_schema.json --collection c --ops insert=50,delete=50 --duration 60
      milvusdiff workload --schema all_types --collection t --drop-existing --validate-every 30
    """
    from milvusdiff.client.shadow import ShadowClient
    from milvusdiff.workload.ops import parse_ops
    from milvusdiff.workload.runner import run_workload
    from milvusdiff.workload.schemas import create_from_preset, load_preset

    preset = load_preset(Path(schema) if schema.endswith(".json") else schema)
    weights = parse_ops(ops)
    settings = settings_from_options(**connection)
    hook = _PeriodicValidate(settings, collection) if validate_every is not None else None
    client = ShadowClient.from_settings(settings)
    try:
        create_from_preset(client, preset, collection, drop_existing=drop_existing)
        report = run_workload(
            client,
            preset,
            collection,
            rows=rows,
            ops=weights,
            batch=batch,
            threads=threads,
            duration=duration,
            seed=seed,
            validate_every=validate_every,
            progress=not quiet,
            operations=operations,
            on_validate=hook,
            null_rate=null_rate,
            dynamic_presence=dynamic_presence,
        )
    finally:
        client.close()
    for line in report.summary_lines():
        click.echo(line)
    if report.sync_errors:
        raise SyncError(f"{report.sync_errors} writes failed ({report.in_doubt_errors} in doubt); see the journal")
    return EXIT_DIFFERENT if hook is not None and hook.different else EXIT_SAME
