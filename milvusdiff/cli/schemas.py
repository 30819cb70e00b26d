"""`milvusdiff schemas`: list the built-in schema presets, or print one as JSON."""

from __future__ import annotations

import click

from milvusdiff.cli.main import cli, connection_options


@cli.group("schemas", invoke_without_command=True)
@connection_options
@click.pass_context
def schemas_command(ctx: click.Context, **connection: str | None) -> None:
    """List the built-in schema presets that `workload --schema` takes.

    A JSON file of the same form (see `schemas show NAME`) is accepted wherever a preset name is.
    The connection options are accepted for uniformity; listing touches no store.

    \b
    Examples:
      milvusdiff schemas
      milvusdiff schemas show rag > my_schema.json    # edit, then: workload --schema my_schema.json
    """
    from milvusdiff.workload.schemas import load_preset, preset_names

    if ctx.invoked_subcommand is None:
        for name in preset_names():
            click.echo(f"{name:<20} {load_preset(name).description}")


@click.argument("name")
def _show(name: str) -> None:
    """Print preset NAME (or a preset file) as JSON.

    \b
    Examples:
      milvusdiff schemas show all_types
      milvusdiff schemas show ./my_schema.json       # checks the file and prints it
    """
    from milvusdiff.workload.schemas import preset_text

    click.echo(preset_text(name))


# Attached without a module-level Command, so that command discovery in cli.main does not also register
# `show` as a top-level command.
schemas_command.add_command(click.command("show")(_show))
