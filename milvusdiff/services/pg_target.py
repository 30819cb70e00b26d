"""Which PostgreSQL the shadow tables live in: the one configured, or the embedded one on demand."""

from __future__ import annotations

from milvusdiff.config import Settings
from milvusdiff.services.embedded_pg import ensure_embedded_pg


def resolve_pg_conn(settings: Settings) -> str:
    """Return the configured connection string, starting the embedded server only when none is configured.

    Starting it here, at first use, rather than in `Settings.resolve` keeps commands that never touch
    PostgreSQL from paying for (or failing on) a server they do not need.
    """
    if settings.pg_conn is not None:
        return settings.pg_conn
    return ensure_embedded_pg(settings.home / "pg")
