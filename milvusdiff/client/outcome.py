"""Deciding whether a failed Milvus call definitely did nothing, or may have been applied.

The distinction drives everything the journal records: a definite error (the server refused the
request, or the client never sent it) means no store changed; a timeout or a dropped connection
means Milvus may have applied the write, and milvusdiff must say "in doubt" rather than guess.
"""

from __future__ import annotations

import grpc
from pymilvus.exceptions import MilvusException, MilvusUnavailableException

_UNKNOWN_OUTCOME_CODES = {
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
}
_UNKNOWN_OUTCOME_WORDS = ("timeout", "timed out", "deadline", "unavailable", "connection", "socket closed")


def outcome_unknown(exc: BaseException) -> bool:
    """True when the call may have reached Milvus and been applied without an answer coming back."""
    if isinstance(exc, (TimeoutError, ConnectionError, MilvusUnavailableException)):
        return True
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code in _UNKNOWN_OUTCOME_CODES
    if isinstance(exc, MilvusException):
        text = str(exc).lower()
        return any(word in text for word in _UNKNOWN_OUTCOME_WORDS)
    return False
