"""`make notebook`: JupyterLab on notebooks/analyze_diff.ipynb, opened on the newest run, its URL printed.

The run is chosen here, before Jupyter starts, by the notebook's own rule (analysis.choose_diff_dir:
MILVUSDIFF_DIFF_DIR, else the newest run, refusing to guess between two homes), and handed to the
kernel as an absolute MILVUSDIFF_DIFF_DIR: the notebook then analyses exactly the run this script
names, whatever directory Jupyter starts its kernel in. The directory `make notebook` ran in is
recorded as MILVUSDIFF_CWD, against which the notebook reads relative paths.

The URL (port and token chosen here) is printed once the server accepts connections, so it works
when it appears; arguments are passed to `jupyter lab` (`make notebook NOTEBOOK_ARGS=--no-browser`
on a machine without a browser).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

from milvusdiff import analysis
from milvusdiff.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = Path("notebooks") / "analyze_diff.ipynb"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int, server: subprocess.Popen[bytes], seconds: float = 120) -> bool:
    """Whether the server accepts connections on `port` within `seconds` (False as soon as it exits)."""
    deadline = time.monotonic() + seconds
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def main(argv: list[str]) -> int:
    os.environ.setdefault(analysis.CWD_ENV, os.getcwd())
    try:
        choice = analysis.choose_diff_dir()
    except ConfigError as exc:
        print(f"make notebook: {exc} (run `make demo` or `milvusdiff validate` first)", file=sys.stderr)
        return 2
    port, token = _free_port(), secrets.token_hex(24)
    os.environ[analysis.DIFF_DIR_ENV] = str(choice.directory)
    print(f"run: {choice.directory} (chosen by {choice.reason})", flush=True)
    url = f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.as_posix()}?token={token}"
    jupyter = Path(sys.executable).parent / "jupyter"
    command = [str(jupyter), "lab", str(NOTEBOOK), f"--ServerApp.root_dir={ROOT}", "--ServerApp.ip=127.0.0.1"]
    command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:  # containers and CI machines run as root, which Jupyter refuses unless told
        command.append("--allow-root")
    server = subprocess.Popen([*command, *argv], cwd=ROOT)
    try:
        if _listening(port, server):
            print(f"notebook: {url}", flush=True)
        return server.wait()
    except KeyboardInterrupt:  # Control-C reaches Jupyter too: let it shut its kernels down
        return server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
