"""The embedded PostgreSQL server: started on demand, shared between processes, stopped by its last user."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from milvusdiff.config import Settings
from milvusdiff.errors import ConfigError
from milvusdiff.services.embedded_pg import ensure_embedded_pg, stop_embedded_pg
from milvusdiff.services.pg_target import resolve_pg_conn

# Prints the server's postmaster pid as seen from a separate interpreter, then exits normally.
CHILD = """
import sys, psycopg
from pathlib import Path
from milvusdiff.services.embedded_pg import ensure_embedded_pg
with psycopg.connect(ensure_embedded_pg(Path(sys.argv[1]))) as conn:
    print(conn.execute("SELECT pg_postmaster_start_time()::text").fetchall()[0][0])
"""


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def process_is_gone(pid: int) -> bool:
    """True for a process that exited; the postmaster is reparented to init, which may not have reaped it yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start_time(uri: str) -> str:
    with psycopg.connect(uri) as conn:
        return str(conn.execute("SELECT pg_postmaster_start_time()::text").fetchall()[0][0])


@pytest.fixture(scope="module")
def home(make_pg_home: Callable[[], Path]) -> Iterator[Path]:
    """A milvusdiff home whose embedded server (`home/pg`) is shared by this module's tests."""
    home = make_pg_home()
    yield home
    stop_embedded_pg(home / "pg")


def test_starts_and_answers_a_query(home: Path) -> None:
    uri = ensure_embedded_pg(home / "pg")
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT 1 + 1").fetchall() == [(2,)]


def test_second_call_in_the_same_process_reuses_the_server(home: Path) -> None:
    first = ensure_embedded_pg(home / "pg")
    pid = postmaster_pid(home / "pg")
    assert ensure_embedded_pg(home / "pg") == first
    assert postmaster_pid(home / "pg") == pid


def test_another_process_reuses_the_running_server_and_leaves_it_running(home: Path) -> None:
    uri = ensure_embedded_pg(home / "pg")
    before = start_time(uri)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(home / "pg")], capture_output=True, text=True, check=True, timeout=60
    )
    assert child.stdout.strip() == before
    assert child.stderr == ""  # no RuntimeDirWarning or other noise from the wheel
    assert start_time(uri) == before  # the child left; we still hold the server


def test_resolve_pg_conn_prefers_the_configured_server(home: Path) -> None:
    configured = Settings(milvus_uri="x.db", milvus_token=None, pg_conn="postgresql://elsewhere/db", journal_path=home)
    assert resolve_pg_conn(configured) == "postgresql://elsewhere/db"


def test_resolve_pg_conn_falls_back_to_the_embedded_server_under_home(home: Path) -> None:
    settings = Settings(milvus_uri="x.db", milvus_token=None, pg_conn=None, journal_path=home / "j", home=home)
    assert resolve_pg_conn(settings) == ensure_embedded_pg(home / "pg")


def test_last_user_stops_the_server_even_after_a_crashed_one(make_pg_home: Callable[[], Path]) -> None:
    data_dir = make_pg_home() / "pg"
    ensure_embedded_pg(data_dir)
    pid = postmaster_pid(data_dir)
    crashed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    handles = data_dir / ".handle_pids.json"
    handles.write_text(json.dumps([*json.loads(handles.read_text()), int(crashed.stdout)]))

    stop_embedded_pg(data_dir)
    assert not (data_dir / "postmaster.pid").exists()  # removed by a clean shutdown only
    assert process_is_gone(pid)


def test_rejects_a_data_directory_with_spaces(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="whitespace"):
        ensure_embedded_pg(tmp_path / "with space" / "pg")
