"""Gating CI on the proof: the pytest plugin, `validate --all`, JUnit XML and the GitHub job summary.

The plugin runs as a QA team would use it: a temporary pytest project in a subprocess, with the stores
given through the same environment variables the CLI reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.schemas import create_small_collection

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings

MILVUSDIFF = str(Path(sys.executable).with_name("milvusdiff"))

SUITE_HELPERS = textwrap.dedent(
    """
    from pymilvus import DataType, MilvusClient


    def write(client, name, n=20):
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("title", DataType.VARCHAR, max_length=64)
        schema.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
        index = client.prepare_index_params()
        index.add_index("emb", index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        client.insert(name, [{"id": i, "title": f"t{i}", "emb": [float(i)] * 4} for i in range(n)])


    def behind_the_back(client, name, key):
        # The base class's upsert: Milvus changes, the shadow and the journal never hear of it.
        MilvusClient.upsert(client, name, [{"id": key, "title": "tampered", "emb": [9.0] * 4}])
    """
)


@pytest.fixture
def stores_env(milvus_uri: str, pg_conn: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MILVUS_URI=milvus_uri,
        PG_CONN=pg_conn,
        MILVUSDIFF_JOURNAL=str(tmp_path / "journal"),
        MILVUSDIFF_HOME=str(tmp_path / "home"),
    )
    return env


def _run_suite(tmp_path: Path, env: dict[str, str], body: str, *args: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "qa_suite"
    project.mkdir(exist_ok=True)
    (project / "suite_helpers.py").write_text(SUITE_HELPERS, encoding="utf-8")
    (project / "test_suite.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_plugin_clean_suite_passes_and_reports_each_collection(tmp_path: Path, stores_env: dict[str, str]) -> None:
    body = """
        import pytest
        from suite_helpers import write

        def test_writes(milvusdiff_client):
            write(milvusdiff_client, "plugin_clean")

        def test_writes_and_drops(milvusdiff_client):
            write(milvusdiff_client, "plugin_gone")
            milvusdiff_client.drop_collection("plugin_gone")
    """
    done = _run_suite(tmp_path, stores_env, body, "--milvusdiff-validate", "--milvusdiff-out", str(tmp_path / "v"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plugin_clean: no differences (20 rows)" in done.stdout
    assert "plugin_gone: dropped during the session, not validated" in done.stdout
    assert (tmp_path / "v" / "session" / "plugin_clean" / "summary.json").exists()


def test_plugin_fails_the_session_naming_key_and_wrong_store(tmp_path: Path, stores_env: dict[str, str]) -> None:
    body = """
        from suite_helpers import behind_the_back, write

        def test_writes(milvusdiff_client):
            write(milvusdiff_client, "plugin_bad")
            behind_the_back(milvusdiff_client, "plugin_bad", 3)
    """
    done = _run_suite(tmp_path, stores_env, body, "--milvusdiff-validate")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout  # the test itself passed; the proof failed the session
    line = next(x for x in done.stdout.splitlines() if x.startswith("milvusdiff: plugin_bad:"))
    assert "changed 1" in line and "milvus wrong" in line and "3 (changed" in line
    assert "report:" in line


def test_plugin_marker_fails_only_the_test_that_broke_it(tmp_path: Path, stores_env: dict[str, str]) -> None:
    body = """
        import pytest
        from suite_helpers import behind_the_back, write

        @pytest.mark.milvusdiff_validate
        def test_good(milvusdiff_client):
            write(milvusdiff_client, "marked_good")

        @pytest.mark.milvusdiff_validate
        def test_bad(milvusdiff_client):
            write(milvusdiff_client, "marked_bad")
            behind_the_back(milvusdiff_client, "marked_bad", 5)
    """
    done = _run_suite(tmp_path, stores_env, body)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    assert "FAILED test_suite.py::test_bad" in done.stdout
    assert "marked_bad: changed 1" in done.stdout and "milvus wrong" in done.stdout


def test_plugin_leaves_a_suite_that_never_asks_untouched(tmp_path: Path, stores_env: dict[str, str]) -> None:
    body = """
        def test_plain():
            assert 1 + 1 == 2
    """
    done = _run_suite(tmp_path, stores_env, body)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "milvusdiff" not in done.stdout
    assert not (tmp_path / "journal").exists()  # nothing was opened
    assert not (tmp_path / "home").exists()


def test_readme_plugin_example_runs_as_documented(tmp_path: Path, stores_env: dict[str, str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    example = next(b for b in readme.split("```python\n")[1:] if b.startswith("# test_catalogue.py"))
    done = _run_suite(tmp_path, stores_env, example.split("```")[0], "--milvusdiff-validate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert "milvusdiff: catalogue: no differences (48 rows)" in done.stdout


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, one process per command, on the test's stores."""
    return subprocess.run([MILVUSDIFF, *args], env=_env(settings) | env, capture_output=True, text=True)


def _three_collections(settings: Settings) -> None:
    """Three small collections written through a ShadowClient (a shape every Milvus, Lite or 2.3 server,
    accepts); closing the client frees a Lite database for the CLI processes that follow."""
    client = ShadowClient.from_settings(settings)
    try:
        for name in ("all_a", "all_b", "all_c"):
            create_small_collection(client, name)
            client.insert(name, [{"id": i, "title": f"t{i}", "emb": [float(i)] * 4} for i in range(30)])
    finally:
        client.close()


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MILVUS_URI=settings.milvus_uri,
        PG_CONN=settings.pg_conn or "",
        MILVUSDIFF_JOURNAL=str(settings.journal_path),
        MILVUSDIFF_HOME=str(settings.home),
    )
    return env


def test_validate_all_exit_code_index_and_junit(settings: Settings, tmp_path: Path) -> None:
    _three_collections(settings)
    assert (
        _cli(
            settings, "corrupt", "--collection", "all_b", "--store", "milvus", "--kind", "update", "--count", "2"
        ).returncode
        == 0
    )
    out, xml_path = tmp_path / "nightly", tmp_path / "reports" / "milvusdiff.xml"
    done = subprocess.run(
        [MILVUSDIFF, "validate", "--all", "--out", str(out), "--junit-xml", str(xml_path)],
        env=_env(settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert [line.split("]")[0] for line in done.stderr.splitlines() if line.startswith("[")] == ["[1/3", "[2/3", "[3/3"]

    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert index["exit_code"] == 1
    assert {c["collection"]: c["exit_code"] for c in index["collections"]} == {"all_a": 0, "all_b": 1, "all_c": 0}
    for name in ("all_a", "all_b", "all_c"):
        assert (out / name / "summary.json").exists()
    assert "| all_b | DIFFER" in (out / "index.md").read_text(encoding="utf-8")

    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert (
        suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "0"
    )
    outcomes = {case.get("name"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert outcomes == {"all_a": [], "all_b": ["failure"], "all_c": []}
    failure = suite.find("testcase[@name='all_b']/failure")
    assert failure is not None
    assert "changed 2" in failure.get("message", "") and "milvus wrong" in failure.get("message", "")


def test_validate_junit_error_case_for_trouble_and_step_summary(settings: Settings, tmp_path: Path) -> None:
    _three_collections(settings)
    xml_path, step = tmp_path / "j.xml", tmp_path / "step.md"
    env = _env(settings) | {"GITHUB_STEP_SUMMARY": str(step)}
    missing = subprocess.run(
        [MILVUSDIFF, "validate", "--collection", "no_such", "--junit-xml", str(xml_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    case = ET.parse(xml_path).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == "no_such" and case[0].tag == "error"

    clean = subprocess.run(
        [MILVUSDIFF, "validate", "--collection", "all_a", "--out", str(tmp_path / "run"), "--junit-xml", str(xml_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert ET.parse(xml_path).getroot().find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    summary_md = step.read_text(encoding="utf-8")
    assert summary_md.count("no_such") >= 1  # the error went to the job summary too
    assert (tmp_path / "run" / "report.md").read_text(encoding="utf-8").strip() in summary_md


def test_compare_junit_and_step_summary(settings: Settings, tmp_path: Path) -> None:
    _three_collections(settings)
    assert _cli(settings, "corrupt", "--collection", "all_c", "--store", "pg", "--kind", "delete").returncode == 0
    run = tmp_path / "run"
    env = _env(settings)
    first = subprocess.run([MILVUSDIFF, "validate", "--collection", "all_c", "--out", str(run)], env=env)
    assert first.returncode == 1
    xml_path, step = tmp_path / "c.xml", tmp_path / "step.md"
    done = subprocess.run(
        [
            MILVUSDIFF,
            "compare",
            str(run / "snapshots" / "milvus"),
            str(run / "snapshots" / "pg"),
            "--out",
            str(tmp_path / "cmp"),
            "--junit-xml",
            str(xml_path),
        ],
        env=env | {"GITHUB_STEP_SUMMARY": str(step)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    failure = ET.parse(xml_path).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "only_a 1" in failure.get("message", "")
    assert (
        step.read_text(encoding="utf-8").strip() == (tmp_path / "cmp" / "report.md").read_text(encoding="utf-8").strip()
    )
