"""milvusdiff: prove that a Milvus collection holds exactly the data that was written to it."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Heavy entry points load on first use, so `import milvusdiff` stays instant."""
    if name == "compare":
        from milvusdiff.compare import compare

        return compare
    raise AttributeError(f"module 'milvusdiff' has no attribute {name!r}")
