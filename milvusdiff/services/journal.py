"""The LMDB journal: what was intended for every primary key, and the log of every write.

Why LMDB: a write's intent must be on disk before Milvus is called, so that a crash at any point
leaves a record; LMDB gives durable (fsync'd) transactions in microseconds, readers that never block
the writer, and one file a user can copy. Databases inside the environment:

- `ops`     seq (8 bytes, big-endian) -> JSON record: collection, op, partition, n_keys, a sample of
            keys, time, status (pending / committed / failed / in_doubt / pg_missing), error.
- `intents` seq -> the full key list and row digests of a write not yet settled. A pending intent
            found at open time belongs to a process that died mid-write: its keys become IN_DOUBT.
- `keys`    collection + NUL + encoded key -> packed state (state, last seq, last op, digest, flags).
- `meta`    the sequence counter, the spec of every collection seen, which of them the journal saw
            created (`created:NAME`), the versions below, (`unkeyed:` + seq) the row digests of an
            auto_id insert left IN_DOUBT before Milvus named its keys (see `begin_unkeyed`), and
            (`rename_in_doubt:` + seq) each rename whose outcome is unknown until `settle_rename`.

Beside the environment, `writers/` holds one lock file per process writing to the journal, flock'ed while
that process has it open: an intent records its writer's file, and recovery asks the lock, which the kernel
drops when the process dies, whether the writer still runs (a pid cannot say: in a container every writer
is pid 1, and pids are reused). How handles are shared and writers locked: services/journal_env.py.

Keys are encoded with a type tag, so the string '42' and the integer 42 are different keys.

Versions: `meta` holds `format_version` (this file's layout, FORMAT_VERSION) and `digest_version` (the
row-digest layout of milvusdiff.types.digest). A journal of another version is refused when opened: a
reader that misread its key states or digests would give wrong verdicts. A journal written before
versions were recorded has format 1 and digest layout 1 (the op codes below are the list positions it
used), and a writer stamps it.

Reads: Journal(path, readonly=True) (compare, export, validate) changes nothing on disk and runs no
recovery; it reports the keys of writes still pending as IN_DOUBT without settling them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from milvusdiff.errors import JournalError
from milvusdiff.services.journal_env import (
    WRITERS_DIR,
    close_env,
    open_env,
    process_alive,
    writer_alive,
    writer_of,
)
from milvusdiff.types.digest import DIGEST_VERSION
from milvusdiff.types.spec import CollectionSpec, in_database, shadow_name

FORMAT_VERSION = 1
EXISTS, DELETED, IN_DOUBT = 1, 2, 3
STATE_NAMES = {EXISTS: "EXISTS", DELETED: "DELETED", IN_DOUBT: "IN_DOUBT"}
# The code of each operation, as written into every key state on disk. The one table of them: a code,
# once written, keeps its meaning forever; a new operation takes a new code (at most 255).
OP_CODES = {
    "insert": 1,
    "upsert": 2,
    "delete": 3,
    "drop_partition": 4,
    "drop_collection": 5,
    "repair": 6,
    "create_partition": 7,
    "repair_delete": 8,
    "rename_collection": 9,
    "truncate_collection": 10,
    "create_alias": 11,
    "alter_alias": 12,
    "drop_alias": 13,
    "drop_database": 14,
}
# Operations after which their keys are gone.
DELETING_OPS = frozenset({"delete", "drop_partition", "repair_delete", "truncate_collection"})
OP_NAMES = {code: name for name, code in OP_CODES.items()}
# Parquet metadata of a journal snapshot: its format version, and whether it covers the collection from
# its creation ("true": a key it does not hold was never written).
FORMAT_VERSION_KEY = "milvusdiff.journal_format"
COMPLETE_KEY = "milvusdiff.journal_complete"
FLAG_DUPLICATE_INSERT = 1
FLAG_PG_MISSING = 2
FLAG_NAMES = {FLAG_DUPLICATE_INSERT: "duplicate_insert", FLAG_PG_MISSING: "pg_missing"}

_STATE = struct.Struct("<BQB16sB")  # state, last_seq, last_op, digest, flags
_STATE_DTYPE = np.dtype([("state", "u1"), ("seq", "<u8"), ("op", "u1"), ("digest", "V16"), ("flags", "u1")])
_NO_DIGEST = bytes(16)
_INT_OFFSET = 1 << 63
_SAMPLE_KEYS = 10
_INITIAL_MAP_SIZE = 64 << 20
_UNKEYED = b"unkeyed:"
_RENAME_IN_DOUBT = b"rename_in_doubt:"

_VERSION_KEYS = {b"format_version": ("format", FORMAT_VERSION), b"digest_version": ("row-digest", DIGEST_VERSION)}


Key = int | str
# seq of an auto_id insert in doubt -> (keys, digests) of the rows of it Milvus holds (workflow.adopt).
Adoption = Mapping[int, tuple[Sequence[Key], Sequence[bytes]]]


def encode_key(key: Key) -> bytes:
    """Tagged, order-preserving key bytes: b'i' + offset big-endian int64, or b's' + UTF-8."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return b"i" + (int(key) + _INT_OFFSET).to_bytes(8, "big")
    if isinstance(key, str):
        return b"s" + key.encode("utf-8")
    raise JournalError(f"primary key {key!r} is neither an integer nor a string")


