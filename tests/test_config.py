"""Settings precedence and credential redaction."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milvusdiff.config import Settings, is_milvus_lite, redact

ENV_VARS = ("MILVUS_URI", "MILVUS_TOKEN", "PG_CONN", "MILVUSDIFF_JOURNAL", "MILVUSDIFF_HOME")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The lanes set some of these variables; precedence tests must start from none."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_defaults_live_under_the_home_directory(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.resolve()
    assert settings == Settings(
        milvus_uri=str(Path(".milvusdiff") / "milvus.db"),
        milvus_token=None,
        pg_conn=None,
        journal_path=Path(".milvusdiff") / "journal",
        home=Path(".milvusdiff"),
    )


def test_home_comes_from_argument_then_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("MILVUSDIFF_HOME", str(tmp_path / "env-home"))
    assert Settings.resolve().milvus_uri == str(tmp_path / "env-home" / "milvus.db")
    assert Settings.resolve().journal_path == tmp_path / "env-home" / "journal"
    assert Settings.resolve(home=tmp_path / "arg-home").home == tmp_path / "arg-home"


def test_environment_beats_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MILVUS_URI", "http://env:19530")
    clean_env.setenv("MILVUS_TOKEN", "env-token")
    clean_env.setenv("PG_CONN", "postgresql://env/db")
    clean_env.setenv("MILVUSDIFF_JOURNAL", "/env/journal")
    settings = Settings.resolve()
    assert settings.milvus_uri == "http://env:19530"
    assert settings.milvus_token == "env-token"
    assert settings.pg_conn == "postgresql://env/db"
    assert settings.journal_path == Path("/env/journal")


def test_arguments_beat_environment(clean_env: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        clean_env.setenv(var, "/from/env")
    settings = Settings.resolve(
        milvus_uri="http://arg:19530",
        milvus_token="arg-token",
        pg_conn="postgresql://arg/db",
        journal_path="/arg/journal",
    )
    assert settings.milvus_uri == "http://arg:19530"
    assert settings.milvus_token == "arg-token"
    assert settings.pg_conn == "postgresql://arg/db"
    assert settings.journal_path == Path("/arg/journal")


def test_empty_values_count_as_unset(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MILVUS_URI", "")
    clean_env.setenv("PG_CONN", "")
    settings = Settings.resolve(milvus_token="")
    assert settings.milvus_uri == str(Path(".milvusdiff") / "milvus.db")
    assert settings.milvus_token is None
    assert settings.pg_conn is None


def test_settings_are_immutable() -> None:
    settings = Settings.resolve(milvus_uri="x.db", journal_path="j")
    with pytest.raises(AttributeError):
        settings.milvus_uri = "other.db"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://user:hunter2@db.example:5432/test", "postgresql://user:***@db.example:5432/test"),
        ("http://root:Milvus@127.0.0.1:19530", "http://root:***@127.0.0.1:19530"),
        ("postgresql://:hunter2@host/db", "postgresql://:***@host/db"),
        (
            "postgresql://host/db?user=u&password=hunter2&sslmode=require",
            "postgresql://host/db?user=u&password=***&sslmode=require",
        ),
        ("postgresql://host/db?sslpassword=hunter2", "postgresql://host/db?sslpassword=***"),
        ("https://host:443?token=hunter2", "https://host:443?token=***"),
        ("host=h port=5432 password=hunter2 dbname=test", "host=h port=5432 password=*** dbname=test"),
        ("host=h password = 'hunt er\\'2' dbname=test", "host=h password = *** dbname=test"),
        ("dbname=test password='hunter2 never closed", "dbname=test password=***"),
    ],
)
def test_redact_hides_secrets_and_keeps_the_rest(uri: str, expected: str) -> None:
    assert redact(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://postgres@/postgres?host=/tmp/pg&port=5432",
        "http://127.0.0.1:19530",
        ".milvusdiff/milvus.db",
        "host=localhost dbname=test user=postgres",
    ],
)
def test_redact_leaves_strings_without_secrets_alone(uri: str) -> None:
    assert redact(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://user:hunt/er2@host/db",
        "postgresql://user:hunt?er2@host/db",
        "postgresql://user:hunt#er2@host/db",
        "postgresql://user:hunt@er2@host/db",
        "postgresql://user:hunt er2@host/db",
    ],
)
def test_redact_hides_unescaped_passwords_in_malformed_uris(uri: str) -> None:
    redacted = redact(uri)
    assert "hunt" not in redacted
    assert "er2" not in redacted


# A marker keeps a short random secret from matching the URI text around it by chance.
secrets = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30).map(
    lambda s: "Zq7" + s
)


@given(secret=secrets)
def test_redacted_uri_never_contains_the_password(secret: str) -> None:
    for uri in (
        f"postgresql://user:{quote(secret, safe='')}@host:5432/db",
        f"postgresql://user@host/db?password={quote(secret, safe='')}",
        f"http://root:{quote(secret, safe='')}@127.0.0.1:19530",
    ):
        redacted = redact(uri)
        assert quote(secret, safe="") not in redacted
        assert secret not in redacted


@given(secret=secrets)
def test_redacted_keyword_string_never_contains_the_password(secret: str) -> None:
    quoted = "'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    redacted = redact(f"host=h password={quoted} dbname=test")
    assert secret not in redacted
    assert redacted.endswith(" dbname=test")


@pytest.mark.parametrize(
    ("uri", "lite"),
    [
        (".milvusdiff/milvus.db", True),
        ("/abs/path/x.db", True),
        ("http://127.0.0.1:19530", False),
        ("https://in01.example.com", False),
        ("tcp://127.0.0.1:19530", False),
        ("unix:/tmp/milvus.sock", False),
    ],
)
def test_is_milvus_lite(uri: str, lite: bool) -> None:
    assert is_milvus_lite(uri) is lite
