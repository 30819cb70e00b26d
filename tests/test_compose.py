"""docker-compose.yml: no Docker engine runs here, so check the structure a `docker compose up` relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def published_ports(service: dict[str, Any]) -> set[int]:
    """Host ports of "[ip:]host:container" entries."""
    return {int(str(entry).split(":")[-2]) for entry in service.get("ports", [])}


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"etcd", "minio", "milvus", "postgres"}


def test_milvus_is_a_3_0_standalone_on_etcd_and_minio(compose: dict[str, Any]) -> None:
    milvus = compose["services"]["milvus"]
    assert milvus["image"].startswith("milvusdb/milvus:v3.0.")
    assert milvus["command"] == ["milvus", "run", "standalone"]
    assert milvus["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert milvus["environment"]["MINIO_ADDRESS"] == "minio:9000"
    assert {name: dep["condition"] for name, dep in milvus["depends_on"].items()} == {
        "etcd": "service_healthy",
        "minio": "service_healthy",
    }
    assert 19530 in published_ports(milvus)


def test_postgres_17_matches_the_test_pg_lane(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:17"
    assert postgres["environment"]["POSTGRES_DB"] == "test"  # make test-pg connects to .../test as postgres
    assert 5432 in published_ports(postgres)


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_data_lives_in_declared_named_volumes(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        sources = [str(volume).split(":")[0] for volume in service.get("volumes", [])]
        assert sources, name
        assert set(sources) <= set(compose["volumes"]), name


def test_published_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), name
