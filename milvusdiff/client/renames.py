"""Settle the renames whose outcome is in doubt, by asking Milvus which name it holds.

A rename_collection whose outcome is unknown (Milvus gave no answer, the writer died after the journal's intent,
or PostgreSQL failed after Milvus renamed) leaves the shadow and the journal under the old name, while Milvus may
hold the collection under either. No later write or read tells them apart, so a ShadowClient settles every such
rename when it opens (after the journal's own recovery has turned dead writers' intents in doubt), as this asks:

- Milvus holds only the new name: the rename happened; the shadow table (unless it moved already) and the
  journal's key states, spec and creation mark move to it, and the operation is committed.
- Milvus holds only the old name: it did not; the shadow stays (or goes back) under the old name and the
  operation failed.
- Milvus holds both or neither, or the shadow holds the collection under neither name or both, or a store does
  not answer: nothing is guessed. The rename stays in doubt, the reason goes into its op record (`recovery`), a
  warning is logged, validate reports it, and the next ShadowClient tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from pymilvus.exceptions import MilvusException

from milvusdiff.errors import first_line
from milvusdiff.services.milvus import uri_database
from milvusdiff.services.pg import ShadowStore
from milvusdiff.types.spec import split_shadow_name

if TYPE_CHECKING:
    from milvusdiff.client.shadow import ShadowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenameRecovery:
    """What became of one rename in doubt: `outcome` is "renamed", "not renamed" or "undecided" (`why`)."""

    seq: int
    database: str
    old: str
    new: str
    outcome: str
    why: str


def settle_renames(client: ShadowClient) -> list[RenameRecovery]:
    """Settle every rename in doubt in the client's journal; returns what became of each."""
    return [_settle(client, record) for record in client.journal.renames_in_doubt()]


def _settle(client: ShadowClient, record: dict[str, Any]) -> RenameRecovery:
    prefix, old = split_shadow_name(record["collection"])
    new = str(record["target"])
    database = prefix or uri_database(client.settings)
    shadow, journal = client.stores(database)
    seq = int(record["seq"])
    try:
        held = [bool(client.has_collection(name, db_name=database)) for name in (old, new)]
        if held in ([True, False], [False, True]):
            renamed = held[1]
            kept, gone = (new, old) if renamed else (old, new)
            if _shadow_under(shadow, kept, gone):
                why = f"Milvus holds {kept!r} and not {gone!r}"
                journal.settle_rename(seq, old, new, renamed, why)
                log.info("rename_collection %r -> %r (operation %d) settled: %s", old, new, seq, why)
                return RenameRecovery(seq, database, old, new, "renamed" if renamed else "not renamed", why)
            why = f"Milvus holds only {kept!r}, and the shadow holds the collection under both names or neither"
        else:
            why = f"Milvus holds {'both' if held[0] else 'neither'} of {old!r} and {new!r}"
    except (MilvusException, psycopg.Error) as exc:
        why = f"could not be settled now: {type(exc).__name__}: {first_line(exc)}"
    journal.note_rename_undecided(seq, why)
    log.warning(
        "rename_collection %r -> %r (operation %d) stays in doubt: %s; make Milvus hold exactly one of the two "
        "names, and the next ShadowClient settles it",
        old,
        new,
        seq,
        why,
    )
    return RenameRecovery(seq, database, old, new, "undecided", why)


def _shadow_under(shadow: ShadowStore, kept: str, gone: str) -> bool:
    """Make the shadow hold the collection under `kept`, renaming it from `gone` if it is there; False when it
    holds it under neither name, or both."""
    at_kept, at_gone = shadow.spec(kept), shadow.spec(gone)
    if at_gone is None:
        return at_kept is not None
    if at_kept is not None:
        return False
    shadow.stage_rename(at_gone, kept).commit()
    return True
