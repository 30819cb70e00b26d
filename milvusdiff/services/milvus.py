"""MilvusClient construction from settings: one place that knows Milvus Lite paths from server URIs."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from milvusdiff.config import Settings, is_milvus_lite, redact
from milvusdiff.errors import ConfigError
from milvusdiff.types.spec import DEFAULT_DATABASE


def milvus_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `pymilvus.MilvusClient(**kwargs)`.

    For Milvus Lite the parent directory is created, since pymilvus refuses a path whose directory is
    missing, and the default location (`./.milvusdiff/milvus.db`) does not exist on a fresh checkout.
    """
    uri = settings.milvus_uri
    if is_milvus_lite(uri):
        path = Path(uri).expanduser()
        if path.suffix != ".db":
            raise ConfigError(
                f"Milvus URI {redact(uri)!r} is neither a server URI (http://, https://, tcp://, unix:) "
                "nor a Milvus Lite path ending in .db"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = str(path)
    kwargs: dict[str, Any] = {"uri": uri}
    if settings.milvus_token:
        kwargs["token"] = settings.milvus_token
    return kwargs


# Milvus Lite serves a database from inside the process that opened it, one server per absolute path shared by
# every client of that path, and keeps the database's file lock after MilvusClient.close(): another process
# (`milvusdiff validate` from a notebook, say) then cannot open it. The ShadowClients of a path count here, and
# the last one to close stops the server (a later client of the path starts a new one).
_LITE_HOLDERS: Counter[str] = Counter()
_LITE_LOCK = threading.Lock()


def hold_lite(settings: Settings) -> str | None:
    """Count one more client of a Milvus Lite database; its absolute path (None for a server)."""
    if not is_milvus_lite(settings.milvus_uri):
        return None
    path = os.path.abspath(Path(settings.milvus_uri).expanduser())
    with _LITE_LOCK:
        _LITE_HOLDERS[path] += 1
    return path


def let_go_lite(path: str | None) -> None:
    """One client fewer; the last one frees the database (and its lock) for other processes."""
    if path is None:
        return
    with _LITE_LOCK:
        _LITE_HOLDERS[path] -= 1
        if _LITE_HOLDERS[path] > 0:
            return
        del _LITE_HOLDERS[path]
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)


def uri_database(settings: Settings) -> str:
    """The database a client of these settings works in: the first path segment of a server URI, as pymilvus
    reads it; Milvus Lite paths, unix sockets and anything else name none."""
    parts = urlsplit(settings.milvus_uri)
    if parts.scheme.lower() not in ("http", "https", "tcp"):
        return DEFAULT_DATABASE
    return parts.path.strip("/").split("/")[0] or DEFAULT_DATABASE


def resolve_collection(settings: Settings, name: str) -> tuple[str, str]:
    """(database, collection in Milvus) for a collection named on the command line or to the library:
    `db.collection` names its database; a bare name is in the URI's database."""
    database, dot, collection = name.partition(".")
    return (database, collection) if dot else (uri_database(settings), name)


def shadow_database(settings: Settings, database: str) -> str | None:
    """The database as the shadow and the journal name it (types.spec.shadow_name): None for the URI's own,
    whose collections keep bare names."""
    return None if database == uri_database(settings) else database


def describe_target(settings: Settings) -> str:
    """Name the Milvus target for a manifest or report: no credentials, and Lite paths made absolute."""
    if is_milvus_lite(settings.milvus_uri):
        return f"milvus-lite:{Path(settings.milvus_uri).expanduser().resolve()}"
    return redact(settings.milvus_uri)


def unreachable(settings: Settings, exc: BaseException) -> ConfigError:
    """The one-line error for a Milvus that did not answer; a Lite database is most often held by another process."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    hint = " (is another process using this Milvus Lite database?)" if is_milvus_lite(settings.milvus_uri) else ""
    return ConfigError(f"cannot reach Milvus at {describe_target(settings)}: {first}{hint}")


def key_in_filter(key_name: str, keys: Sequence[Any]) -> str:
    """A Milvus filter matching exactly these primary keys (JSON list literals are valid Milvus syntax)."""
    return f"{key_name} in {json.dumps(list(keys), ensure_ascii=False)}"


class _KnownLiteNoise(logging.Filter):
    """Milvus Lite's in-process server does not implement AllocTimestamp, so every query_iterator logs a
    server error and a pymilvus warning before falling back to a client-side timestamp. That is expected
    there (see the field notes) and would drown real warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "mvccTs" not in message and "Method not implemented" not in message


_NOISE = _KnownLiteNoise()


def silence_known_lite_noise() -> None:
    """Drop only those two known messages; idempotent."""
    for name in ("pymilvus.client.iterator.query_iterator", "grpc._server"):
        logging.getLogger(name).addFilter(_NOISE)
