"""milvusdiff: prove that a Milvus collection holds exactly the data that was written to it.

from milvusdiff import ShadowClient, export_collection, compare, validate, repair
"""

from __future__ import annotations

import importlib
import os

__version__ = "0.1.0"


def _import_pymilvus_despite_a_lite_uri() -> None:
    """pymilvus parses MILVUS_URI when it is imported and raises on anything without a host, so a Milvus
    Lite path there (which milvusdiff accepts: `MILVUS_URI=./x.db`) would make every command that imports
    pymilvus die with a traceback. Import it once with the variable hidden, then put the variable back;
    only in that case, so that `import milvusdiff` stays instant otherwise."""
    from milvusdiff.config import is_milvus_lite

    uri = os.environ.get("MILVUS_URI")
    if not uri or not is_milvus_lite(uri):
        return
    del os.environ["MILVUS_URI"]
    try:
        importlib.import_module("pymilvus")
    finally:
        os.environ["MILVUS_URI"] = uri


_import_pymilvus_despite_a_lite_uri()

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
