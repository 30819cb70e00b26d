"""milvusdiff: prove that a Milvus collection holds exactly the data that was written to it.

    from milvusdiff import ShadowClient, export_collection, compare, validate, repair

    result = compare("a.parquet", "b.parquet", key="id")
    result.summary.changed, result.exit_code, result.diff().collect()

Why the entry points are thin functions here. `import milvusdiff` must stay cheap (the CLI imports
it for `--help`; a notebook for one call), so the modules behind the entry points, which load
pyarrow, DuckDB or pymilvus, are imported on the first call. A module-level `__getattr__` cannot
serve `compare`, because `milvusdiff.compare` is also a subpackage: once any code imports it, the
import system sets the package attribute `compare` to the subpackage, so `from milvusdiff import
compare` would return a module (or a function, depending on what was imported first). Instead the
subpackage is imported here first (it is light), and the function defined after it takes the name
for good: the import system binds a subpackage to its parent only when it first loads it.
`import milvusdiff.compare.options` and `from milvusdiff.compare import X` keep working (they go
through sys.modules); only attribute chains such as `milvusdiff.compare.api` reach the function.
Each wrapper repeats the parameters of the implementation (tests/test_public_api.py checks they
match), so mypy, help() and tab completion see what it takes; export_collection passes its tuning
options through, so their defaults stay in one place.

The classes (ShadowClient, the result, summary and option types), whose modules load pymilvus or
pyarrow, load on first attribute access (module `__getattr__`, typed for mypy through the
TYPE_CHECKING imports); only the error types and Settings, which load nothing, are imported here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import milvusdiff.compare as _compare_package  # noqa: F401  (bound before the function below; see above)
from milvusdiff.config import Settings
from milvusdiff.errors import (
    CheckError,
    CompareError,
    ConfigError,
    FilterConversionError,
    InDoubtError,
    JournalError,
    MilvusDiffError,
    SchemaError,
    ShadowUnsupportedError,
    SnapshotError,
    SyncError,
)

if TYPE_CHECKING:
    from milvusdiff.client.shadow import ShadowClient
    from milvusdiff.compare.options import CompareOptions
    from milvusdiff.compare.result import CompareResult
    from milvusdiff.compare.summary import ColumnFinding, Summary
    from milvusdiff.compare.tolerance import Tolerance
    from milvusdiff.export.manifest import Manifest
    from milvusdiff.workflow.repair import RepairReport
    from milvusdiff.workflow.validate import ValidateResult

__version__ = "0.1.0"


class _PymilvusWithoutLiteUri(importlib.abc.MetaPathFinder):
    """pymilvus parses MILVUS_URI when it is imported and raises on anything without a host, so a Milvus
    Lite path there (which milvusdiff accepts: `MILVUS_URI=./x.db`) would make every module that imports
    pymilvus die with a traceback. Importing pymilvus here, with the variable hidden, would cost every
    `import milvusdiff` (and `milvusdiff compare`, which never talks to Milvus) a second and more; so this
    finder hides a Lite path only while pymilvus itself is first executed, whenever that happens."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "pymilvus":
            return None
        sys.meta_path.remove(self)  # once; and the finders after this one find the real package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module: ModuleType) -> None:
                from milvusdiff.config import is_milvus_lite

                uri = os.environ.get("MILVUS_URI")
                hide = bool(uri) and is_milvus_lite(str(uri))
                if hide:
                    del os.environ["MILVUS_URI"]
                try:
                    run(module)
                finally:
                    if hide:
                        os.environ["MILVUS_URI"] = str(uri)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "pymilvus" not in sys.modules:
    sys.meta_path.insert(0, _PymilvusWithoutLiteUri())


def compare(a: str | Path, b: str | Path, options: CompareOptions | None = None, **kwargs: Any) -> CompareResult:
    """Diff two snapshots (directories or .parquet files) by key; see milvusdiff.compare.api.compare.

    Keyword arguments: key, columns, ignore, rename, atol, rtol, tol, engine, max_diffs, memory_limit,
    temp_dir, threads, journal, out, sample_size (or pass a CompareOptions).
    """
    from milvusdiff.compare.api import compare as run

    return run(a, b, options, **kwargs)


def export_collection(
    collection: str, *, source: str = "milvus", out: str | Path, settings: Settings | None = None, **options: Any
) -> Manifest:
    """Export `collection` from Milvus, the PostgreSQL shadow, the journal, or all three (`source="all"`), as a
    Parquet snapshot with a manifest. Tuning options (batch_size, parallel, rows_per_part, overwrite, fsync,
    buckets, quiet, flush) keep their defaults in milvusdiff.export.api.export_collection, the one place."""
    from milvusdiff.export.api import export_collection as run

    return run(collection, source=source, out=out, settings=settings, **options)


def validate(
    collection: str,
    *,
    out: str | Path | None = None,
    settings: Settings | None = None,
    quiet: bool = True,
    batch_size: int | None = None,
    **compare_options: Any,
) -> ValidateResult:
    """Export the three stores of `collection` and compare Milvus (A) with PostgreSQL (B), the journal
    arbitrating; see milvusdiff.workflow.validate.validate."""
    from milvusdiff.workflow.validate import validate as run

    return run(collection, out=out, settings=settings, quiet=quiet, batch_size=batch_size, **compare_options)


def repair(
    client: ShadowClient,
    collection: str,
    source: str,
    keys: Sequence[Any] | None = None,
    diff: Path | None = None,
) -> RepairReport:
    """Bring Milvus and the shadow back into agreement for `keys` (or the journal's unsettled keys),
    from `source` ('milvus', 'pg' or 'journal'); see milvusdiff.workflow.repair.repair."""
    from milvusdiff.workflow.repair import repair as run

    return run(client, collection, source, keys, diff)


_LAZY = {
    "ShadowClient": "milvusdiff.client.shadow",
    "CompareOptions": "milvusdiff.compare.options",
    "Tolerance": "milvusdiff.compare.tolerance",
    "CompareResult": "milvusdiff.compare.result",
    "ColumnFinding": "milvusdiff.compare.summary",
    "Summary": "milvusdiff.compare.summary",
    "Manifest": "milvusdiff.export.manifest",
    "RepairReport": "milvusdiff.workflow.repair",
    "ValidateResult": "milvusdiff.workflow.validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'milvusdiff' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CheckError",
    "ColumnFinding",
    "CompareError",
    "CompareOptions",
    "CompareResult",
    "ConfigError",
    "FilterConversionError",
    "InDoubtError",
    "JournalError",
    "Manifest",
    "MilvusDiffError",
    "RepairReport",
    "SchemaError",
    "Settings",
    "ShadowClient",
    "ShadowUnsupportedError",
    "SnapshotError",
    "Summary",
    "SyncError",
    "Tolerance",
    "ValidateResult",
    "__version__",
    "compare",
    "export_collection",
    "repair",
    "validate",
]
