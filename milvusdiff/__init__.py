"""milvusdiff: prove that a Milvus collection holds exactly the data that was written to it.

    from milvusdiff import ShadowClient, export_collection, compare, validate, repair
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Heavy entry points load on first use, so `import milvusdiff` (and `milvusdiff --help`) stays instant.
_LAZY = {
    "ShadowClient": "milvusdiff.client.shadow",
    "compare": "milvusdiff.compare",
    "export_collection": "milvusdiff.export",
    "repair": "milvusdiff.workflow.repair",
    "validate": "milvusdiff.workflow.validate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'milvusdiff' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
