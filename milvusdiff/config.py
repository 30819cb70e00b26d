"""Where the stores are, and how to name them without leaking credentials.

Settings are resolved once, in one place, so every command and library entry point agrees on the same
precedence: explicit argument, then environment variable, then a default under the milvusdiff home
directory. The defaults are embedded services (Milvus Lite, embedded PostgreSQL) so that a fresh checkout
works with no server at all.

`redact` exists because connection strings end up in manifests, logs and reports, and those are shared
freely; it errs on the side of hiding too much rather than too little.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path(".milvusdiff")
REDACTED = "***"


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the three stores milvusdiff talks to.

    `pg_conn` None means "use the embedded PostgreSQL server under `home`"; it stays None here rather than
    being started eagerly, because most commands (compare, export from a file) never need PostgreSQL.
    """

    milvus_uri: str
    milvus_token: str | None
    pg_conn: str | None
    journal_path: Path
    home: Path = DEFAULT_HOME

    @classmethod
    def resolve(
        cls,
        milvus_uri: str | None = None,
        milvus_token: str | None = None,
        pg_conn: str | None = None,
        journal_path: Path | str | None = None,
        home: Path | str | None = None,
    ) -> Settings:
        """Apply the precedence argument > environment > default to every setting.

        An empty environment variable counts as unset, so `MILVUS_URI= milvusdiff ...` falls back to the
        default instead of producing an empty URI that fails far from its cause.
        """
        home_dir = Path(_pick(home, "MILVUSDIFF_HOME") or DEFAULT_HOME)
        journal = _pick(journal_path, "MILVUSDIFF_JOURNAL")
        return cls(
            milvus_uri=_pick(milvus_uri, "MILVUS_URI") or str(home_dir / "milvus.db"),
            milvus_token=_pick(milvus_token, "MILVUS_TOKEN"),
            pg_conn=_pick(pg_conn, "PG_CONN"),
            journal_path=Path(journal) if journal else home_dir / "journal",
            home=home_dir,
        )


def _pick(explicit: str | Path | None, env_var: str) -> str | None:
    if explicit is not None and str(explicit) != "":
        return str(explicit)
    return os.environ.get(env_var) or None


_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ANY_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Names of parameters whose values are secrets, in URI queries and libpq key=value strings alike.
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:pass|pwd|token|secret|api[_-]?key|access[_-]?key|credential)[A-Za-z0-9_.-]*"
_SECRET_QUERY_PARAM = re.compile(rf"([?&;]\s*{_SECRET_NAME}\s*=)[^&#]*", re.IGNORECASE)
# libpq values are either single-quoted (backslash escapes; an unterminated quote runs to the end) or bare.
_SECRET_KEYWORD = re.compile(
    rf"((?:^|\s){_SECRET_NAME}\s*=\s*)(?:'(?:[^'\\]|\\.)*(?:'|$)|\S*)", re.IGNORECASE | re.DOTALL
)


def redact(uri: str) -> str:
    """Hide passwords and tokens in a connection URI or libpq key=value string.

    Covers the password of `scheme://user:password@host`, query parameters and libpq keywords named like a
    secret (password, sslpassword, token, secret, api_key, ...). Malformed URIs are handled conservatively:
    a password with unescaped `/`, `?`, `#` or `@` is still hidden entirely, at the price of also hiding
    whatever sits between it and the last `@`.
    """
    text = _redact_userinfo(uri)
    text = _SECRET_QUERY_PARAM.sub(rf"\g<1>{REDACTED}", text)
    return _SECRET_KEYWORD.sub(rf"\g<1>{REDACTED}", text)


def _redact_userinfo(text: str) -> str:
    """Replace the password part of every `scheme://user:password@` in `text`."""
    out: list[str] = []
    pos = 0
    for match in _ANY_SCHEME.finditer(text):
        if match.start() < pos:
            continue
        next_scheme = _ANY_SCHEME.search(text, match.end())
        end = next_scheme.start() if next_scheme else len(text)
        rest = text[match.end() : end]
        at = rest.rfind("@")
        # Up to the first delimiter is where "user:" must be if there is a password at all.
        head = re.split(r"[/?#]", rest[:at], maxsplit=1)[0] if at >= 0 else ""
        colon = head.find(":")
        if colon < 0:
            continue
        out.append(text[pos : match.end() + colon + 1])
        out.append(REDACTED)
        pos = match.end() + at
    out.append(text[pos:])
    return "".join(out)


def is_milvus_lite(uri: str) -> bool:
    """True when `uri` names a local Milvus Lite database rather than a server.

    Mirrors pymilvus: anything that is not a `scheme://` URI or `unix:` socket is a local path; whether it
    ends in `.db` as pymilvus requires is checked where the client is built, to give a clear error there.
    """
    return not (_URI_SCHEME.match(uri) or uri.lower().startswith("unix:"))