def decode_key(raw: bytes) -> Key:
    if raw[:1] == b"i":
        return int.from_bytes(raw[1:9], "big") - _INT_OFFSET
    return raw[1:].decode("utf-8")


@dataclass(frozen=True)
class KeyState:
    state: str
    last_seq: int
    last_op: str
    digest: bytes | None
    flags: tuple[str, ...]


def _flag_names(bits: int) -> tuple[str, ...]:
    return tuple(name for bit, name in FLAG_NAMES.items() if bits & bit)


class Journal:
    """One LMDB environment; safe to share between threads (LMDB serialises writers).

    readonly=True opens it for reading only: nothing on disk changes, no recovery runs, and the keys of
    pending writes read as IN_DOUBT.

    A Journal speaks of the collections of one Milvus database (`database`, None for the one the Milvus URI
    names; `in_database` gives another's): collection arguments are names in Milvus, stored under
    `shadow_name(database, collection)`. Operations named by their sequence number are the same in every one.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sync: bool = True,
        map_size: int = _INITIAL_MAP_SIZE,
        readonly: bool = False,
        database: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.database = database
        self._owner = True
        self._env: Any = None
        try:
            if readonly and not (self.path / "data.mdb").is_file():
                raise JournalError(f"no journal at {self.path} (no data.mdb)")
            if not readonly:
                self.path.mkdir(parents=True, exist_ok=True)
            self._handle, self._env, self._gate, self._unlocked = open_env(self.path, map_size, sync, readonly)
            create = not self._handle[1]
            self._ops = self._env.open_db(b"ops", create=create)
            self._intents = self._env.open_db(b"intents", create=create)
            self._keys = self._env.open_db(b"keys", create=create)
            self._meta = self._env.open_db(b"meta", create=create)
            self._check_versions()
        except (OSError, lmdb.Error, JournalError) as exc:
            self.close()
            if isinstance(exc, JournalError):
                raise
            raise JournalError(f"cannot open journal at {self.path}: {exc}") from exc
        self.recovered = [] if readonly else self.recover()

    def _check_versions(self) -> None:
        """Refuse a journal of another format or digest layout; a writer stamps a journal that has none."""
        with self._txn() as txn:
            stored = {key: txn.get(key, db=self._meta) for key in _VERSION_KEYS}
        for key, raw in stored.items():
            what, ours = _VERSION_KEYS[key]
            found = 1 if raw is None else int.from_bytes(raw, "big")  # unversioned journals are version 1
            if found != ours:
                raise JournalError(
                    f"the journal at {self.path} has {what} version {found}; this milvusdiff reads version {ours} only"
                )
        missing = [key for key, raw in stored.items() if raw is None]
        if missing and not self.readonly:
            versions = {key: _VERSION_KEYS[key][1].to_bytes(4, "big") for key in missing}
            self._write(lambda txn: [txn.put(k, v, db=self._meta) for k, v in versions.items()])

    def in_database(self, database: str | None) -> Journal:
        """This journal, for the collections of another Milvus database; it shares the environment, so close
        this one (closing the view does nothing)."""
        view = copy.copy(self)
        view.database = database
        view._owner = False
        return view

    def _name(self, collection: str) -> str:
        return shadow_name(self.database, collection)

    def close(self) -> None:
        if self._owner and self._env is not None:
            close_env(self._handle)
            self._env = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _txn(self, *, write: bool = False) -> Iterator[Any]:
        """A transaction that a map resize (ours, or another process's) cannot pull the map from under."""
        while True:
            with self._gate.shared():
                try:
                    txn = self._env.begin(write=write)
                except lmdb.MapResizedError:
                    pass  # another process grew the map: adopt its size below, then begin again
                else:
                    with txn:
                        yield txn
                        self._check_unlocked_read(txn)
                    return
            self._gate.alone(lambda: self._env.set_mapsize(0))

    def _check_unlocked_read(self, txn: Any) -> None:
        """A reader without locks is invisible to writers: a writer that started meanwhile may reuse, from
        its second commit on, pages this read still saw. Such a read is refused, never used."""
        if self._unlocked and self._env.info()["last_txnid"] > txn.id() + 1:
            raise JournalError(f"the journal at {self.path} was written while it was read; read it again")

    def _write(self, work: Any) -> Any:
        """Run work(txn) in a write transaction, growing the map and retrying when it is full."""
        while True:
            with self._gate.shared():  # not while another thread resizes: LMDB reports EINVAL then
                seen = self._env.info()["map_size"]
            try:
                with self._txn(write=True) as txn:
                    return work(txn)
            except lmdb.MapFullError:
                self._gate.alone(functools.partial(self._grow, seen))

    def _grow(self, seen: int) -> None:
        if self._env.info()["map_size"] == seen:  # not grown meanwhile by another thread that was full too
            self._env.set_mapsize(seen * 2)

    def _next_seq(self, txn: Any) -> int:
        raw = txn.get(b"next_seq", db=self._meta)
        seq = int.from_bytes(raw, "big") if raw else 1
        txn.put(b"next_seq", (seq + 1).to_bytes(8, "big"), db=self._meta)
        return seq

    def bind_database(self, database: str) -> None:
        """Tie the journal to the Milvus database whose collections it names bare (the URI's database).

        Bare names are relative to that database, so two clients whose URIs name different databases
        would journal two different `docs` collections under one name. The first writer records its
        database; a writer for another one is refused rather than mixed in."""

        def work(txn: Any) -> str:
            raw = txn.get(_BOUND_DATABASE, db=self._meta)
            if raw is None:
                txn.put(_BOUND_DATABASE, database.encode(), db=self._meta)
                return database
            return bytes(raw).decode()

        bound = self._write(work)
        if bound != database:
            raise JournalError(
                f"the journal at {self.path} records Milvus database {bound!r}, and this client's URI names "
                f"{database!r}: give each Milvus database its own journal and shadow schema "
                "(MILVUSDIFF_JOURNAL, MILVUSDIFF_PG_SCHEMA), or name other databases per call (db_name)"
            )

    def register_collection(self, spec: CollectionSpec) -> None:
        name = self._name(spec.name).encode()
        self._write(lambda txn: txn.put(b"spec:" + name, spec.to_json().encode(), db=self._meta))

    def record_creation(self, spec: CollectionSpec) -> None:
        """The ShadowClient created this collection: from now on the journal sees every write to it.

        A new collection is empty, so key states left under its name (by a drop that was interrupted
        before the journal forgot them) are phantoms: they go. A key the journal never saw was then
        never written, which is what lets compare blame a store that holds one.
        """

        name = self._name(spec.name)

        def work(txn: Any) -> None:
            _forget_keys(txn, self._keys, name)
            for unkeyed in self.unkeyed_in_doubt(spec.name, txn):
                txn.delete(_UNKEYED + _seq_key(unkeyed), db=self._meta)
            txn.put(b"spec:" + name.encode(), spec.to_json().encode(), db=self._meta)
            txn.put(b"created:" + name.encode(), json.dumps({"time": time.time()}).encode(), db=self._meta)

        self._write(work)

    def covers_creation(self, collection: str) -> bool:
        """Whether the journal saw the collection created (so it saw every write to it since)."""
        with self._txn() as txn:
            return txn.get(b"created:" + self._name(collection).encode(), db=self._meta) is not None

    def collection_spec(self, name: str) -> CollectionSpec | None:
        with self._txn() as txn:
            raw = txn.get(b"spec:" + self._name(name).encode(), db=self._meta)
        return CollectionSpec.from_json(raw) if raw else None

    def collections(self) -> list[str]:
        with self._txn() as txn, txn.cursor(db=self._meta) as cur:
            names = [k[5:].decode() for k, _ in cur if k.startswith(b"spec:")]
        return in_database(names, self.database)

    def begin(
        self,
        collection: str,
        op: str,
        keys: Sequence[Key],
        digests: Sequence[bytes] | None = None,
        partition: str | None = None,
        target: str | None = None,
    ) -> int:
        """Durably record the intent of a write before any store is touched; returns its sequence number.
        `target` names what a collection-level operation points at: a rename's new name, an alias."""
        encoded = [encode_key(k) for k in keys]
        digest_blob = b"".join(digests) if digests is not None else b""
        record = {
            "collection": self._name(collection),
            "op": op,
            "partition": partition,
            "n_keys": len(encoded),
            "keys_sample": [_jsonable(k) for k in keys[:_SAMPLE_KEYS]],
            "time": time.time(),
            "status": "pending",
            "pid": os.getpid(),
            "writer": writer_of(self.path, create=True),
        }
        if target is not None:
            record["target"] = target

        def work(txn: Any) -> int:
            seq = self._next_seq(txn)
            txn.put(_seq_key(seq), json.dumps({**record, "seq": seq}).encode(), db=self._ops)
            txn.put(_seq_key(seq), _pack_intent(encoded, digest_blob), db=self._intents)
            return seq

        return int(self._write(work))

    def begin_unkeyed(self, collection: str, digests: Sequence[bytes], partition: str | None = None) -> int:
        """The intent of an auto_id insert: Milvus will name the keys, so the intent holds the number of rows
        (`n_rows`) and each row's digest without its key (`unkeyed_digests`). If the write's outcome is never
        known (timeout, or the writer killed before the keys came back), those digests are kept, so the rows
        Milvus holds can later be recognised as this write's (`adopt_unkeyed`) instead of counting as unknown."""
        seq = self.begin(collection, "insert", [], digests, partition=partition)

        def work(txn: Any) -> None:
            record = json.loads(txn.get(_seq_key(seq), db=self._ops))
            record.update(auto_id=True, n_rows=len(digests))
            txn.put(_seq_key(seq), json.dumps(record).encode(), db=self._ops)

        self._write(work)
        return seq

    def unkeyed_in_doubt(self, collection: str, txn: Any = None) -> dict[int, list[bytes]]:
        """Auto_id inserts left IN_DOUBT with no key known: seq -> the digests (without key) of their rows."""
        if txn is None:
            with self._txn() as own:
                return self.unkeyed_in_doubt(collection, own)
        found: dict[int, list[bytes]] = {}
        for seq, digests in self._marked(txn, _UNKEYED):
            record = json.loads(txn.get(_seq_key(seq), default=b"{}", db=self._ops))
            if record.get("collection") == self._name(collection):
                found[seq] = _digest_list(digests)
        return found

    def _marked(self, txn: Any, prefix: bytes) -> list[tuple[int, bytes]]:
        """(seq, value) of the `meta` entries `prefix` + seq, oldest first."""
        found = []
        with txn.cursor(db=self._meta) as cur:
            if cur.set_range(prefix):
                for k, v in cur:
                    if not k.startswith(prefix):
                        break
                    found.append((int.from_bytes(k[len(prefix) :], "big"), bytes(v)))
        return found

    def unkeyed_outstanding(self, collection: str) -> dict[int, list[bytes]]:
        """`unkeyed_in_doubt`, plus the auto_id inserts of `collection` still pending with no key known (a reader
        takes a pending write as in doubt; its writer may have died, which only a writable open's recovery
        settles): seq -> the digests (without key) of their rows."""
        with self._txn() as txn:
            found = self.unkeyed_in_doubt(collection, txn)
            with txn.cursor(db=self._intents) as cur:
                for raw_seq, raw_intent in cur:
                    record = json.loads(txn.get(raw_seq, default=b"{}", db=self._ops))
                    keys, digests = _unpack_intent(raw_intent)
                    if record.get("auto_id") and not keys and record.get("collection") == self._name(collection):
                        found[int.from_bytes(raw_seq, "big")] = _digest_list(digests)
        return found

    def adopt_unkeyed(self, seq: int, keys: Sequence[Key], digests: Sequence[bytes]) -> None:
        """The rows Milvus holds that match in-doubt auto_id insert `seq` (found by their digests without key)
        are its rows: their keys become IN_DOUBT with these digests, for repair to settle like any other write
        of unknown outcome. The digests without key are then dropped: a complete look at Milvus found what it
        holds of the write, and rows it does not hold were never written."""

        def work(txn: Any) -> None:
            raw_op = txn.get(_seq_key(seq), db=self._ops)
            if raw_op is None:
                raise JournalError(f"no operation {seq} in the journal")
            record = json.loads(raw_op)
            with txn.cursor(db=self._keys) as cur:
                cur.putmulti(self._adopted_items(txn, record, seq, keys, digests))
            record.update(n_keys=len(keys), keys_sample=[_jsonable(k) for k in keys[:_SAMPLE_KEYS]])
            record["adopted_rows"] = len(keys)
            txn.put(_seq_key(seq), json.dumps(record).encode(), db=self._ops)
            txn.delete(_UNKEYED + _seq_key(seq), db=self._meta)

        self._write(work)

    def attach_keys(self, seq: int, keys: Sequence[Key], digests: Sequence[bytes]) -> None:
        """Give a pending write the keys Milvus assigned (auto_id), before the write is settled."""
        blob = _pack_intent([encode_key(k) for k in keys], b"".join(digests))

        def work(txn: Any) -> None:
            raw_op = txn.get(_seq_key(seq), db=self._ops)
            if raw_op is None:
                raise JournalError(f"no operation {seq} in the journal")
            record = json.loads(raw_op)
            record["n_keys"] = len(keys)
            record["keys_sample"] = [_jsonable(k) for k in keys[:_SAMPLE_KEYS]]
            txn.put(_seq_key(seq), json.dumps(record).encode(), db=self._ops)
            txn.put(_seq_key(seq), blob, db=self._intents)

        self._write(work)

    def commit(self, seq: int) -> None:
        """The write reached every store: apply it to the key states."""
        self._settle(seq, "committed", None)

    def fail(self, seq: int, error: str) -> None:
        """The write definitely did not happen anywhere: key states stay as they were."""
        self._settle(seq, "failed", error)

    def mark_in_doubt(self, seq: int, error: str) -> None:
        """Milvus did not say whether it applied the write: every key of it becomes IN_DOUBT."""
        self._settle(seq, "in_doubt", error)

    def mark_pg_missing(self, seq: int, error: str) -> None:
        """Milvus applied the write but PostgreSQL could not commit it: apply it, flagged pg_missing."""
        self._settle(seq, "pg_missing", error)

    def commit_rename(self, seq: int, spec: CollectionSpec, new_name: str) -> None:
        """A rename reached every store: the collection's key states, spec and creation mark move to the new
        name, in the transaction that settles the operation."""
        self._settle(seq, "committed", None, also=lambda txn: self._move_collection(txn, spec.name, new_name))

    def _move_collection(self, txn: Any, old_name: str, new_name: str) -> None:
        old, new = self._name(old_name), self._name(new_name)
        old_prefix, new_prefix = old.encode() + b"\0", new.encode() + b"\0"
        moved = []
        with txn.cursor(db=self._keys) as cur:
            if cur.set_range(old_prefix):
                while cur.key().startswith(old_prefix):
                    moved.append((new_prefix + cur.key()[len(old_prefix) :], cur.value()))
                    if not cur.delete():
                        break
            cur.putmulti(moved)
        spec = txn.pop(b"spec:" + old.encode(), db=self._meta)
        if spec is not None:
            txn.put(
                b"spec:" + new.encode(),
                CollectionSpec.from_json(spec).with_name(new_name).to_json().encode(),
                db=self._meta,
            )
        created = txn.pop(b"created:" + old.encode(), db=self._meta)
        if created is not None:
            txn.put(b"created:" + new.encode(), created, db=self._meta)

    def renames_in_doubt(self) -> list[dict[str, Any]]:
        """The op records of renames whose outcome is unknown (Milvus did not answer, their writer died, or
        PostgreSQL failed after Milvus renamed), oldest first, of every database (`collection` is a shadow
        name, `target` the new name in the same database). A reader counts the renames still pending too."""
        with self._txn() as txn:
            seqs = [seq for seq, _ in self._marked(txn, _RENAME_IN_DOUBT)]
            if self.readonly:
                with txn.cursor(db=self._intents) as cur:
                    pending = [int.from_bytes(k, "big") for k in cur.iternext(keys=True, values=False)]
                seqs += [seq for seq in pending if _op_of(txn, self._ops, seq) == "rename_collection"]
            return [json.loads(txn.get(_seq_key(seq), db=self._ops)) for seq in sorted(seqs)]

    def settle_rename(self, seq: int, old_name: str, new_name: str, renamed: bool, how: str) -> None:
        """Settle a rename in doubt once Milvus has said which name it holds (client/renames.py): renamed, it is
        committed and the collection moves as in commit_rename; not renamed, it failed and nothing moves. `how`
        (why it was decided) goes into the op record as `recovery`. A rename already settled is left alone."""

        def work(txn: Any) -> None:
            if txn.pop(_RENAME_IN_DOUBT + _seq_key(seq), db=self._meta) is None:
                return  # settled meanwhile, by another client's recovery
            if renamed:
                self._move_collection(txn, old_name, new_name)
            record = json.loads(txn.get(_seq_key(seq), db=self._ops))
            record.update(status="committed" if renamed else "failed", settled=time.time(), recovery=how)
            txn.put(_seq_key(seq), json.dumps(record).encode(), db=self._ops)

        self._write(work)

    def note_rename_undecided(self, seq: int, why: str) -> None:
        """A rename in doubt that cannot be settled yet (Milvus holds both names, or neither): it stays in doubt,
        with `why` in its op record as `recovery`, and is tried again by the next recovery."""

        def work(txn: Any) -> None:
            record = json.loads(txn.get(_seq_key(seq), db=self._ops))
            marked = txn.get(_RENAME_IN_DOUBT + _seq_key(seq), db=self._meta) is not None
            if marked and (record["status"], record.get("recovery")) != ("in_doubt", why):
                record.update(status="in_doubt", recovery=why)
                txn.put(_seq_key(seq), json.dumps(record).encode(), db=self._ops)

        self._write(work)

    def _settle(self, seq: int, status: str, error: str | None, also: Callable[[Any], None] | None = None) -> None:
        def work(txn: Any) -> None:
            raw_op = txn.get(_seq_key(seq), db=self._ops)
            if raw_op is None:
                raise JournalError(f"no operation {seq} in the journal")
            record = json.loads(raw_op)
            intent = txn.get(_seq_key(seq), db=self._intents)
            if status != "failed" and intent is not None:
                unpacked = _unpack_intent(intent)
                self._apply(txn, record, seq, unpacked, status)
                if status == "in_doubt" and record.get("auto_id") and not unpacked[0]:
                    txn.put(_UNKEYED + _seq_key(seq), unpacked[1], db=self._meta)  # keys never came back
            if record["op"] == "rename_collection" and status in ("in_doubt", "pg_missing"):
                txn.put(_RENAME_IN_DOUBT + _seq_key(seq), b"", db=self._meta)  # for client/renames.py to settle
            record["status"] = status
            record["settled"] = time.time()
            if error:
                record["error"] = error[:500]
            txn.put(_seq_key(seq), json.dumps(record).encode(), db=self._ops)
            txn.delete(_seq_key(seq), db=self._intents)
            if also is not None:
                also(txn)

        self._write(work)

    def _apply(
        self, txn: Any, record: dict[str, Any], seq: int, intent: tuple[list[bytes], bytes], status: str
    ) -> None:
        with txn.cursor(db=self._keys) as cur:
            cur.putmulti(self._intent_items(txn, record, seq, intent, status))

    def _intent_items(
        self, txn: Any, record: dict[str, Any], seq: int, intent: tuple[list[bytes], bytes], status: str
    ) -> list[tuple[bytes, bytes]]:
        """The key states a write settled with `status` leaves: (collection + NUL + key, packed state)."""
        encoded, digest_blob = intent
        op = record["op"]
        prefix = record["collection"].encode() + b"\0"
        op_code = OP_CODES.get(op)
        if op_code is None:
            raise JournalError(f"the journal holds operation {op!r}, unknown to this milvusdiff (a newer one?)")
        items = []
        seen: set[bytes] = set()
        for i, key in enumerate(encoded):
            full = prefix + key
            digest = digest_blob[16 * i : 16 * i + 16] if digest_blob else _NO_DIGEST
            flags = 0
            if status == "in_doubt":
                state = IN_DOUBT
            elif op in DELETING_OPS:
                state, digest = DELETED, _NO_DIGEST
            else:
                state = EXISTS
                if op == "insert":
                    previous = txn.get(full, db=self._keys)
                    if full in seen or (previous is not None and _STATE.unpack(previous)[0] == EXISTS):
                        flags |= FLAG_DUPLICATE_INSERT  # a real server keeps both rows, also within one batch
            seen.add(full)
            if status == "pg_missing":
                flags |= FLAG_PG_MISSING
            items.append((full, _STATE.pack(state, seq, op_code, digest, flags)))
        return items

    def _pending_states(self, txn: Any, collection: str) -> dict[bytes, bytes]:
        """What a reader sees for the keys of writes not yet settled: IN_DOUBT, settled by nobody here."""
        found: dict[bytes, bytes] = {}
        with txn.cursor(db=self._intents) as cur:
            for raw_seq, raw_intent in cur:
                record = json.loads(txn.get(raw_seq, default=b"{}", db=self._ops))
                if record.get("collection") == collection:
                    seq = int.from_bytes(raw_seq, "big")
                    found.update(self._intent_items(txn, record, seq, _unpack_intent(raw_intent), "in_doubt"))
        return found

    def _adopted_items(
        self, txn: Any, record: dict[str, Any], seq: int, keys: Sequence[Key], digests: Sequence[bytes]
    ) -> list[tuple[bytes, bytes]]:
        """The IN_DOUBT key states of the rows adopted by in-doubt auto_id insert `seq` (see adopt_unkeyed)."""
        return self._intent_items(txn, record, seq, ([encode_key(k) for k in keys], b"".join(digests)), "in_doubt")

    def _adoption_states(self, txn: Any, collection: str, adopted: Adoption) -> dict[bytes, bytes]:
        """What `adopt_unkeyed` would write for `adopted`, for a reader that writes nothing (validate)."""
        found: dict[bytes, bytes] = {}
        for seq, (keys, digests) in adopted.items():
            record = json.loads(txn.get(_seq_key(seq), default=b"{}", db=self._ops))
            if record.get("collection") == collection:
                found.update(self._adopted_items(txn, record, seq, keys, digests))
        return found

    def record_drop_collection(self, collection: str) -> int:
        """Log the drop and forget the collection's key states, so a re-created namesake starts clean."""
        seq = self.begin(collection, "drop_collection", [])

        name = self._name(collection)

        def work(txn: Any) -> None:
            _forget_keys(txn, self._keys, name)
            txn.delete(b"spec:" + name.encode(), db=self._meta)
            txn.delete(b"created:" + name.encode(), db=self._meta)
            for unkeyed in self.unkeyed_in_doubt(collection, txn):  # rows that went with the collection
                txn.delete(_UNKEYED + _seq_key(unkeyed), db=self._meta)

        self._write(work)
        self.commit(seq)
        return seq

    def recover(self) -> list[int]:
        """Turn intents left pending by a process that died into IN_DOUBT: nothing is guessed.

        An intent whose writer is still alive (another client mid-write, while this process opens the
        journal to export or compare) is left for that writer to settle. Whether it is alive is asked of
        its lock in `writers/` (intents recorded before writers had locks fall back to their pid).
        """
        own = writer_of(self.path, create=False)
        directory = self.path / WRITERS_DIR
        alive: dict[str, bool] = {}

        def dead(record: dict[str, Any]) -> bool:
            token = record.get("writer")
            if not isinstance(token, str):
                return not process_alive(record.get("pid"))
            if token not in alive:
                alive[token] = token == own or writer_alive(directory, token)
            return not alive[token]

        with self._txn() as txn, txn.cursor(db=self._intents) as cur:
            pending = [
                int.from_bytes(k, "big") for k, _ in cur if dead(json.loads(txn.get(k, default=b"{}", db=self._ops)))
            ]
        for seq in pending:
            self._settle(seq, "in_doubt", "process ended before the write was settled (recovered at open)")
        self._remove_dead_writers(own)
        return pending

    def _remove_dead_writers(self, own: str | None) -> None:
        """Lock files of writers that ended without closing the journal (killed): their intents are settled."""
        directory = self.path / WRITERS_DIR
        if not directory.is_dir():
            return
        for lock in directory.glob("*.lock"):
            if lock.stem != own and not writer_alive(directory, lock.stem):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()

    # -- reading -------------------------------------------------------------------------------

    def states(self, collection: str, keys: Iterable[Key]) -> dict[Key, KeyState]:
        collection = self._name(collection)
        prefix = collection.encode() + b"\0"
        out: dict[Key, KeyState] = {}
        with self._txn() as txn:
            pending = self._pending_states(txn, collection) if self.readonly else {}
            for key in keys:
                full = prefix + encode_key(key)
                raw = pending.get(full) or txn.get(full, db=self._keys)
                if raw is not None:
                    state, seq, op, digest, flags = _STATE.unpack(raw)
                    out[key] = KeyState(
                        STATE_NAMES[state],
                        seq,
                        _op_name(op),
                        None if digest == _NO_DIGEST else digest,
                        _flag_names(flags),
                    )
        return out

    def iter_state_batches(
        self,
        collection: str,
        key_name: str,
        key_type: pa.DataType,
        batch_rows: int = 65536,
        adopted: Adoption | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Every key state of a collection as Arrow batches (decoding is vectorised per batch). `adopted`: rows
        of in-doubt auto_id inserts found in Milvus, read as IN_DOUBT as if `adopt_unkeyed` had recorded them."""
        collection = self._name(collection)
        prefix = collection.encode() + b"\0"
        with self._txn() as txn, txn.cursor(db=self._keys) as cur:
            pending = self._pending_states(txn, collection) if self.readonly else {}
            pending.update(self._adoption_states(txn, collection, adopted or {}))
            keys: list[bytes] = []
            values: list[bytes] = []
            if cur.set_range(prefix):
                for k, v in cur:
                    if not k.startswith(prefix):
                        break
                    keys.append(k[len(prefix) :])
                    values.append(pending.pop(k, v))
                    if len(keys) >= batch_rows:
                        yield _state_batch(keys, values, key_name, key_type)
                        keys, values = [], []
            for k, v in sorted(pending.items()):  # keys only a pending write has touched
                keys.append(k[len(prefix) :])
                values.append(v)
            if keys:
                yield _state_batch(keys, values, key_name, key_type)

    def unsettled_keys(self, collection: str, key_name: str, key_type: pa.DataType) -> list[Key]:
        """Keys whose last write is IN_DOUBT or reached only Milvus (pg_missing): what repair must look at."""
        found: list[Key] = []
        for batch in self.iter_state_batches(collection, key_name, key_type):
            in_doubt = pc.equal(batch.column("state"), "IN_DOUBT")
            joined = pc.binary_join(batch.column("flags"), ",")
            pg_missing = pc.fill_null(pc.match_substring(joined, FLAG_NAMES[FLAG_PG_MISSING]), False)
            found.extend(batch.column(key_name).filter(pc.or_(in_doubt, pg_missing)).to_pylist())
        return found

    def iter_ops(self, collection: str | None = None) -> Iterator[dict[str, Any]]:
        with self._txn() as txn, txn.cursor(db=self._ops) as cur:
            for _, raw in cur:
                record = json.loads(raw)
                if collection is None or record["collection"] == self._name(collection):
                    yield record

    def last_seq(self) -> int:
        """The newest operation's sequence number (0 when there is none): a bookmark for `ops_since`."""
        with self._txn() as txn, txn.cursor(db=self._ops) as cur:
            return int.from_bytes(cur.key(), "big") if cur.last() else 0

    def ops_since(self, seq: int) -> Iterator[dict[str, Any]]:
        """The operations logged after `seq`, oldest first, without reading the older ones."""
        with self._txn() as txn, txn.cursor(db=self._ops) as cur:
            if cur.set_range(_seq_key(seq + 1)):
                for _, raw in cur:
                    yield json.loads(raw)

    def op(self, seq: int) -> dict[str, Any] | None:
        with self._txn() as txn:
            raw = txn.get(_seq_key(seq), db=self._ops)
        return json.loads(raw) if raw else None


STATE_SCHEMA_FIELDS = [
    pa.field("state", pa.string()),
    pa.field("last_seq", pa.uint64()),
    pa.field("last_op", pa.string()),
    pa.field("digest", pa.binary(16)),
    pa.field("flags", pa.list_(pa.string())),
]


def _state_batch(keys: list[bytes], values: list[bytes], key_name: str, key_type: pa.DataType) -> pa.RecordBatch:
    packed = np.frombuffer(b"".join(values), dtype=_STATE_DTYPE)
    n = len(keys)
    if pa.types.is_integer(key_type):
        raw = np.frombuffer(b"".join(k[1:9] for k in keys), dtype=">u8")
        key_array = pa.array((raw.astype(np.uint64) - np.uint64(_INT_OFFSET)).view(np.int64), key_type)
    else:
        key_array = pa.array([k[1:].decode("utf-8") for k in keys], pa.string())
    state_names = np.array([None, "EXISTS", "DELETED", "IN_DOUBT"], dtype=object)
    op_names = np.array([OP_NAMES.get(code) for code in range(256)], dtype=object)
    known = np.array([code in OP_NAMES for code in range(256)])
    unknown = packed["op"][~known[packed["op"]]]
    if unknown.size:
        _op_name(int(unknown[0]))  # refuses it
    digests = pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(packed["digest"].tobytes())])
    no_digest = packed["digest"] == np.void(_NO_DIGEST)  # deletes, and in-doubt deletes
    digest_array = pa.array(digests.to_pylist(), pa.binary(16), mask=no_digest)
    flags = [list(_flag_names(int(f))) for f in packed["flags"]] if packed["flags"].any() else [[]] * n
    return pa.RecordBatch.from_arrays(
        [
            key_array,
            pa.array(state_names[packed["state"]], pa.string()),
            pa.array(packed["seq"], pa.uint64()),
            pa.array(op_names[packed["op"]], pa.string()),
            digest_array,
            pa.array(flags, pa.list_(pa.string())),
        ],
        schema=pa.schema([pa.field(key_name, key_type), *STATE_SCHEMA_FIELDS]),
    )


