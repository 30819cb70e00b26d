"""The real-server lane (`make test-server`): the tests that honour MILVUS_URI, against a real Milvus server.

Milvus Lite differs from a server in ways milvusdiff must get right (a server keeps duplicate primary
keys, for one), and no Docker engine runs here, so this lane uses the standalone server binary that the
PyPI package `milvus==2.3.5` ships. That package pins old dependencies, so it lives in its own venv,
`.venv-milvus-server`, created on first use.

The lane starts the server on a free loopback port with a throw-away data directory, waits until pymilvus
gets an answer, runs `pytest -m "server or milvus"` (tests marked `server`, plus every test that requests
the `milvus_uri` fixture) with MILVUS_URI pointing at it, stops the server whatever happened, and exits
with pytest's exit code. Arguments go to pytest after that selection, so one server start can run just the
tests being worked on: `flock /tmp/milvus-server-lane.lock .venv/bin/python scripts/server_lane.py
tests/test_x.py -k name` (the lock: the lane's ports and machine are shared).

Measured on the project's 2-core machine (November 2026, shared with other work): installing the package
takes 5-7 s; the server answers pymilvus 6-10 s after launch (the 40 s of earlier notes did not
reproduce); the whole lane takes about 25 s. With pymilvus 3.0.2: create_collection (quick setup),
insert, query with a filter, count(*), search, create_database/drop_database and clients bound to a
database through the URI path all work; `MilvusClient.use_database` does not (it calls DescribeDatabase,
which 2.3 lacks). Reads right after a write need consistency_level="Strong" (the default is Bounded).
The server binary sometimes hangs in its SIGTERM shutdown, so it is killed after a grace period. Every
component is pinned to 127.0.0.1; left alone they register and dial the machine's first non-loopback
address.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
SERVER_VENV = REPO / ".venv-milvus-server"
SERVER_PACKAGE = "milvus==2.3.5"
TEST_PYTHON = REPO / ".venv" / "bin" / "python"
# Server components that advertise an address to each other.
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")

LANE_BUDGET_S = 1500  # pytest must end by then; stopping the server takes up to 3 x STOP_GRACE_S more
STARTUP_DEADLINE_S = 120
STOP_GRACE_S = 10
PYTEST_NO_TESTS = 5


def log(message: str) -> None:
    print(f"server_lane: {message}", flush=True)


def ensure_server_venv() -> Path:
    """Return the `milvus-server` executable, installing the package into its own venv if missing."""
    exe = SERVER_VENV / "bin" / "milvus-server"
    if not exe.exists():
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(SERVER_VENV)], check=True)
        subprocess.run(
            [str(SERVER_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", SERVER_PACKAGE],
            check=True,
        )
        log(f"installed {SERVER_PACKAGE} into {SERVER_VENV.name} in {time.monotonic() - started:.1f} s")
    return exe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(exe: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    args = [str(exe), "--data", str(data_dir), "--proxy-port", str(port)]
    for component in COMPONENTS:
        args += ["--extra-config", f"{component}.ip=127.0.0.1"]
    with open(data_dir / "launcher.log", "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_ready(server: subprocess.Popen[bytes], uri: str) -> float:
    """Poll with pymilvus until the server answers; return the seconds it took."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    started = time.monotonic()
    while time.monotonic() - started < STARTUP_DEADLINE_S:
        if server.poll() is not None:
            raise RuntimeError(f"milvus-server exited with code {server.returncode} before answering")
        try:
            client = MilvusClient(uri=uri, timeout=2)
            client.list_collections()
            client.close()
            return time.monotonic() - started
        except MilvusException:
            time.sleep(0.5)
    raise TimeoutError(f"milvus-server did not answer within {STARTUP_DEADLINE_S} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Terminate the launcher and the server binary it started, then kill whatever outlives the grace period."""
    try:
        processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        processes = []
    for process in processes:
        process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=STOP_GRACE_S)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=STOP_GRACE_S)
    server.wait(timeout=STOP_GRACE_S)
    log(f"server stopped ({len(alive)} of {len(processes)} processes needed a kill)")


def print_server_log(data_dir: Path) -> None:
    """Show the end of the server's logs: the data directory is deleted when the lane ends."""
    for path in (data_dir / "launcher.log", data_dir / "logs" / "milvus-stdout.log"):
        if path.exists():
            log(f"last lines of {path.name}:")
            for line in path.read_text(errors="replace").splitlines()[-20:]:
                print("    " + line[:300])


def run_pytest(uri: str, budget_s: float, selection: list[str]) -> int:
    env = {key: value for key, value in os.environ.items() if key != "MILVUS_TOKEN"}  # 2.3.5 runs without auth
    env["MILVUS_URI"] = uri
    command = [str(TEST_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "server or milvus", *selection]
    try:
        return subprocess.run(command, cwd=REPO, env=env, timeout=budget_s).returncode
    except subprocess.TimeoutExpired:
        log(f"pytest did not finish within the lane's budget ({budget_s:.0f} s left)")
        return 1


def main(selection: list[str]) -> int:
    # Turn a SIGTERM (CI cancelling the lane) into SystemExit so the finally below still stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    lane_started = time.monotonic()
    exe = ensure_server_venv()
    with tempfile.TemporaryDirectory(prefix="milvusdiff-server-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        server = start_server(exe, data_dir, port)
        try:
            try:
                startup_s = wait_until_ready(server, uri)
            except (RuntimeError, TimeoutError) as exc:
                log(str(exc))
                print_server_log(data_dir)
                return 1
            log(f"Milvus 2.3.5 answered at {uri} after {startup_s:.1f} s")
            code = run_pytest(uri, LANE_BUDGET_S - (time.monotonic() - lane_started), selection)
        finally:
            stop_server(server)
    if code == PYTEST_NO_TESTS:
        log("pytest collected no test marked `server` or requesting `milvus_uri` (exit 5)")
    log(f"done in {time.monotonic() - lane_started:.0f} s, pytest exit code {code}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
