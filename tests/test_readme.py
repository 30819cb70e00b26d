"""Every example in the README runs, as written and in the order written, and ends as the README says.

A reader follows the README top to bottom in one directory, so the examples run that way: one
directory, one .milvusdiff home private to the test, each block after the one before it (a block
that only works in a fresh directory fails here, as it would for the reader). Python blocks run as
scripts; in console blocks each `milvusdiff ...` line runs as a command and must exit with the code
its `# exit N` comment states (0 when it states none). Blocks that start servers or call make
(docker, the top-level make targets) are what the test suite itself is run by, so they are left out.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXIT = re.compile(r"#\s*exit\s+(\d+)")


def _examples() -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in README order."""
    return [(lang, body) for lang, body in _FENCE.findall(README.read_text(encoding="utf-8"))]


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _examples() if lang == language]


def _runnable(language: str, body: str) -> bool:
    if language == "python":
        return True
    return language == "console" and "milvusdiff " in body and "docker" not in body and "make " not in body


def _runnable_console_blocks() -> list[str]:
    return [b for b in _blocks("console") if _runnable("console", b)]


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


def test_examples_run_in_sequence_as_written(tmp_path: Path, pg_conn: str) -> None:
    env = _env(tmp_path, pg_conn)
    executable = Path(sys.executable).parent / "milvusdiff"
    for number, (language, body) in enumerate(_examples()):
        if not _runnable(language, body):
            continue
        if language == "python":
            script = tmp_path / f"example_{number}.py"
            script.write_text(body, encoding="utf-8")
            done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"python block {number}\n{done.stderr[-3000:]}"
            continue
        for argv, expected in _commands(body):
            done = subprocess.run([str(executable), *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert done.returncode == expected, f"{' '.join(argv)} -> {done.returncode}\n{done.stderr[-3000:]}"
