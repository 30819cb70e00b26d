"""The `milvusdiff` command: a thin click layer over the library.

Each sub-command lives in its own module and registers itself on `cli`; this module only owns the
group, the options every command shares, and the mapping of errors to exit codes (0 same,
1 differences, 2 trouble), so that no command prints a traceback unless `--debug` was given.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from milvusdiff import __version__
from milvusdiff.config import Settings
from milvusdiff.errors import MilvusDiffError, first_line

F = TypeVar("F", bound=Callable[..., Any])

# gRPC's fork handlers print a notice when the embedded PostgreSQL's pg_ctl is spawned; milvusdiff never
# uses gRPC in a forked child, so they are not needed. Must be set before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


EXIT_SAME = 0
EXIT_DIFFERENT = 1
EXIT_TROUBLE = 2


class _State:
    debug = False
    quiet = False


_LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), format="%(levelname)s %(name)s: %(message)s", force=True)
    if level.upper() != "DEBUG":
        from milvusdiff.services.milvus import silence_known_lite_noise

        silence_known_lite_noise()


def _set_debug(_: click.Context, __: click.Parameter, value: bool) -> None:
    if value:
        _State.debug = True


def _set_log_level(_: click.Context, __: click.Parameter, value: str | None) -> None:
    if value:
        _configure_logging(value)


def _set_quiet(_: click.Context, __: click.Parameter, value: bool) -> None:
    if value:
        _State.quiet = True
        _configure_logging("ERROR")


def quiet_requested() -> bool:
    """--quiet was given: no progress bars either (main() already silences stdout)."""
    return _State.quiet


def _common_options(command: click.Command) -> None:
    """--debug, --log-level and --quiet work after any command name as well as before it."""
    names = {p.name for p in command.params}
    if "debug" not in names:
        command.params.append(
            click.Option(["--debug"], is_flag=True, expose_value=False, callback=_set_debug, help="Show tracebacks.")
        )
    if "log_level" not in names:
        command.params.append(
            click.Option(["--log-level"], type=_LOG_LEVELS, expose_value=False, callback=_set_log_level)
        )
    if "quiet" not in names:
        command.params.append(
            click.Option(
                ["--quiet"],
                is_flag=True,
                expose_value=False,
                callback=_set_quiet,
                help="Print nothing but errors; the exit code tells the result.",
            )
        )


overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier output of this command at --out (never an input, a store or anything else).",
)


def connection_options(func: F) -> F:
    """Options that say where the stores are; each also reads its environment variable."""
    options = [
        click.option("--milvus-uri", envvar="MILVUS_URI", help="Milvus URI or Milvus Lite path [env MILVUS_URI]."),
        click.option("--milvus-token", envvar="MILVUS_TOKEN", help="Milvus token [env MILVUS_TOKEN]."),
        click.option("--pg-conn", envvar="PG_CONN", help="PostgreSQL connection string [env PG_CONN]."),
        click.option(
            "--journal", "journal_path", envvar="MILVUSDIFF_JOURNAL", help="LMDB journal path [env MILVUSDIFF_JOURNAL]."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="milvusdiff")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("--log-level", type=_LOG_LEVELS, default="WARNING", show_default=True)
def cli(debug: bool, log_level: str) -> None:
    """Prove that a Milvus collection holds exactly the data written to it.

    \b
    Typical flow:
      milvusdiff demo                                  # everything, end to end, embedded
      milvusdiff validate --collection docs --out diff # Milvus vs PostgreSQL shadow + journal
      milvusdiff compare a.parquet b.parquet --out diff
    """
    _State.debug = debug
    _configure_logging(log_level)


def settings_from_options(
    milvus_uri: str | None = None,
    milvus_token: str | None = None,
    pg_conn: str | None = None,
    journal_path: str | None = None,
) -> Settings:
    """Settings from the shared connection options (which already fell back to the environment)."""
    return Settings.resolve(
        milvus_uri=milvus_uri, milvus_token=milvus_token, pg_conn=pg_conn, journal_path=journal_path
    )


def _register_commands() -> None:
    """Import the command modules; each one attaches its command(s) to `cli`."""
    import importlib

    for module in _COMMAND_MODULES:
        loaded = importlib.import_module(f"milvusdiff.cli.{module}")
        for command in vars(loaded).values():
            if isinstance(command, click.Command) and command is not cli and command.name not in cli.commands:
                cli.add_command(command)
    pending = list(cli.commands.values())
    while pending:
        command = pending.pop()
        _common_options(command)
        if isinstance(command, click.Group):
            pending.extend(command.commands.values())


# One line per command module; keep the list sorted.
_COMMAND_MODULES: list[str] = [
    "compare",
    "corrupt",
    "demo",
    "export",
    "query_check",
    "repair",
    "schemas",
    "search_check",
    "validate",
    "verify",
    "workload",
]


def _trouble(line: str, debug: bool) -> NoReturn:
    """Exit 2 with one line; with --debug the traceback first. Never 1: that code means "differences found"."""
    if debug:
        traceback.print_exc()
    click.echo(line, err=True)
    sys.exit(EXIT_TROUBLE)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn every error into exit code 2.

    Errors milvusdiff raises on purpose (MilvusDiffError) and the OS's (a file, a permission) are one line;
    anything else is a bug or a driver's failure, still exit 2 (a crash must never read as a verdict) with a
    line naming it and, with --debug, the traceback.
    """
    _register_commands()
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    # --quiet: nothing but errors (stderr); the exit code tells the result. Every command prints through
    # sys.stdout (click.echo, rich), so one redirect covers them all, present and future.
    quiet = "--quiet" in args
    if quiet:
        _configure_logging("ERROR")
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            # Without standalone mode click returns a command's ctx.exit(code) instead of exiting.
            returned = cli.main(args=argv, prog_name="milvusdiff", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_TROUBLE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _trouble("milvusdiff: aborted", debug)
    except MilvusDiffError as exc:
        from milvusdiff.cli.wording import command_flags, in_cli_words

        _trouble(f"milvusdiff: {in_cli_words(first_line(exc), command_flags(cli, args))}", debug)
    except (OSError, ValueError) as exc:
        _trouble(f"milvusdiff: {type(exc).__name__}: {first_line(exc)}", debug)
    except Exception as exc:
        hint = "" if debug else " (--debug shows the traceback)"
        _trouble(f"milvusdiff: unexpected error: {type(exc).__name__}: {first_line(exc)}{hint}", debug)
    sys.exit(returned if isinstance(returned, int) else EXIT_SAME)


def console_main() -> None:
    """The process entry (the console script, `python -m milvusdiff`): main(), then an exit that skips the
    interpreter's last garbage collections. They walk every object pyarrow, numpy and DuckDB created, about
    60 ms of a 0.5 s compare of two 10k-row files, only to free memory the operating system takes back anyway.
    What must happen at exit does not depend on them: outputs are complete and closed before main() returns,
    and exit handlers (Milvus Lite, the embedded PostgreSQL) run before those collections would.
    In-process callers (tests, scripts) call main() and keep their collector as it was.

    `compare` also runs with one OpenBLAS thread unless the environment says otherwise: numpy's import
    starts one per core, spinning for about 50 ms of CPU beside the imports, and compare multiplies no
    matrices (search-check does, and keeps them).
    """
    if next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None) == "compare":
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read once, at numpy's import, still to come
    try:
        main()
    finally:
        gc.freeze()
