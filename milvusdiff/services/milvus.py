"""MilvusClient construction from settings: one place that knows Milvus Lite paths from server URIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from milvusdiff.config import Settings, is_milvus_lite, redact
from milvusdiff.errors import ConfigError


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
