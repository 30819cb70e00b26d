"""notebooks/analyze_diff.ipynb, executed with nbclient on diffs produced here (see test_analysis.py).

Two runs cover the notebook's branches: a validate-shaped directory with differences of every kind,
vector columns and a journal (every section draws, every figure is saved), and two agreeing stores
compared without a journal and without vectors (every section says why it has nothing to show).
A third runs it on the output of a real `validate` of a collection written through the ShadowClient
and then corrupted behind its back, as `milvusdiff demo` does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import psycopg
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from psycopg import sql
from pymilvus import DataType, MilvusClient
from test_analysis import make_agreeing_dir, make_sparse_dir, make_validate_dir

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.workflow.validate import validate

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analyze_diff.ipynb"
FIGURES = ("mismatches_per_column", "vector_deviations", "verdicts", "operations")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A `python3` kernelspec running this interpreter, first on JUPYTER_PATH, and a headless matplotlib.

    The venv installs one too (make install), but a user-level `python3` spec would shadow it and run an
    interpreter without milvusdiff; this one is searched first.
    """
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "python3", "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(spec_dir.parents[1]))
        patch.setenv("MPLBACKEND", "Agg")
        for name in ("MILVUSDIFF_DIFF_DIR", "MILVUSDIFF_FIGURES_DIR", "MILVUSDIFF_HOME", "MILVUSDIFF_CWD"):
            patch.delenv(name, raising=False)
        yield


def execute(
    env: dict[str, str], parameters: dict[str, str] | None = None, cwd: Path = NOTEBOOK.parent
) -> nbformat.NotebookNode:
    """Run the notebook as CI would: kernel python3, working directory notebooks/, `env` for the kernel.

    `parameters` go into a cell right after the one tagged `parameters`, as papermill injects them.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if parameters:
        at = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
        source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        client = NotebookClient(
            notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(cwd)}}
        )
        client.execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def text_of(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or displayed as text, markdown or HTML."""
    parts = []
    for output in outputs(notebook):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts += [data.get(kind, "") for kind in ("text/plain", "text/markdown", "text/html")]
    return "\n".join(parts)


def png_outputs(notebook: nbformat.NotebookNode) -> list[bytes]:
    return [base64.b64decode(o["data"]["image/png"]) for o in outputs(notebook) if "image/png" in o.get("data", {})]


def test_stored_notebook_has_no_outputs_and_a_parameters_cell() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert ["parameters" in c.metadata.get("tags", []) for c in code].count(True) == 1


def test_notebook_on_a_validate_directory(kernel_env: None, tmp_path: Path) -> None:
    diff_dir = make_validate_dir(tmp_path)
    notebook = execute({"MILVUSDIFF_DIFF_DIR": str(diff_dir)})

    figures = diff_dir / "figures"
    saved = {p.stem: p.read_bytes() for p in figures.glob("*.png")}
    assert set(saved) == set(FIGURES)
    assert all(data.startswith(PNG_MAGIC) and len(data) > 1000 for data in saved.values())
    assert sorted(png_outputs(notebook)) == sorted(saved.values())  # what is shown is what CI gets

    text = text_of(notebook)
    assert f"**Run analysed:** `{diff_dir}`" in text and "chosen by MILVUSDIFF_DIFF_DIR" in text
    assert f"diff:    {diff_dir}" in text and "A = milvus, B = pg" in text
    assert "milvus and pg differ" in text
    assert "milvus wrong" in text and "pg wrong" in text and "in doubt" in text
    assert "#5 delete (committed)" in text and "#6 upsert (in_doubt)" in text
    assert "Differing keys unknown to the journal: 1" in text
    assert "title 41 v2" in text  # the side-by-side row of the stale upsert


def test_notebook_when_the_stores_agree(kernel_env: None, tmp_path: Path) -> None:
    diff_dir = make_agreeing_dir(tmp_path)
    figures = tmp_path / "ci-figures"
    notebook = execute({"MILVUSDIFF_FIGURES_DIR": str(figures)}, parameters={"diff_dir": str(diff_dir)})

    text = text_of(notebook)
    assert "The stores agree" in text
    assert "No column differs" in text
    assert "No vector columns in this diff." in text
    assert "No journal arbitration in this run" in text
    assert "No journal snapshot in this directory" in text
    assert "No changed rows" in text
    assert png_outputs(notebook) == []
    assert figures.is_dir() and list(figures.iterdir()) == []
    assert not (diff_dir / "figures").exists()


def test_notebook_reads_a_relative_path_from_where_the_user_ran_jupyter(kernel_env: None, tmp_path: Path) -> None:
    """As printed by an older demo (`.milvusdiff/runs/...`): relative to the user's directory, not notebooks/."""
    diff_dir = make_validate_dir(tmp_path)
    relative = diff_dir.relative_to(tmp_path)
    for recorded in ({"MILVUSDIFF_CWD": str(tmp_path)}, {"PWD": str(tmp_path)}):  # make notebook / a shell
        notebook = execute({"MILVUSDIFF_DIFF_DIR": str(relative), **recorded})
        text = text_of(notebook)
        assert f"**Run analysed:** `{diff_dir}`" in text and f"relative to {tmp_path}" in text
        assert "milvus wrong" in text and {p.stem for p in (diff_dir / "figures").glob("*.png")} == set(FIGURES)


