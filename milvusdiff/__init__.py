"""milvusdiff: prove that a Milvus collection holds exactly the data that was written to it."""

from __future__ import annotations

__version__ = "0.1.0"
