"""One journal and shadow schema per Milvus database: bare collection names are relative to the URI's.

Two clients whose URIs name different databases would otherwise journal two different `docs`
collections under one name; the second is refused before it writes anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymilvus import MilvusClient

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.errors import JournalError
from milvusdiff.services.journal import Journal


def test_journal_keeps_the_database_of_its_first_writer(tmp_path: Path) -> None:
    with Journal(tmp_path / "j") as journal:
        journal.bind_database("sales")
        journal.bind_database("sales")  # the same database again: fine
        with pytest.raises(JournalError, match=r"records Milvus database 'sales'.*names 'hr'"):
            journal.bind_database("hr")
    with Journal(tmp_path / "j") as reopened, pytest.raises(JournalError):
        reopened.bind_database("hr")  # the binding is durable


def test_a_client_of_another_database_is_refused_before_writing(
    milvus_uri: str, pg_conn: str, journal_path: Path
) -> None:
    if not os.environ.get("MILVUS_URI"):
        pytest.skip("Milvus Lite has one database per file; this needs a server URI naming a database")
    first = ShadowClient(milvus_uri, pg_conn=pg_conn, journal_path=journal_path)
    first.close()
    other = "other_" + urlsplit(milvus_uri).path.strip("/")
    admin = MilvusClient(uri=os.environ["MILVUS_URI"])
    admin.create_database(other)
    try:
        uri = urlunsplit(urlsplit(milvus_uri)._replace(path=f"/{other}"))
        with pytest.raises(JournalError, match="give each Milvus database its own journal"):
            ShadowClient(uri, pg_conn=pg_conn, journal_path=journal_path)
        with Journal(journal_path, readonly=True) as journal:
            assert journal.last_seq() == 0  # nothing was written for the refused client
    finally:
        admin.drop_database(other)
        admin.close()
