"""`milvusdiff export` as a user runs it: a separate process, options from flags or the environment.

Trouble (unknown collection, missing database, unreachable server, unwritable or existing output)
exits 2 with exactly one line on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MAKE_LITE = textwrap.dedent(
    """
    import sys
    from pymilvus import MilvusClient
    client = MilvusClient(sys.argv[1])
    client.create_collection("docs", dimension=4)
    client.insert("docs", [{"id": i, "vector": [i, 0.5, -1.0, 2.0], "note": f"n{i}"} for i in range(100)])
    """
)


def milvusdiff(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MILVUS_TOKEN", "PG_CONN")}
    return subprocess.run(
        [sys.executable, "-m", "milvusdiff", "export", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **(env or {})},
    )


@pytest.fixture(scope="module")
def lite_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Milvus Lite database with a 100-row collection 'docs', made (and released) by another process."""
    path = tmp_path_factory.mktemp("lite") / "milvus.db"
    subprocess.run([sys.executable, "-c", MAKE_LITE, str(path)], check=True, capture_output=True, timeout=300)
    return path


def test_export_reads_its_stores_from_the_environment(lite_docs: Path, tmp_path: Path):
    done = milvusdiff("-c", "docs", "--out", tmp_path / "snap", env={"MILVUS_URI": str(lite_docs)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("milvus: 100 rows of 'docs' (100 distinct keys, store count 100)")
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert manifest["rows_written"] == 100 and manifest["uri"] == f"milvus-lite:{lite_docs.resolve()}"


def test_json_prints_the_manifest(lite_docs: Path, tmp_path: Path):
    out = tmp_path / "docs.parquet"
    done = milvusdiff("-c", "docs", "--milvus-uri", lite_docs, "--out", out, "--json", "--batch-size", "7", "--fsync")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["source"] == "milvus" and manifest["rows_written"] == 100
    assert manifest["options"] == {"batch_size": 7, "flush": True, "parallel": 1, "fsync": True}
    assert manifest["spec"]["enable_dynamic_field"] and out.exists()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("milvusdiff: ") or lines[0].startswith("Error: ")
    return lines[0]


def test_unknown_milvus_collection(lite_docs: Path, tmp_path: Path):
    line = one_line_error(milvusdiff("-c", "nope", "--milvus-uri", lite_docs, "--out", tmp_path / "x"))
    assert "collection 'nope' does not exist in Milvus" in line
    assert not (tmp_path / "x").exists()


def test_missing_lite_database(tmp_path: Path):
    line = one_line_error(milvusdiff("-c", "docs", "--milvus-uri", tmp_path / "absent.db", "--out", tmp_path / "x"))
    assert "no Milvus Lite database at" in line and not (tmp_path / "absent.db").exists()


def test_unreachable_server(tmp_path: Path):
    line = one_line_error(milvusdiff("-c", "docs", "--milvus-uri", "http://127.0.0.1:9", "--out", tmp_path / "x"))
    assert "cannot reach Milvus at http://127.0.0.1:9" in line


def test_unwritable_output(lite_docs: Path, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = one_line_error(milvusdiff("-c", "docs", "--milvus-uri", lite_docs, "--out", blocker / "snap"))
    assert "cannot create the output directory" in line


def test_existing_output_is_not_replaced_without_overwrite(lite_docs: Path, tmp_path: Path):
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "keep.txt").write_text("mine")
    line = one_line_error(milvusdiff("-c", "docs", "--milvus-uri", lite_docs, "--out", tmp_path / "snap"))
    assert "already exists (pass --overwrite" in line
    assert (tmp_path / "snap" / "keep.txt").read_text() == "mine"


def test_unknown_pg_collection_and_missing_journal(pg_conn: str, tmp_path: Path):
    pg = one_line_error(milvusdiff("-c", "nope", "--source", "pg", "--out", tmp_path / "p", env={"PG_CONN": pg_conn}))
    assert "collection 'nope' has no shadow table in PostgreSQL" in pg
    journal = one_line_error(
        milvusdiff(
            "-c", "nope", "--source", "journal", "--out", tmp_path / "j", env={"MILVUSDIFF_JOURNAL": str(tmp_path)}
        )
    )
    assert f"no journal at {tmp_path}" in journal


def test_bad_option_value(tmp_path: Path):
    done = milvusdiff("-c", "docs", "--parallel", "0", "--out", tmp_path / "x")
    assert done.returncode == 2 and "--parallel" in done.stderr
