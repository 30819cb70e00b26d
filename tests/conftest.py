"""Shared fixtures: where the stores are for one test.

Each fixture honours the variable its lane sets (PG_CONN for `make test-pg`, MILVUS_URI for
`make test-server`) and otherwise falls back to an embedded store private to the test or session, so
plain `make test` needs no server and no test sees another test's data.

Tests that request `milvus_uri` (directly or through `settings`) are marked `milvus` automatically and
run again against a real Milvus server in `make test-server`; a test that relies on Milvus Lite
behaviour should build its own path from `tmp_path` instead. Tests marked `server` run only there.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from milvusdiff.config import Settings
from milvusdiff.services.embedded_pg import ensure_embedded_pg, stop_embedded_pg

SERVER_SKIP_REASON = "needs a real Milvus server: set MILVUS_URI, or run `make test-server`"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "milvus: requests milvus_uri, so make test-server runs it too (automatic)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `milvus_uri` users before `-m` deselects, and skip `server` tests when there is no server."""
    skip_server = pytest.mark.skip(reason=SERVER_SKIP_REASON)
    for item in items:
        if "milvus_uri" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.milvus)
        if not os.environ.get("MILVUS_URI") and item.get_closest_marker("server"):
            item.add_marker(skip_server)


@pytest.fixture(scope="session")
def make_pg_home() -> Iterator[Callable[[], Path]]:
    """Factory of new, empty directories for embedded PostgreSQL servers (data in `<dir>/pg`), removed at the end.

    They live outside pytest's temp root on purpose. As root the server runs as another user, who must be
    able to traverse every parent directory, and each new pytest session resets pytest's temp root
    (`/tmp/pytest-of-root`) to mode 0700: that locks the server out of its data directory whenever two
    sessions overlap, as they do on a shared development machine.
    """
    parent = Path(tempfile.mkdtemp(prefix="milvusdiff-pg-"))
    counter = itertools.count()

    def make() -> Path:
        home = parent / f"home{next(counter)}"
        home.mkdir()
        return home

    yield make
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_conn(make_pg_home: Callable[[], Path]) -> Iterator[str]:
    """A PostgreSQL connection string: PG_CONN, or an embedded server for this session, stopped at its end."""
    configured = os.environ.get("PG_CONN")
    if configured:
        yield configured
        return
    data_dir = make_pg_home() / "pg"
    try:
        yield ensure_embedded_pg(data_dir)
    finally:
        stop_embedded_pg(data_dir)


@pytest.fixture
def pg_schema(pg_conn: str) -> Iterator[str]:
    """The name of a fresh, empty PostgreSQL schema, dropped with everything in it after the test.

    A schema per test, rather than a database, keeps the fixture cheap and works on a server where the
    test user may not create databases.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_conn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(pg_conn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def milvus_uri(tmp_path: Path) -> Iterator[str]:
    """A Milvus URI private to the test: a Milvus Lite path under tmp_path, or a fresh database on MILVUS_URI.

    On a real server the test gets its own database (dropped afterwards, with its collections), so tests
    may reuse collection names without seeing each other's leftovers.
    """
    server = os.environ.get("MILVUS_URI")
    if not server:
        yield str(tmp_path / "milvus.db")
        return
    from pymilvus import MilvusClient

    token = os.environ.get("MILVUS_TOKEN") or ""
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin = MilvusClient(uri=server, token=token)
    admin.create_database(database)
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{database}"))
    finally:
        # A client bound to the database, not use_database(): Milvus 2.3 lacks the DescribeDatabase it calls.
        inside = MilvusClient(uri=server, token=token, db_name=database)
        for collection in inside.list_collections():
            inside.drop_collection(collection)
        inside.close()
        admin.drop_database(database)
        admin.close()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """Where the test's LMDB journal goes; not created, so code under test must create it."""
    return tmp_path / "journal"


@pytest.fixture
def settings(milvus_uri: str, pg_conn: str, journal_path: Path, tmp_path: Path) -> Settings:
    """Settings pointing at the test's stores; never read from the environment beyond what the fixtures honour."""
    return Settings(
        milvus_uri=milvus_uri,
        milvus_token=os.environ.get("MILVUS_TOKEN") or None,
        pg_conn=pg_conn,
        journal_path=journal_path,
        home=tmp_path / "home",
    )


@pytest.fixture(autouse=True)
def isolated_shadow_schema(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test's shadow tables live in a PostgreSQL schema of its own (MILVUSDIFF_PG_SCHEMA), so tests
    that reuse collection names never meet, even when several suites share one server."""
    name = f"shadow_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MILVUSDIFF_PG_SCHEMA", name)
    yield
    if "pg_conn" in request.fixturenames:
        conninfo = request.getfixturevalue("pg_conn")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
