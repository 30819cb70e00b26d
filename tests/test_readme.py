"""Every example in the README runs, as written, and ends as the README says it does.

Python blocks run as scripts; in console blocks each `milvusdiff ...` line runs as a command and must
exit with the code its `# exit N` comment states (0 when it states none). Blocks that start servers
or call make (docker, the top-level make targets) are what the test suite itself is run by, so they
are left out. Each block runs in a fresh directory whose .milvusdiff home is private to the test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXIT = re.compile(r"#\s*exit\s+(\d+)")


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(README.read_text(encoding="utf-8")) if lang == language]


def _runnable_console_blocks() -> list[str]:
    return [b for b in _blocks("console") if "milvusdiff " in b and "docker" not in b and "make " not in b]


def _commands(block: str) -> list[tuple[list[str], int]]:
    commands = []
    for line in block.splitlines():
        if not line.startswith("milvusdiff "):
            continue
        code, _, comment = line.partition("#")
        expected = _EXIT.search("#" + comment)
        commands.append((shlex.split(code), int(expected.group(1)) if expected else 0))
    return commands


def _env(tmp_path: Path, pg_conn: str) -> dict[str, str]:
    """The defaults a new user gets (Milvus Lite and the journal under ./.milvusdiff), with the test's
    PostgreSQL. MILVUS_URI stays unset: pymilvus reads it too, and refuses a Lite path at import."""
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MILVUS_TOKEN", "MILVUSDIFF_JOURNAL")}
    env.update({"MILVUSDIFF_HOME": str(tmp_path / ".milvusdiff"), "PG_CONN": pg_conn})
    return env


def test_readme_has_examples() -> None:
    assert _blocks("python"), "the README lost its Python example"
    assert _runnable_console_blocks(), "the README lost its command-line example"


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_example(index: int, tmp_path: Path, pg_conn: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(_blocks("python")[index], encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=_env(tmp_path, pg_conn), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("index", range(len(_runnable_console_blocks())))
def test_console_example(index: int, tmp_path: Path, pg_conn: str) -> None:
    executable = Path(sys.executable).parent / "milvusdiff"
    for argv, expected in _commands(_runnable_console_blocks()[index]):
        done = subprocess.run(
            [str(executable), *argv[1:]], cwd=tmp_path, env=_env(tmp_path, pg_conn), capture_output=True, text=True
        )
        assert done.returncode == expected, f"{' '.join(argv)} -> {done.returncode}\n{done.stderr[-3000:]}"
