"""The LMDB journal: key encoding, the intent -> settle protocol, crash recovery, map growth, Arrow export."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from milvusdiff.errors import JournalError
from milvusdiff.services.journal import Journal, KeyState, decode_key, encode_key
from milvusdiff.types.spec import CollectionSpec, FieldSpec

D1, D2, D3 = (bytes([i]) * 16 for i in (1, 2, 3))


@pytest.fixture
def journal(journal_path: Path) -> Journal:
    with Journal(journal_path) as opened:
        yield opened


def state(journal: Journal, key: int | str, collection: str = "c") -> KeyState | None:
    return journal.states(collection, [key]).get(key)


def status(journal: Journal, seq: int) -> str:
    op = journal.op(seq)
    assert op is not None
    return str(op["status"])


# -- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [0, 42, -1, -(2**63), 2**63 - 1, "42", "", "é\U0001f600", "a\0b", np.int64(7)])
def test_keys_round_trip(key: int | str) -> None:
    assert decode_key(encode_key(key)) == key


def test_string_and_integer_keys_with_the_same_text_are_different(journal: Journal) -> None:
    assert encode_key("42") != encode_key(42)
    seq = journal.begin("c", "insert", [42, "42"], [D1, D2])
    journal.commit(seq)
    states = journal.states("c", [42, "42", 43, "43"])
    assert set(states) == {42, "42"}
    assert states[42].digest == D1 and states["42"].digest == D2


def test_integer_keys_sort_numerically_and_bad_keys_are_refused() -> None:
    keys = [-(2**63), -5, -1, 0, 1, 5, 2**63 - 1]
    assert sorted(keys, key=encode_key) == keys
    for bad in (True, 1.5, b"x", None):
        with pytest.raises(JournalError, match="neither an integer nor a string"):
            encode_key(bad)  # type: ignore[arg-type]  # refusing wrong types is the point


# -- the protocol ---------------------------------------------------------------------------------


def test_intent_is_pending_and_durable_before_anything_is_settled(journal: Journal, journal_path: Path) -> None:
    seq = journal.begin("c", "insert", [1, 2], [D1, D2], partition="p")
    op = journal.op(seq)
    assert op is not None
    assert (op["status"], op["op"], op["partition"], op["n_keys"], op["keys_sample"]) == (
        "pending",
        "insert",
        "p",
        2,
        [1, 2],
    )
    assert journal.states("c", [1, 2]) == {}
    # Another process sees the intent on disk (read-only: it must not settle it).
    seen = _run_child(journal_path, f"print(json.dumps(read_op({seq})))")
    assert json.loads(seen)["status"] == "pending"


def test_commit_applies_states_with_digests(journal: Journal) -> None:
    seq = journal.begin("c", "insert", [1, 2], [D1, D2])
    journal.commit(seq)
    assert journal.states("c", [1, 2]) == {
        1: KeyState("EXISTS", seq, "insert", D1, ()),
        2: KeyState("EXISTS", seq, "insert", D2, ()),
    }
    assert status(journal, seq) == "committed"
    deleted = journal.begin("c", "delete", [1])
    journal.commit(deleted)
    assert state(journal, 1) == KeyState("DELETED", deleted, "delete", None, ())
    assert state(journal, 2) == KeyState("EXISTS", seq, "insert", D2, ())


def test_fail_leaves_states_as_they_were(journal: Journal) -> None:
    first = journal.begin("c", "insert", [1], [D1])
    journal.commit(first)
    failed = journal.begin("c", "upsert", [1, 2], [D2, D3])
    journal.fail(failed, "MilvusException: refused")
    assert journal.states("c", [1, 2]) == {1: KeyState("EXISTS", first, "insert", D1, ())}
    op = journal.op(failed)
    assert op is not None and op["status"] == "failed" and op["error"] == "MilvusException: refused"


def test_in_doubt_marks_every_key_of_the_write(journal: Journal) -> None:
    first = journal.begin("c", "insert", [1], [D1])
    journal.commit(first)
    doubtful = journal.begin("c", "upsert", [1, 2], [D2, D3])
    journal.mark_in_doubt(doubtful, "DEADLINE_EXCEEDED")
    states = journal.states("c", [1, 2])
    assert {k: (s.state, s.last_seq, s.digest) for k, s in states.items()} == {
        1: ("IN_DOUBT", doubtful, D2),
        2: ("IN_DOUBT", doubtful, D3),
    }
    assert status(journal, doubtful) == "in_doubt"


def test_pg_missing_applies_the_write_and_flags_it(journal: Journal) -> None:
    seq = journal.begin("c", "insert", [1], [D1])
    journal.mark_pg_missing(seq, "OperationalError: terminated")
    assert state(journal, 1) == KeyState("EXISTS", seq, "insert", D1, ("pg_missing",))
    later = journal.begin("c", "upsert", [1], [D2])
    journal.commit(later)
    assert state(journal, 1) == KeyState("EXISTS", later, "upsert", D2, ())


def test_settling_an_unknown_operation_is_an_error(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no operation 99"):
        journal.commit(99)


def test_duplicate_insert_is_flagged_not_rejected(journal: Journal) -> None:
    journal.commit(journal.begin("c", "insert", [1, 2], [D1, D1]))
    again = journal.begin("c", "insert", [1, 3], [D2, D2])
    journal.commit(again)
    assert state(journal, 1) == KeyState("EXISTS", again, "insert", D2, ("duplicate_insert",))
    assert state(journal, 3) == KeyState("EXISTS", again, "insert", D2, ())
    # An upsert of an existing key, or an insert after a delete, is no duplicate.
    upsert = journal.begin("c", "upsert", [2], [D3])
    journal.commit(upsert)
    journal.commit(journal.begin("c", "delete", [3]))
    reinsert = journal.begin("c", "insert", [3], [D1])
    journal.commit(reinsert)
    assert state(journal, 2) == KeyState("EXISTS", upsert, "upsert", D3, ())
    assert state(journal, 3) == KeyState("EXISTS", reinsert, "insert", D1, ())


def test_a_key_repeated_within_one_insert_is_a_duplicate_insert(journal: Journal) -> None:
    """A real server keeps both rows of a batch that repeats a key; the journal keeps the last, flagged."""
    seq = journal.begin("c", "insert", [5, 6, 5], [D1, D2, D3])
    journal.commit(seq)
    assert state(journal, 5) == KeyState("EXISTS", seq, "insert", D3, ("duplicate_insert",))
    assert state(journal, 6) == KeyState("EXISTS", seq, "insert", D2, ())


def test_auto_id_keys_attached_after_milvus_answered(journal: Journal) -> None:
    seq = journal.begin("c", "insert", [])
    journal.attach_keys(seq, [101, 102], [D1, D2])
    op = journal.op(seq)
    assert op is not None and op["n_keys"] == 2 and op["keys_sample"] == [101, 102]
    journal.commit(seq)
    assert {k: s.digest for k, s in journal.states("c", [101, 102]).items()} == {101: D1, 102: D2}


def test_collections_are_kept_apart_and_dropping_one_forgets_only_it(journal: Journal) -> None:
    spec = CollectionSpec("a", (FieldSpec("id", "INT64", is_primary=True),))
    journal.register_collection(spec)
    journal.register_collection(spec.with_name("ab"))
    journal.commit(journal.begin("a", "insert", [1, 2], [D1, D1]))
    journal.commit(journal.begin("ab", "insert", [1], [D2]))
    assert journal.collection_spec("a") == spec and sorted(journal.collections()) == ["a", "ab"]
    journal.record_drop_collection("a")
    assert journal.states("a", [1, 2]) == {}
    assert state(journal, 1, "ab") == KeyState("EXISTS", 2, "insert", D2, ())
    assert journal.collections() == ["ab"] and journal.collection_spec("a") is None
    assert [op["op"] for op in journal.iter_ops("a")] == ["insert", "drop_collection"]
    assert [op["status"] for op in journal.iter_ops()] == ["committed"] * 3


# -- crashes and other processes ------------------------------------------------------------------

CHILD_PRELUDE = """
import json, os, sys
from milvusdiff.services.journal import Journal
path = sys.argv[1]
def read_op(seq):
    import lmdb
    env = lmdb.open(path, max_dbs=4, readonly=True, lock=False)
    with env.begin() as txn:
        raw = txn.get(seq.to_bytes(8, "big"), db=env.open_db(b"ops", txn=txn, create=False))
    return json.loads(raw)
