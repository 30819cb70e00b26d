"""Faults injected into pymilvus, under the ShadowClient, as a real Milvus or network can cause them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pymilvus import MilvusClient


@contextmanager
def answer_lost(monkeypatch: pytest.MonkeyPatch, method: str, *, applied: bool) -> Iterator[None]:
    """While inside, MilvusClient.`method` times out: after really doing its work (`applied`), or before."""
    real = getattr(MilvusClient, method)

    def lost(self: MilvusClient, *args: Any, **kwargs: Any) -> Any:
        if applied:
            real(self, *args, **kwargs)
        raise TimeoutError("deadline exceeded before Milvus answered")

    with monkeypatch.context() as patch:
        patch.setattr(MilvusClient, method, lost)
        yield
