"""The shadow's own bookkeeping cannot be reached by user names, and a closed client lets go of its stores.

- The registry of shadow tables lives under a name no Milvus server accepts for a collection (`$collections`),
  and that exact name is refused before Milvus is touched (Milvus Lite accepts it). A collection named like
  the old registry, `_collections`, is an ordinary collection now.
- A shadow made when the registry was still `_collections` is migrated when opened.
- `ShadowClient.close()` frees the Milvus Lite database: the CLI, in another process, can open it at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers.schemas import create_small_collection
from helpers.stores import lite_settings
from psycopg import sql

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import SchemaError
from milvusdiff.services.pg import REGISTRY_TABLE

MILVUSDIFF = Path(sys.executable).with_name("milvusdiff")


@pytest.fixture
def settings(pg_conn: str, journal_path: Path, tmp_path: Path) -> Settings:
    """The test's stores, with Milvus Lite (overriding conftest's `settings`): what is tested here happens in
    the client (journal, shadow), so it stays out of the real-server lane and its time budget."""
    return lite_settings(tmp_path, pg_conn, journal_path)


def rows(keys: range, tag: str = "t") -> list[dict[str, Any]]:
    return [{"id": k, "title": f"{tag} {k}", "emb": [float(k), 1.0, 0.5, -1.0]} for k in keys]


def tables(pg_conn: str, schema: str) -> set[str]:
    with psycopg.connect(pg_conn) as conn:
        found = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
        return {row[0] for row in found.fetchall()}


def test_a_collection_named_like_the_old_registry_leaves_every_registration_alone(settings: Settings) -> None:
    assert settings.pg_conn is not None
    client = ShadowClient.from_settings(settings)
    try:
        create_small_collection(client, "shop")
        client.insert("shop", rows(range(5)))
        create_small_collection(client, "_collections")
        client.insert("_collections", rows(range(3)))
    finally:
        client.close()
    schema = os.environ["MILVUSDIFF_PG_SCHEMA"]
    assert {REGISTRY_TABLE, "shop", "_collections"} <= tables(settings.pg_conn, schema)
    client = ShadowClient.from_settings(settings)  # a new client finds both shadows through the registry
    try:
        assert client.spec("shop").primary.name == "id"
        assert client.spec("_collections").primary.name == "id"
        assert client.shadow.count("shop") == 5 and client.shadow.count("_collections") == 3
    finally:
        client.close()


def test_the_registry_name_itself_is_refused_before_milvus_is_touched(settings: Settings) -> None:
    client = ShadowClient.from_settings(settings)
    try:
        create_small_collection(client, "shop")
        with pytest.raises(SchemaError, match="reserved"):
            create_small_collection(client, REGISTRY_TABLE)
        assert not client.has_collection(REGISTRY_TABLE)
        assert client.shadow.spec("shop") is not None
    finally:
        client.close()


def test_a_shadow_made_with_the_old_registry_name_is_migrated_at_open(settings: Settings) -> None:
    assert settings.pg_conn is not None
    schema = os.environ["MILVUSDIFF_PG_SCHEMA"]
    client = ShadowClient.from_settings(settings)
    try:
        create_small_collection(client, "shop")
        client.insert("shop", rows(range(4)))
    finally:
        client.close()
    with psycopg.connect(settings.pg_conn, autocommit=True) as conn:  # as an older milvusdiff left it
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, REGISTRY_TABLE), sql.Identifier("_collections")
            )
        )
    client = ShadowClient.from_settings(settings)
    try:
        assert client.spec("shop").name == "shop"
        client.insert("shop", rows(range(4, 6)))
        assert client.shadow.count("shop") == 6
    finally:
        client.close()
    assert REGISTRY_TABLE in tables(settings.pg_conn, schema)
    assert "_collections" not in tables(settings.pg_conn, schema)


def test_close_frees_the_milvus_lite_database_for_the_cli(settings: Settings, tmp_path: Path) -> None:
    assert settings.pg_conn is not None
    client = ShadowClient.from_settings(settings)
    create_small_collection(client, "shop")
    client.insert("shop", rows(range(10)))
    client.close()
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_TOKEN", "MILVUSDIFF_HOME")}
    env.update(MILVUS_URI=settings.milvus_uri, PG_CONN=settings.pg_conn, MILVUSDIFF_JOURNAL=str(settings.journal_path))
    if settings.milvus_token:
        env["MILVUS_TOKEN"] = settings.milvus_token
    done = subprocess.run(
        [str(MILVUSDIFF), "validate", "--collection", "shop", "--out", str(tmp_path / "v")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "v" / "summary.json").is_file()
