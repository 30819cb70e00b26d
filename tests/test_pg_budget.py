"""A connection budget: export and validate need two PostgreSQL connections at once, and work with a role whose
CONNECTION LIMIT is 2; below that they stop with exit 2 and one line naming the limit, not a traceback.

Runs on the PostgreSQL server lane (`make test-pg`, CI: PG_CONN set) where the test may create a role; skipped
with the embedded server (no TCP role setup there) or where CREATE ROLE is not allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers.schemas import create_small_collection
from psycopg import sql
from psycopg.conninfo import make_conninfo

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings

MILVUSDIFF = Path(sys.executable).with_name("milvusdiff")


@pytest.fixture
def budget_role(pg_conn: str) -> Iterator[tuple[str, str]]:
    """(role, conninfo as that role): a login role with CONNECTION LIMIT 2 that may create schemas here."""
    if not os.environ.get("PG_CONN"):
        pytest.skip("needs a PostgreSQL server in PG_CONN on which roles can be created (make test-pg)")
    role, password = f"md_budget_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    with psycopg.connect(pg_conn, autocommit=True) as conn:
        try:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 2 PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("PG_CONN's user may not create roles")
        database = conn.info.dbname
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role))
        )
    try:
        yield role, make_conninfo(pg_conn, user=role, password=password)
    finally:
        with psycopg.connect(pg_conn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(os.environ["MILVUSDIFF_PG_SCHEMA"]))
            )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    assert settings.pg_conn is not None
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_TOKEN", "MILVUSDIFF_HOME")}
    env.update(MILVUS_URI=settings.milvus_uri, PG_CONN=settings.pg_conn, MILVUSDIFF_JOURNAL=str(settings.journal_path))
    return subprocess.run([str(MILVUSDIFF), *args], env=env, capture_output=True, text=True, timeout=180)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": k, "title": f"t {k}", "emb": [float(k), 1.0, 0.5, -1.0]} for k in range(n)]


def test_export_and_validate_within_two_connections_or_one_line_naming_the_limit(
    budget_role: tuple[str, str], pg_conn: str, journal_path: Path, tmp_path: Path
) -> None:
    role, conninfo = budget_role
    lite = Settings(  # Milvus Lite: the test is about PostgreSQL connections
        milvus_uri=str(tmp_path / "milvus.db"),
        milvus_token=None,
        pg_conn=conninfo,
        journal_path=journal_path,
        home=tmp_path / "home",
    )
    client = ShadowClient.from_settings(lite)  # the shadow is written as the limited role too
    try:
        create_small_collection(client, "budget")
        client.insert("budget", rows(300))
    finally:
        client.close()

    exported = cli(lite, "export", "--collection", "budget", "--source", "pg", "--out", str(tmp_path / "pg"))
    assert exported.returncode == 0, exported.stderr
    validated = cli(lite, "validate", "--collection", "budget", "--out", str(tmp_path / "v"))
    assert validated.returncode == 0, validated.stdout + validated.stderr

    with psycopg.connect(pg_conn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 1").format(sql.Identifier(role)))
    for args in (
        ("export", "--collection", "budget", "--source", "pg", "--out", str(tmp_path / "pg1")),
        ("validate", "--collection", "budget", "--out", str(tmp_path / "v1")),
    ):
        done = cli(lite, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "CONNECTION LIMIT" in lines[0] and "too many connections" in lines[0], lines
        assert "Traceback" not in done.stderr
        assert not (tmp_path / args[-1]).exists()
