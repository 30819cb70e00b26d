"""`make notebook` (scripts/notebook.py): JupyterLab started on the newest run, its URL printed and working.

The server is started with --no-browser, asked over HTTP for the notebook the printed URL names,
then stopped. Its output is read line by line until the script prints the URL, which it does once
the server accepts connections.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from test_analysis import make_agreeing_dir

from milvusdiff import analysis

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "notebook.py"
pytest.importorskip("jupyterlab", reason="JupyterLab is the [notebook] extra (make install installs it with [dev])")


def _lines_until(process: subprocess.Popen[str], pattern: str, seconds: float = 120) -> list[str]:
    """Output lines up to the first matching `pattern`; fails if the process ends or stays silent."""
    assert process.stdout is not None
    seen: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            assert selector.select(timeout=seconds), f"no output for {seconds} s:\n" + "".join(seen)
            line = process.stdout.readline()
            assert line, "the server stopped:\n" + "".join(seen)
            seen.append(line)
            if re.search(pattern, line):
                return seen


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (analysis.DIFF_DIR_ENV, analysis.CWD_ENV)}
    env.update({"MILVUSDIFF_HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "jupyter-config")})
    env.update({"JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"), "PYTHONUNBUFFERED": "1"})
    return env


def test_make_notebook_serves_the_notebook_on_the_newest_run(tmp_path: Path) -> None:
    run = make_agreeing_dir(tmp_path)
    newest = shutil.copytree(run, tmp_path / "home" / analysis.RUNS / "shop-20261203T120000Z")
    command = [sys.executable, str(SCRIPT), "--no-browser"]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the script and the Jupyter server it starts: one group to stop
    )
    try:
        lines = _lines_until(process, r"^notebook: http")
        assert lines[0] == f"run: {Path(newest).resolve()} (chosen by the newest run under {Path(newest).parent})\n"
        printed = re.match(
            r"notebook: (http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/analyze_diff\.ipynb\?token=(\w+))", lines[-1]
        )
        assert printed is not None, lines
        url, port, token = printed.groups()
        with urllib.request.urlopen(url, timeout=60) as page:
            assert page.status == 200 and "JupyterLab" in page.read().decode()
        api = f"http://127.0.0.1:{port}/api/contents/notebooks/analyze_diff.ipynb?token={token}&content=0"
        with urllib.request.urlopen(api, timeout=60) as reply:
            assert json.load(reply)["type"] == "notebook"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def test_make_notebook_without_a_run_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-browser"],
        cwd=tmp_path,
        env=_env(tmp_path / "empty"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("make notebook: no diff directory") and "make demo" in done.stderr
    assert "Traceback" not in done.stderr
