"""MilvusClient construction from settings, against Milvus Lite here and a real server in make test-server."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymilvus import MilvusClient

from milvusdiff.config import Settings
from milvusdiff.errors import ConfigError
from milvusdiff.services.milvus import describe_target, milvus_client_kwargs


def settings_for(uri: str, token: str | None = None) -> Settings:
    return Settings(milvus_uri=uri, milvus_token=token, pg_conn=None, journal_path=Path("journal"))


def test_lite_path_gets_its_parent_directory(tmp_path: Path) -> None:
    uri = str(tmp_path / "deep" / "er" / "milvus.db")
    assert milvus_client_kwargs(settings_for(uri)) == {"uri": uri}
    assert (tmp_path / "deep" / "er").is_dir()


def test_token_is_passed_only_when_set() -> None:
    assert milvus_client_kwargs(settings_for("http://127.0.0.1:19530")) == {"uri": "http://127.0.0.1:19530"}
    assert milvus_client_kwargs(settings_for("http://127.0.0.1:19530", token="root:Milvus")) == {
        "uri": "http://127.0.0.1:19530",
        "token": "root:Milvus",
    }


def test_a_local_path_must_end_in_db() -> None:
    with pytest.raises(ConfigError, match=r"\.db"):
        milvus_client_kwargs(settings_for("localhost:19530"))


def test_describe_target_hides_credentials_and_resolves_lite_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert describe_target(settings_for("milvus.db")) == f"milvus-lite:{tmp_path / 'milvus.db'}"
    assert (
        describe_target(settings_for("http://root:s3cret@milvus.example:19530", token="t0ken"))
        == "http://root:***@milvus.example:19530"
    )


def test_client_from_settings_round_trips_rows(settings: Settings) -> None:
    client = MilvusClient(**milvus_client_kwargs(settings))
    client.create_collection("roundtrip", dimension=4)
    rows = [{"id": i, "vector": [float(i), 0.0, 1.0, 2.0], "tag": f"t{i}"} for i in range(10)]
    assert client.insert("roundtrip", rows)["insert_count"] == 10
    got = client.query("roundtrip", filter="id < 3", output_fields=["id", "tag"], consistency_level="Strong")
    assert sorted((row["id"], row["tag"]) for row in got) == [(0, "t0"), (1, "t1"), (2, "t2")]
    client.close()
