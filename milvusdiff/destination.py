"""Where an output may go: the one rule every command that writes `--out` applies, and the hidden work
entries it builds in.

milvusdiff's outputs sit next to the evidence they were made from, so a mistyped `--out` must never
cost data. The rule, checked before any store is read:
  - an existing, non-empty `--out` is refused unless `--overwrite` is given;
  - `--overwrite` replaces only an earlier milvusdiff output of the same kind: a directory holding
    the marker file every output gets (`.milvusdiff-output.json`, naming its kind) plus that kind's
    manifest or summary, or a single-file snapshot whose Parquet footer holds its manifest;
  - never an input of the same command, nor a path that contains one or lies inside one;
  - never a store: the Milvus Lite database, the LMDB journal, the embedded PostgreSQL data directory
    (by the settings in force, and by their contents wherever they are).
Anything else is a SnapshotError (exit 2, one line).

Work happens in hidden entries beside the destination (`.NAME.partial-*`, `.NAME.scratch-*`). Each is
created under a neutral name, locked with flock(2) and only then renamed to its pattern, and stays
locked while its creator lives; the kernel drops the lock when the process dies, however it dies. So
an entry of the pattern that can be locked is stale without doubt, and `sweep_stale` removes it: the
next run in the same directory cleans up after a killed one, and never touches a live peer's work.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

from milvusdiff.config import Settings, is_milvus_lite
from milvusdiff.errors import SnapshotError
from milvusdiff.snapshot_format import FORMAT_VERSION, MANIFEST_META, MANIFEST_NAME

MARKER_NAME = ".milvusdiff-output.json"
SUMMARY_NAME = "summary.json"
# What proves a directory is an earlier output of each kind, besides the marker.
_EVIDENCE = {
    "snapshot": MANIFEST_NAME,
    "snapshot-set": f"milvus/{MANIFEST_NAME}",
    "compare": SUMMARY_NAME,
    "validate": SUMMARY_NAME,
    "validate-all": "index.json",
    "query-check": SUMMARY_NAME,
    "search-check": SUMMARY_NAME,
}
KINDS = tuple(_EVIDENCE)

# Hidden work entries (see the module docstring); `.milvusdiff-compare-*` is the name older releases used.
_WORK = re.compile(r"^\..+\.(?:partial|scratch|replaced|old)-\d+-[0-9a-f]+$|^\.milvusdiff-compare-.+$")


def _inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser())).resolve()


def store_paths(settings: Settings) -> dict[Path, str]:
    """The stores the settings name, by resolved path."""
    stores = {_resolved(settings.journal_path): "the journal"}
    if is_milvus_lite(settings.milvus_uri):
        stores[_resolved(Path(settings.milvus_uri))] = "the Milvus Lite database"
    if settings.pg_conn is None:
        stores[_resolved(settings.home / "pg")] = "the embedded PostgreSQL data directory"
    return stores


def _store_by_content(path: Path) -> str | None:
    """A store wherever it is: what LMDB, PostgreSQL and Milvus Lite leave in their directories."""
    if not path.is_dir():
        return None
    if (path / "data.mdb").exists():
        return "an LMDB database (a journal)"
    if (path / "PG_VERSION").exists():
        return "a PostgreSQL data directory"
    if (path / "LOCK").exists() and (path / "collections").is_dir():
        return "a Milvus Lite database"
    return None


def _marker_kind(path: Path) -> str | None:
    """The kind of milvusdiff output `path` is, or None when it is not one."""
    if path.is_file() and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(path).metadata or {}
        except Exception:
            return None
        return "snapshot" if MANIFEST_META in meta else None
    try:
        kind = json.loads((path / MARKER_NAME).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    evidence = _EVIDENCE.get(kind) if isinstance(kind, str) else None
    return kind if evidence is not None and (path / evidence).is_file() else None


def guard(
    out: Path,
    *,
    kind: str,
    overwrite: bool,
    inputs: Iterable[Path] = (),
    settings: Settings | None = None,
) -> None:
    """Refuse `out` unless writing there can destroy nothing but an earlier output of the same kind."""
    assert kind in _EVIDENCE, kind
    target = _resolved(out)
    for given in inputs:
        source = _resolved(given)
        if _inside(target, source) or _inside(source, target):
            where = "is" if target == source else ("is inside" if _inside(target, source) else "contains")
            raise SnapshotError(f"output {out} {where} the input {given}: choose another --out")
    for store, what in store_paths(settings or Settings.resolve()).items():
        if _store_by_content(store) is None:
            continue  # nothing there yet: a path named in the settings is not a store until one is made there
        if _inside(target, store) or _inside(store, target):
            where = "is" if target == store else ("is inside" if _inside(target, store) else "contains")
            raise SnapshotError(f"output {out} {where} {what} ({store}): choose another --out")
    found = _store_by_content(target)
    if found is not None:
        raise SnapshotError(f"output {out} is {found}: choose another --out")
    if (target.exists() or target.is_symlink()) and not (target.is_dir() and not any(target.iterdir())):
        if not overwrite:
            raise SnapshotError(f"output {out} already exists (pass --overwrite to replace it)")
        made = _marker_kind(target)
        if made != kind:
            what = f"a milvusdiff {made} output, not a {kind} output" if made else "not an output of milvusdiff"
            raise SnapshotError(f"output {out} is {what}: --overwrite replaces only an earlier {kind} output")
    _writable_parent(out)


def _writable_parent(out: Path) -> None:
    existing = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    if not existing.is_dir():
        raise SnapshotError(f"cannot create the output directory {out.parent}: {existing} is a file, not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnapshotError(f"cannot create the output directory {out.parent}: {exc.strerror or exc}") from exc
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise SnapshotError(f"output directory {out.parent} is not writable")


def write_marker(directory: Path, kind: str) -> None:
    """Sign a directory output as milvusdiff's, so that a later `--overwrite` may replace it."""
    from milvusdiff import __version__

    text = json.dumps({"kind": kind, "format": FORMAT_VERSION, "milvusdiff_version": __version__})
    (directory / MARKER_NAME).write_text(text + "\n", encoding="utf-8")


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class WorkEntry:
    """A hidden directory or file beside an output, locked for as long as this process holds it."""

    def __init__(self, parent: Path, name: str, *, directory: bool) -> None:
        neutral = parent / f".milvusdiff-creating-{secrets.token_hex(8)}"
        if directory:
            neutral.mkdir()
        else:
            os.close(os.open(neutral, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            self._fd: int | None = os.open(neutral, os.O_RDONLY)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            self.path = parent / name
            os.rename(neutral, self.path)
        except BaseException:
            remove(neutral)
            raise

    def release(self) -> None:
        """Drop the lock (the entry was published under its final name, or removed)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        remove(self.path)
        self.release()


def work_token() -> str:
    """`PID-HEX`: unique beside any peer, and what `sweep_stale` recognises."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def sweep_stale(directory: Path) -> list[Path]:
    """Remove the work entries in `directory` that no living process holds; return what was removed."""
    removed: list[Path] = []
    try:
        entries = [e for e in directory.iterdir() if _WORK.match(e.name)]
    except OSError:
        return removed
    for entry in entries:
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live peer's
        try:
            remove(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed
