"""The public Python API as a notebook user meets it: `from milvusdiff import compare` and friends.

The user's calls run in a fresh interpreter started outside the repository, so nothing this test
suite imported first can make them pass; what each process loaded is read from sys.modules. A
small typed caller is checked by mypy, once as written and once with a typo that mypy must catch.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import milvusdiff
from milvusdiff.cli.main import main

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pymilvus", "grpc", "duckdb", "pyarrow", "polars", "pandas", "numpy")
ENTRY_POINTS = ("ShadowClient", "export_collection", "compare", "validate", "repair")


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """1000 keys; in B key 7 is missing, x of keys 10, 20 and 30 changed."""
    ids = np.arange(1000)
    x = ids / 1000
    x_b = x.copy()
    x_b[[10, 20, 30]] += 1
    pq.write_table(pa.table({"id": ids, "x": x}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": ids, "x": x_b}).filter(pa.array(ids != 7)), tmp_path / "b.parquet")
    return tmp_path / "a.parquet", tmp_path / "b.parquet"


def python(code: str, cwd: Path, milvus_uri: str | None = None) -> dict[str, object]:
    """Run `code` in a fresh interpreter in `cwd` (outside the repository) and parse what it prints last."""
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "PYTHONPATH")}
    if milvus_uri is not None:
        env["MILVUS_URI"] = milvus_uri
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_notebook_user_compares_two_files(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = pair
    found = python(
        f"""
        import json, sys
        from milvusdiff import compare
        r = compare({str(a)!r}, {str(b)!r}, key="id")
        frame = r.diff().collect()
        print(json.dumps({{
            "changed": r.summary.changed, "only_a": r.summary.only_a, "exit_code": r.exit_code,
            "as_dict": r.summary.to_dict()["changed"], "keys": sorted(frame["id"].to_list()),
            "loaded": [m for m in ("pymilvus", "grpc") if m in sys.modules],
            "from": __import__("milvusdiff").__file__,
        }}))
        """,
        cwd=tmp_path,
    )
    assert found["changed"] == found["as_dict"] == 3 and found["only_a"] == 1 and found["exit_code"] == 1
    assert found["keys"] == [7, 10, 20, 30]
    assert found["loaded"] == []  # the compare path needs neither pymilvus nor gRPC
    assert Path(str(found["from"])).is_relative_to(REPO)  # this checkout, not some other install


def test_import_milvusdiff_loads_nothing_heavy(tmp_path: Path) -> None:
    found = python(
        f"""
        import json, sys
        import milvusdiff
        names = {list(ENTRY_POINTS)!r}
        print(json.dumps({{"loaded": [m for m in {list(HEAVY)!r} if m in sys.modules],
                          "listed": [n for n in names if n in dir(milvusdiff) and n in milvusdiff.__all__]}}))
        """,
        cwd=tmp_path,
    )
    assert found == {"loaded": [], "listed": list(ENTRY_POINTS)}


def test_the_compare_command_imports_neither_pymilvus_nor_grpc_nor_pandas(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """The fixed cost of a small compare is mostly imports: pandas alone (which pyarrow loads to probe
    for it) took half of it. The probe is skipped, and pandas still works when asked for afterwards."""
    a, b = pair
    found = python(
        f"""
        import json, sys
        from milvusdiff.cli.main import main
        try:
            main(["compare", {str(a)!r}, {str(b)!r}, "--key", "id", "--out", "out"])
        except SystemExit as exc:
            code = exc.code
        loaded = [m for m in ("pymilvus", "grpc", "pandas") if m in sys.modules]
        import pyarrow as pa
        frame = pa.table({{"x": [1, 2]}}).to_pandas()
        print(json.dumps({{"code": code, "loaded": loaded, "pandas_after": int(frame["x"].sum())}}))
        """,
        cwd=tmp_path,
    )
    assert found == {"code": 1, "loaded": [], "pandas_after": 3}


def test_help_loads_no_engine(tmp_path: Path) -> None:
    found = python(
        f"""
        import json, sys
        from milvusdiff.cli.main import main
        try:
            main(["compare", "--help"])
        except SystemExit as exc:
            code = exc.code
        print(json.dumps({{"code": code, "loaded": [m for m in {list(HEAVY)!r} if m in sys.modules]}}))
        """,
        cwd=tmp_path,
    )
    assert found == {"code": 0, "loaded": []}


def test_a_milvus_lite_uri_costs_nothing_until_pymilvus_is_needed(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """pymilvus refuses a Lite path in MILVUS_URI at import; milvusdiff hides it then, but only then."""
    a, b = pair
    found = python(
        f"""
        import json, os, sys
        from milvusdiff import compare
        exit_code = compare({str(a)!r}, {str(b)!r}, key="id").exit_code
        before = "pymilvus" in sys.modules
        from milvusdiff import ShadowClient  # imports pymilvus, which would raise on the Lite path
        print(json.dumps({{"exit_code": exit_code, "before": before, "after": "pymilvus" in sys.modules,
                          "uri": os.environ["MILVUS_URI"], "client": ShadowClient.__name__}}))
        """,
        cwd=tmp_path,
        milvus_uri="./lite.db",
    )
    assert found == {"exit_code": 1, "before": False, "after": True, "uri": "./lite.db", "client": "ShadowClient"}


def test_the_names_are_the_callables_whatever_was_imported_before() -> None:
    import milvusdiff.compare.api  # the subpackage and its modules loaded: the name stays the function
    from milvusdiff import compare, export_collection, repair, validate

    for function in (compare, export_collection, repair, validate):
        assert inspect.isfunction(function) and function.__module__ == "milvusdiff"
    assert milvusdiff.compare is compare and inspect.isclass(milvusdiff.ShadowClient)
    assert all(hasattr(milvusdiff, name) for name in milvusdiff.__all__)
    with pytest.raises(AttributeError):
        milvusdiff.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("name", "real"),
    [
        ("compare", "milvusdiff.compare.api"),
        ("validate", "milvusdiff.workflow.validate"),
        ("repair", "milvusdiff.workflow.repair"),
        ("export_collection", "milvusdiff.export.api"),
    ],
)
def test_each_wrapper_takes_what_the_implementation_takes(name: str, real: str) -> None:
    import importlib

    wrapper = inspect.signature(getattr(milvusdiff, name)).parameters
    implementation = inspect.signature(getattr(importlib.import_module(real), name)).parameters
    named = [(p.name, p.kind, p.default) for p in wrapper.values() if p.kind is not p.VAR_KEYWORD]
    same = [(p.name, p.kind, p.default) for p in implementation.values() if (p.name, p.kind, p.default) in named]
    assert named == same, f"milvusdiff.{name} no longer matches {real}.{name}: update milvusdiff/__init__.py"
    passed_through = [p for p in implementation.values() if p.name not in wrapper]
    assert all(p.default is not p.empty or p.kind is p.VAR_KEYWORD for p in passed_through)
    assert not passed_through or any(p.kind is p.VAR_KEYWORD for p in wrapper.values())


CALLER = """
from pathlib import Path