"""


def _run_child(journal_path: Path, body: str, *, stdin: str = "") -> str:
    script = CHILD_PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script, str(journal_path)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_write_left_pending_by_a_crashed_process_is_recovered_in_doubt(journal_path: Path) -> None:
    with Journal(journal_path) as journal:
        journal.commit(journal.begin("c", "insert", [1], [D1]))
    out = _run_child(
        journal_path,
        """
        journal = Journal(path)
        seq = journal.begin("c", "upsert", [1, "k"], [b"\\x02" * 16, b"\\x03" * 16])
        print(seq, flush=True)
        os._exit(0)  # dies between the intent and any settlement
        """,
    )
    crashed = int(out)
    with Journal(journal_path) as journal:
        assert journal.recovered == [crashed]
        assert {k: (s.state, s.last_seq, s.digest) for k, s in journal.states("c", [1, "k"]).items()} == {
            1: ("IN_DOUBT", crashed, D2),
            "k": ("IN_DOUBT", crashed, D3),
        }
        op = journal.op(crashed)
        assert op is not None and op["status"] == "in_doubt" and "recovered at open" in op["error"]
    with Journal(journal_path) as journal:
        assert journal.recovered == []


def test_opening_the_journal_does_not_steal_a_live_writers_intent(journal_path: Path) -> None:
    """A reader (export, compare) opening the journal while a client in another process is mid-write
    must leave that write pending for its owner to settle."""
    Journal(journal_path).close()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD_PRELUDE
            + textwrap.dedent(
                """
                journal = Journal(path)
                seq = journal.begin("c", "insert", [7], [b"\\x01" * 16])
                print(seq, flush=True)
                sys.stdin.readline()  # the parent opens the journal meanwhile
                journal.commit(seq)
                journal.close()
                """
            ),
            str(journal_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        seq = int(writer.stdout.readline())
        with Journal(journal_path) as reader:
            assert reader.recovered == []
            assert status(reader, seq) == "pending"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    with Journal(journal_path) as journal:
        assert state(journal, 7) == KeyState("EXISTS", seq, "insert", D1, ())
        assert status(journal, seq) == "committed"


# -- size ------------------------------------------------------------------------------------------


def test_the_map_grows_when_full(journal_path: Path) -> None:
    tiny = 64 << 10
    keys = [f"key-{i:06d}" for i in range(3000)]
    with Journal(journal_path, map_size=tiny) as journal:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            journal.commit(journal.begin("c", "insert", chunk, [D1] * len(chunk)))
        grown = journal._env.info()["map_size"]
        assert grown > tiny
        states = journal.states("c", keys)
    assert len(states) == len(keys) and {s.state for s in states.values()} == {"EXISTS"}
    with Journal(journal_path, map_size=tiny) as reopened:
        assert len(reopened.states("c", keys)) == len(keys)


# -- Arrow -----------------------------------------------------------------------------------------


def test_state_batches_for_integer_keys(journal: Journal) -> None:
    keys = [-(2**63), -3, 0, 5, 2**63 - 1]
    ins = journal.begin("c", "insert", keys, [D1, D2, D3, D1, D2])
    journal.commit(ins)
    dup = journal.begin("c", "insert", [5], [D3])
    journal.commit(dup)
    dele = journal.begin("c", "delete", [0])
    journal.commit(dele)
    doubt = journal.begin("c", "upsert", [-3], [D1])
    journal.mark_in_doubt(doubt, "timeout")
    journal.commit(journal.begin("other", "insert", [1], [D1]))
    batches = list(journal.iter_state_batches("c", "id", pa.int64(), batch_rows=2))
    assert [b.num_rows for b in batches] == [2, 2, 1]
    table = pa.Table.from_batches(batches)
    assert table.schema.names == ["id", "state", "last_seq", "last_op", "digest", "flags"]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("last_seq").type == pa.uint64()
    assert table.schema.field("digest").type == pa.binary(16)
    assert table.to_pylist() == [
        {"id": -(2**63), "state": "EXISTS", "last_seq": ins, "last_op": "insert", "digest": D1, "flags": []},
        {"id": -3, "state": "IN_DOUBT", "last_seq": doubt, "last_op": "upsert", "digest": D1, "flags": []},
        {"id": 0, "state": "DELETED", "last_seq": dele, "last_op": "delete", "digest": None, "flags": []},
        {"id": 5, "state": "EXISTS", "last_seq": dup, "last_op": "insert", "digest": D3, "flags": ["duplicate_insert"]},
        {"id": 2**63 - 1, "state": "EXISTS", "last_seq": ins, "last_op": "insert", "digest": D2, "flags": []},
    ]


def test_state_batches_for_string_keys(journal: Journal) -> None:
    seq = journal.begin("c", "insert", ["b", "a", "é", "42"], [D1, D2, D3, D1])
    journal.mark_pg_missing(seq, "commit failed")
    table = pa.Table.from_batches(journal.iter_state_batches("c", "pk", pa.string()))
    assert table.column("pk").to_pylist() == ["42", "a", "b", "é"]
    assert table.column("flags").to_pylist() == [["pg_missing"]] * 4
    assert table.column("digest").to_pylist() == [D1, D2, D1, D3]
    assert list(journal.iter_state_batches("nothing", "pk", pa.string())) == []
