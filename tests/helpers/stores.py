"""The stores of one test, on Milvus Lite whatever lane runs it."""

from __future__ import annotations

from pathlib import Path

from milvusdiff.config import Settings


def lite_settings(tmp_path: Path, pg_conn: str, journal_path: Path) -> Settings:
    """A Milvus Lite database of the test's own, beside its PostgreSQL and journal: for what happens in the client
    (journal, shadow, faults injected into this process's pymilvus), which the real-server lane need not repeat."""
    return Settings(
        milvus_uri=str(tmp_path / "milvus.db"),
        milvus_token=None,
        pg_conn=pg_conn,
        journal_path=journal_path,
        home=tmp_path / "home",
    )
