"""Support for the workload, schema and corrupt tests; holds no tests itself.

The presets use what Milvus Lite (and 2.4+ servers) support but the 2.3 server of the server lane does
not (nullable fields, several vector fields), so these tests build a Milvus Lite path of their own
instead of asking for `milvus_uri`, as conftest asks of tests that rely on Lite. Test modules load the
fixtures with `pytest_plugins = ["test_workload_support"]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers.agreement import table_values

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.types.spec import CollectionSpec
from milvusdiff.workload.report import WorkloadReport
from milvusdiff.workload.runner import run_workload
from milvusdiff.workload.schemas import create_from_preset, load_preset


@pytest.fixture
def lite_settings(tmp_path: Path, pg_conn: str, journal_path: Path) -> Settings:
    return Settings(
        milvus_uri=str(tmp_path / "lite" / "milvus.db"),
        milvus_token=None,
        pg_conn=pg_conn,
        journal_path=journal_path,
        home=tmp_path / "home",
    )


@pytest.fixture
def lite_client(lite_settings: Settings) -> Iterator[ShadowClient]:
    shadow_client = ShadowClient.from_settings(lite_settings)
    try:
        yield shadow_client
    finally:
        shadow_client.close()


def connection_args(settings: Settings) -> list[str]:
    """The CLI options that point a command at the test's stores."""
    return [
        "--milvus-uri",
        settings.milvus_uri,
        "--pg-conn",
        str(settings.pg_conn),
        "--journal",
        str(settings.journal_path),
    ]


def load_and_run(client: ShadowClient, preset: str, collection: str, **options: Any) -> WorkloadReport:
    """Create `collection` from a preset and run a quiet workload on it."""
    loaded = load_preset(preset)
    create_from_preset(client, loaded, collection)
    return run_workload(client, loaded, collection, progress=False, **options)


def rows_by_key(table: pa.Table, spec: CollectionSpec) -> dict[Any, dict[str, Any]]:
    """A snapshot table as {key: row}, floats spelled exactly (see helpers.agreement.plain)."""
    return {row[spec.primary.name]: row for row in table_values(table)}


def changed_keys(before: pa.Table, after: pa.Table, spec: CollectionSpec) -> set[Any]:
    """Keys that appeared, vanished or changed in any column between two snapshots of one store."""
    old, new = rows_by_key(before, spec), rows_by_key(after, spec)
    return (old.keys() ^ new.keys()) | {k for k in old.keys() & new.keys() if old[k] != new[k]}
