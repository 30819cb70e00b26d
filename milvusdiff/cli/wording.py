"""Library errors in command-line words.

The library's messages name a caller's parameter in backquotes (`max_diffs`, `key`), as a Python
user writes it; on the command line the same parameter is a flag (--max-diffs, --key), and the
names can differ (`rename` is --map, `json_columns` is --json). The command's own click options
say which flag each parameter is, so the mapping lives in the CLI and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import click

_PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def command_flags(group: click.Group, argv: Sequence[str]) -> dict[str, str]:
    """Parameter name -> long flag, for the sub-command named in `argv` (none when there is none)."""
    command = next((group.commands[arg] for arg in argv if arg in group.commands), None)
    while isinstance(command, click.Group):  # a nested group: its sub-command follows in argv
        command = next((command.commands[arg] for arg in argv if arg in command.commands), None)
    if command is None:
        return {}
    return {p.name: max(p.opts, key=len) for p in command.params if isinstance(p, click.Option) and p.name}


def in_cli_words(message: str, flags: dict[str, str]) -> str:
    """Each `parameter` the command has as a flag becomes that flag; others stay as written."""
    return _PARAMETER.sub(lambda m: flags.get(m.group(1), m.group(0)), message)