import polars as pl

from milvusdiff import CompareResult, ShadowClient, Summary, ValidateResult, compare, validate


def changed_keys(a: Path, b: Path) -> tuple[int, int, pl.DataFrame]:
    result: CompareResult = compare(a, b, key="id", atol=1e-6)
    summary: Summary = result.summary
    return summary.{field}, result.exit_code, result.diff().collect()


def warnings(collection: str) -> list[str]:
    run: ValidateResult = validate(collection, out=Path("run"))
    return run.summary.store_warnings


def close(client: ShadowClient) -> None:
    client.close()
"""


def test_mypy_checks_a_typed_caller(tmp_path: Path) -> None:
    def mypy(field: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "caller.py").write_text(CALLER.format(field=field))
        command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", "caller.py"]
        env = {**os.environ, "MYPYPATH": str(REPO)}  # the editable install's import hook is invisible to mypy
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    good = mypy("changed")
    assert good.returncode == 0, good.stdout
    typo = mypy("chnaged")
    assert typo.returncode == 1 and '"Summary" has no attribute "chnaged"' in typo.stdout


def test_library_errors_name_parameters_and_the_cli_names_flags(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = pair
    for kwargs, library, flag in (
        ({"key": "id", "max_diffs": 0}, "`max_diffs` must be at least 1", "--max-diffs must be at least 1"),
        ({"key": "id", "atol": -1.0}, "`atol` must be a finite number >= 0", "--atol must be a finite number >= 0"),
        ({}, "pass `key`", "pass --key"),
    ):
        with pytest.raises(milvusdiff.CompareError) as raised:
            milvusdiff.compare(a, b, **kwargs)
        assert library in str(raised.value) and "--" not in str(raised.value)
        args = [f"--{name.replace('_', '-')}={value}" for name, value in kwargs.items()]
        with pytest.raises(SystemExit) as exited:
            main(["compare", str(a), str(b), *args])
        err = capsys.readouterr().err
        assert exited.value.code == 2 and flag in err and "`" not in err, err
