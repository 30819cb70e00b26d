"""How the journal's LMDB environment is opened and shared in a process, and how its writers are told apart.

LMDB refuses a second handle on one environment in a process, allows growing the map only while no
transaction of the process is active, and keeps its reader table in lock.mdb: the handles here are shared,
their transactions pass a gate, and a reader alone opens without locks so that the journal's files stay
byte-identical. Every process writing to the journal holds a flock'ed file in `writers/`, which is how
recovery tells a dead writer's pending intent from a live one's (services/journal.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb

from milvusdiff.errors import JournalError

WRITERS_DIR = "writers"

# LMDB refuses a second handle on one environment in a process (its locks are per process), yet a
# ShadowClient and an export or compare of the same journal may well share a process: they share it.
# A reader opened while no handle of the process exists gets one of its own, read-only (readonly=True).
# (path, read-only) -> [environment, number of open Journals, Gate, _WriterLock | None, opened without locks]
_ENVS: dict[tuple[Path, bool], list[Any]] = {}
_ENVS_LOCK = threading.Lock()


class Gate:
    """Every transaction on one environment passes the gate together; growing the map passes it alone.

    LMDB allows mdb_env_set_mapsize only while no transaction of the process is active: resizing while
    another thread reads or writes fails (EINVAL on its next put) or corrupts that thread's view. A resize
    waits for the transactions in flight to end and holds new ones back until the map has grown.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._resizing = False
        self._held = threading.local()  # transactions this thread has open

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._active += 1
        self._held.count = getattr(self._held, "count", 0) + 1
        try:
            yield
        finally:
            self._held.count -= 1
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def alone(self, action: Callable[[], None]) -> None:
        if getattr(self._held, "count", 0):
            raise JournalError("the journal's map must grow while this thread holds one of its transactions open")
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            try:
                while self._active:
                    self._cond.wait()
                action()
            finally:
                self._resizing = False
                self._cond.notify_all()


def open_env(path: Path, map_size: int, sync: bool, readonly: bool) -> tuple[tuple[Path, bool], Any, Gate, bool]:
    """(registry key, environment, gate, unlocked): a reader shares any handle the process already has."""
    with _ENVS_LOCK:
        resolved = path.resolve()
        found = [(resolved, False), (resolved, True)] if readonly else [(resolved, False)]
        handle = next((k for k in found if k in _ENVS), (resolved, readonly))
        entry = _ENVS.get(handle)
        if entry is None:
            if readonly:
                unlocked = not _opened_elsewhere(path)
                env = lmdb.open(str(path), readonly=True, lock=not unlocked, max_dbs=4, create=False)
            else:
                unlocked = False
                env = lmdb.open(str(path), map_size=map_size, max_dbs=4, sync=sync, metasync=sync)
            entry = _ENVS[handle] = [env, 0, Gate(), None, unlocked]
        entry[1] += 1
        return handle, entry[0], entry[2], entry[4]


def close_env(handle: tuple[Path, bool]) -> None:
    with _ENVS_LOCK:
        entry = _ENVS[handle]
        entry[1] -= 1
        if entry[1] == 0:
            entry[0].close()
            if entry[3] is not None:
                entry[3].release()
            del _ENVS[handle]


def _opened_elsewhere(path: Path) -> bool:
    """Whether another process has the journal open (LMDB holds a lock on byte 0 of lock.mdb while it does).

    Only then does a reader need LMDB's reader table, which lives in lock.mdb and so changes it; alone, a
    reader opens without locks and leaves every byte of the journal as it was. Asking takes an exclusive
    lock on that byte and drops it at once: no writer is ever kept waiting.
    """
    try:
        fd = os.open(path / "lock.mdb", os.O_RDWR)
    except OSError:
        return False  # no lock file (or a read-only copy): nobody can be writing through it
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0, os.SEEK_SET)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0, os.SEEK_SET)
        return False
    finally:
        os.close(fd)


def writer_of(path: Path, create: bool) -> str | None:
    """This process's writer token for the journal at `path` (made, and its file locked, on first use)."""
    with _ENVS_LOCK:
        entry = _ENVS[(path.resolve(), False)]
        if entry[3] is None and create:
            entry[3] = _WriterLock(path / WRITERS_DIR)
        return None if entry[3] is None else str(entry[3].token)


class _WriterLock:
    """A file in `writers/`, flock'ed (exclusive) for as long as this process has the journal open.

    The kernel releases a flock when its process dies, however it dies (kill -9 included), so a probe that
    can take the lock has found a dead writer. Tokens are random, so a new process never takes a dead one's.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(exist_ok=True)
        while True:
            token = uuid.uuid4().hex
            path = directory / f"{token}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A recovery that probed the file between its creation and our lock took it for a dead writer's
            # and removed it: then start over with another, or our intents would look orphaned.
            try:
                kept = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                kept = False
            if kept:
                break
            os.close(fd)
        self.token, self.path, self._fd = token, path, fd

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)


def writer_alive(directory: Path, token: str) -> bool:
    """Whether another process still holds writer `token`'s lock (a missing file: it ended, or cleaned up)."""
    try:
        fd = os.open(directory / f"{token}.lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def process_alive(pid: Any) -> bool:
    """Whether the process that began a write still runs (records without a pid count as dead). Only for
    intents older than writer locks: under a PID namespace or after pid reuse it can say "alive" wrongly."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
