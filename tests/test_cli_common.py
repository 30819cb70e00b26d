"""What every command shares: --debug / --log-level / --quiet after the command name, the help listing,
exit code 2 with one line for trouble, and shell completion through click."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MILVUSDIFF = str(Path(sys.executable).parent / "milvusdiff")
COMMANDS = [
    "compare",
    "corrupt",
    "demo",
    "export",
    "query-check",
    "repair",
    "schemas",
    "search-check",
    "validate",
    "workload",
]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MILVUSDIFF, *args], capture_output=True, text=True, env=env)


def test_help_lists_every_command() -> None:
    done = _run("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_the_shared_options_and_has_examples(command: str) -> None:
    done = _run(command, "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--debug", "--log-level", "--quiet"):
        assert option in done.stdout
    assert "milvusdiff " + command.split()[0] in done.stdout  # an example of the command itself


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.parquet")
    plain = _run("compare", missing, missing)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [f"milvusdiff: input A does not exist: {missing}"]
    debug = _run("compare", missing, missing, "--debug")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr


def test_shell_completion_completes_commands_and_options() -> None:
    env = dict(os.environ, _MILVUSDIFF_COMPLETE="bash_complete", COMP_WORDS="milvusdiff va", COMP_CWORD="1")
    assert _run(env=env).stdout.split() == ["plain,validate"]
    env.update(COMP_WORDS="milvusdiff export --so", COMP_CWORD="2")
    assert _run(env=env).stdout.split() == ["plain,--source"]
