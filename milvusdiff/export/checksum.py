"""SHA-256 of a file while it is being written, in a thread of its own.

Hashing inside the write path (a Python file object around the Parquet sink) measured ~30% slower
than the native sink, and hashing after close adds a full read at the end of every part. Instead a
thread follows the file as it grows: the writer tells it how far the file is complete after each row
group, and it reads and hashes up to there while the writer encodes the next one (both outside the
GIL). When the part closes only its footer is left to hash.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_CHUNK = 4 << 20


class TailHasher:
    def __init__(self, path: Path, *, sync: bool) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._sync = sync
        self._sha = hashlib.sha256()
        self._hashed = 0
        self._written = 0
        self._closing = False
        self._error: OSError | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._follow, name="milvusdiff-sha256", daemon=True)
        self._thread.start()

    def advance(self, written: int) -> None:
        """The file's first `written` bytes are final."""
        with self._changed:
            self._written = written
            self._changed.notify()

    def finish(self, written: int) -> str:
        """The file is complete at `written` bytes: hash what is left and return the hex digest."""
        self._stop(written)
        if self._error is not None:
            raise self._error
        return self._sha.hexdigest()

    def abandon(self) -> None:
        self._stop(self._hashed)

    def _stop(self, written: int) -> None:
        with self._changed:
            self._written = written
            self._closing = True
            self._changed.notify()
        self._thread.join()
        os.close(self._fd)

    def _follow(self) -> None:
        try:
            while True:
                with self._changed:
                    while self._hashed >= self._written and not self._closing:
                        self._changed.wait()
                    target, closing = self._written, self._closing
                while self._hashed < target:
                    chunk = os.pread(self._fd, min(_CHUNK, target - self._hashed), self._hashed)
                    if not chunk:
                        raise OSError(f"file ended at {self._hashed} bytes, {target} were written")
                    self._sha.update(chunk)
                    self._hashed += len(chunk)
                if closing:
                    return
                if self._sync:
                    # A durable export: write what is complete now to disk, off the writer's path, so that
                    # the fsync at close has little left to wait for (400k rows: close from 0.07-0.10s to <0.01s).
                    os.fdatasync(self._fd)
        except OSError as exc:
            self._error = exc
