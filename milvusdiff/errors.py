"""The exception hierarchy.

Every error milvusdiff raises on purpose derives from MilvusDiffError, so the CLI can turn it into
exit code 2 and one line on stderr, while anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from milvusdiff.config import redact


class MilvusDiffError(Exception):
    """Base of every error milvusdiff raises deliberately."""


class ConfigError(MilvusDiffError):
    """A setting (URI, connection string, path) is missing, malformed or points at nothing reachable."""


class SchemaError(MilvusDiffError):
    """A collection schema uses a type or option milvusdiff cannot mirror exactly."""


class SyncError(MilvusDiffError):
    """A write reached one store and definitely failed in another; the journal says which."""


class InDoubtError(SyncError):
    """Milvus did not say whether a write was applied (timeout, dropped connection).

    The affected keys are journaled as IN_DOUBT; nothing guesses their outcome.
    """


class ShadowUnsupportedError(MilvusDiffError):
    """A ShadowClient method that would change rows or schema in a way the shadow cannot mirror exactly yet.

    Raised before Milvus is touched, so nothing diverges: the message names the method and why.
    """


class SnapshotError(MilvusDiffError):
    """A snapshot could not be written, or an input is not a readable snapshot."""


class CompareError(MilvusDiffError):
    """Two snapshots cannot be compared (no common key, incompatible key types, ...)."""


class FilterConversionError(MilvusDiffError):
    """A Milvus filter expression could not be parsed or translated.

    Carries the character position and the construct, so the message can point at it.
    """

    def __init__(self, message: str, position: int | None = None, construct: str | None = None) -> None:
        self.position = position
        self.construct = construct
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")


class CheckError(MilvusDiffError):
    """A query or search check cannot run: unknown collection or field, no usable index, Milvus refused the request."""


class JournalError(MilvusDiffError):
    """The LMDB journal cannot be opened or does not belong to the collection asked about."""


def first_line(exc: BaseException | str) -> str:
    """The first line of an error, for one-line messages; a driver's error may echo its connection string,
    so credentials are removed. A gRPC error's first line says only "<_InactiveRpcError of RPC that terminated
    with:", so its status code and details stand in (e.g. a server without the method: UNIMPLEMENTED)."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):
        status = code()
        text = f"{getattr(status, 'name', status)}: {details() or ''}".strip().splitlines()
    else:
        text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__


class ToleranceError(CompareError, ValueError):
    """A tolerance that is NaN, negative or infinite: it would hide every difference, or none."""