def _op_name(code: int) -> str:
    name = OP_NAMES.get(code)
    if name is None:
        raise JournalError(
            f"the journal holds operation code {code}, unknown to this milvusdiff (a newer one wrote it)"
        )
    return name


def _op_of(txn: Any, ops_db: Any, seq: int) -> str | None:
    raw = txn.get(_seq_key(seq), db=ops_db)
    return json.loads(raw).get("op") if raw else None


def _forget_keys(txn: Any, keys_db: Any, collection: str) -> None:
    """Delete every key state of a collection."""
    prefix = collection.encode() + b"\0"
    with txn.cursor(db=keys_db) as cur:
        if cur.set_range(prefix):
            while cur.key().startswith(prefix):
                if not cur.delete():
                    break


_BOUND_DATABASE = b"uri_database"


def _seq_key(seq: int) -> bytes:
    return seq.to_bytes(8, "big")


def _jsonable(key: Key) -> Any:
    return int(key) if isinstance(key, (int, np.integer)) else key


def _digest_list(blob: bytes) -> list[bytes]:
    return [blob[i : i + 16] for i in range(0, len(blob), 16)]


def _pack_intent(encoded: list[bytes], digest_blob: bytes) -> bytes:
    lengths = np.array([len(k) for k in encoded], dtype="<u4")
    header = struct.pack("<II", len(encoded), len(digest_blob))
    return header + lengths.tobytes() + b"".join(encoded) + digest_blob


def _unpack_intent(raw: bytes) -> tuple[list[bytes], bytes]:
    n, digest_len = struct.unpack_from("<II", raw)
    lengths = np.frombuffer(raw, dtype="<u4", count=n, offset=8)
    at = 8 + 4 * n
    keys = []
    for length in lengths.tolist():
        keys.append(raw[at : at + length])
        at += length
    return keys, raw[at : at + digest_len]
