"""The journal's record of auto_id inserts whose keys Milvus never returned (the rows' digests without key)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from milvusdiff.services.journal import Journal
from milvusdiff.workflow.adopt import _take

D1, D2 = bytes([1]) * 16, bytes([2]) * 16


def test_unkeyed_digests_outlive_only_an_unknown_outcome(journal_path: Path) -> None:
    with Journal(journal_path) as journal:
        doubtful = journal.begin_unkeyed("c", [D1, D2, D1])
        journal.mark_in_doubt(doubtful, "timeout")
        journal.fail(journal.begin_unkeyed("c", [D2]), "rejected")
        answered = journal.begin_unkeyed("c", [D2])
        journal.attach_keys(answered, [7], [D2])
        journal.commit(answered)
        journal.mark_in_doubt(journal.begin_unkeyed("other", [D1]), "timeout")
        assert not journal.unkeyed_outstanding("third")
        pending = journal.begin_unkeyed("third", [D1])  # in flight (or its writer died): outstanding too
        assert journal.unkeyed_outstanding("third") and journal.unkeyed_in_doubt("third") == {}
        journal.fail(pending, "rejected")
        assert not journal.unkeyed_outstanding("third")

        assert journal.unkeyed_in_doubt("c") == {doubtful: [D1, D2, D1]}
        op = journal.op(doubtful)
        assert op is not None and op["n_rows"] == 3 and op["n_keys"] == 0 and op["status"] == "in_doubt"

        journal.adopt_unkeyed(doubtful, [10, 11], [D1, D2])
        assert journal.unkeyed_in_doubt("c") == {}
        assert {k: s.state for k, s in journal.states("c", [10, 11]).items()} == {10: "IN_DOUBT", 11: "IN_DOUBT"}
        assert journal.unkeyed_in_doubt("other") != {}
        journal.record_drop_collection("other")
        assert journal.unkeyed_in_doubt("other") == {}


def test_a_digest_ending_in_nul_bytes_is_matched_as_often_as_the_write_had_it() -> None:
    """numpy turns a list of bytes into a fixed-width array that drops trailing NULs: about one row in 256 of
    an in-doubt auto_id insert would go unrecognised (rows "lost 18" and "lost 22" of the timed-out drill did)."""
    ends_in_nul = b"\x07" * 15 + b"\x00"
    rows = np.array([ends_in_nul, D1, ends_in_nul, ends_in_nul], dtype=object)
    taken = np.zeros(len(rows), dtype=bool)
    assert _take(rows, taken, [ends_in_nul, ends_in_nul, D1]) == [0, 1, 2]
    assert _take(rows, taken, [ends_in_nul, D1]) == [3]  # each row at most once