def test_notebook_refuses_to_guess_between_runs_of_two_directories(kernel_env: None, tmp_path: Path) -> None:
    run = make_agreeing_dir(tmp_path)
    for home in (tmp_path / "user", tmp_path / "checkout"):
        shutil.copytree(run, home / ".milvusdiff" / "runs" / run.name)
    (tmp_path / "checkout" / "notebooks").mkdir()
    with pytest.raises(CellExecutionError, match="runs under more than one directory"):
        execute({"MILVUSDIFF_CWD": str(tmp_path / "user")}, cwd=tmp_path / "checkout" / "notebooks")
    notebook = execute({"MILVUSDIFF_CWD": str(tmp_path / "user")}, cwd=tmp_path / "user")  # one home: no guess
    assert f"chosen by the newest run under {tmp_path / 'user' / '.milvusdiff' / 'runs'}" in text_of(notebook)


def test_notebook_vector_section_covers_sparse_vectors(kernel_env: None, tmp_path: Path) -> None:
    diff_dir = make_sparse_dir(tmp_path)
    notebook = execute({"MILVUSDIFF_DIFF_DIR": str(diff_dir)})
    text = text_of(notebook)
    assert "No row differs in the vector columns" not in text
    assert "sparse: 1 differing rows hold other indices" in text
    assert (diff_dir / "figures" / "vector_deviations.png").read_bytes().startswith(PNG_MAGIC)


def test_notebook_on_the_path_the_demo_prints(kernel_env: None, tmp_path: Path, pg_conn: str) -> None:
    """`milvusdiff demo --out run` in the user's directory; its printed line works as printed in notebooks/."""
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MILVUS_TOKEN", "MILVUSDIFF_JOURNAL")}
    env.update({"MILVUSDIFF_HOME": str(tmp_path / ".milvusdiff"), "PG_CONN": pg_conn})
    milvusdiff = Path(sys.executable).parent / "milvusdiff"
    command = [str(milvusdiff), "demo", "--rows", "300", "--out", "run"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr[-3000:]
    printed = re.search(r"MILVUSDIFF_DIFF_DIR=(\S+) jupyter lab", done.stdout)
    assert printed is not None and printed.group(1) == str((tmp_path / "run").resolve())
    text = text_of(execute({"MILVUSDIFF_DIFF_DIR": printed.group(1)}))
    assert f"**Run analysed:** `{printed.group(1)}`" in text and "milvus wrong" in text


def _write_and_corrupt(settings: Settings, pg_schema: str) -> None:
    """60 rows in three batches and a delete through the ShadowClient; then one vector changed and one
    row deleted in Milvus, and one title changed in PostgreSQL, each behind the client's back."""
    client = ShadowClient.from_settings(settings, pg_schema=pg_schema)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="FLAT", metric_type="L2")
    client.create_collection("shop", schema=schema, index_params=index)
    vectors = np.random.default_rng(3).random((60, 4), dtype=np.float32)
    rows = [{"id": i, "title": f"title {i}", "emb": vectors[i].tolist()} for i in range(60)]
    for start in range(0, 60, 20):
        client.insert("shop", rows[start : start + 20])
    client.delete("shop", ids=[50, 51])
    client.close()  # validate opens the journal itself

    milvus = MilvusClient(uri=settings.milvus_uri, token=settings.milvus_token or "")
    milvus.upsert("shop", [{"id": 5, "title": "title 5", "emb": [9.0, 0.0, 0.0, 0.0]}])
    milvus.delete("shop", ids=[8])
    milvus.close()
    assert settings.pg_conn is not None
    with psycopg.connect(settings.pg_conn, autocommit=True) as conn:
        update = sql.SQL("UPDATE {}.{} SET title = %s WHERE id = %s").format(
            sql.Identifier(pg_schema), sql.Identifier("shop")
        )
        conn.execute(update, ("tampered", 7))


def test_notebook_on_a_real_validate_run(
    kernel_env: None, settings: Settings, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILVUSDIFF_PG_SCHEMA", pg_schema)  # validate's PostgreSQL export reads the same schema
    _write_and_corrupt(settings, pg_schema)
    result = validate("shop", out=tmp_path / "run", settings=settings)
    assert result.exit_code == 1
    assert result.summary.verdicts == {"a_wrong": 2, "b_wrong": 1, "both_wrong": 0, "in_doubt": 0, "unknown": 0}

    notebook = execute({"MILVUSDIFF_DIFF_DIR": str(result.out)})

    assert {p.stem for p in (result.out / "figures").glob("*.png")} == set(FIGURES)
    assert len(png_outputs(notebook)) == len(FIGURES)
    text = text_of(notebook)
    assert "milvus wrong" in text and "pg wrong" in text
    assert "insert (committed)" in text and "Differing keys unknown to the journal: 0" in text
    assert "tampered" in text  # the PostgreSQL side of key 7, side by side with Milvus
