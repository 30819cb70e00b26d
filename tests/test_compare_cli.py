"""`milvusdiff compare`: exit codes as diff(1), files written atomically, one line on stderr for trouble."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_compare_truth import Truth, build_tables, make_pair, write_snapshot

from milvusdiff.cli.main import main

OUTPUTS = {"summary.json", "diff.parquet", "report.md", "report.html", ".milvusdiff-output.json"}  # + the marker


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Truth]:
    return make_pair(tmp_path_factory.mktemp("cli"))


def test_differences_exit_one_and_write_every_output(
    pair: tuple[Path, Path, Truth], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, truth = pair
    code, out, _ = run(["compare", str(a), str(b), "--out", str(tmp_path / "diff")], capsys)
    assert code == 1
    assert {p.name for p in (tmp_path / "diff").iterdir()} == OUTPUTS
    assert "only_a" in out and "changed" in out
    assert [p.name for p in tmp_path.iterdir()] == ["diff"]  # no temporary directory left behind
    summary = json.loads((tmp_path / "diff" / "summary.json").read_text())
    assert summary["changed"] == truth.count("changed")
    assert pq.read_table(tmp_path / "diff" / "diff.parquet").num_rows == len(truth.classes)


def test_json_format_prints_the_summary(pair: tuple[Path, Path, Truth], capsys: pytest.CaptureFixture[str]) -> None:
    a, b, truth = pair
    code, out, _ = run(["compare", str(a), str(b), "--format", "json", "--engine", "polars"], capsys)
    summary = json.loads(out)
    assert code == 1 and summary["only_b"] == truth.count("only_b") and summary["engine"] == "polars"


def test_same_data_exits_zero_and_replaces_an_old_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _, _ = build_tables()
    same = write_snapshot(a.slice(0, 50), tmp_path / "a", "milvus")
    out = tmp_path / "out"
    assert run(["compare", str(same), str(same), "--out", str(out)], capsys)[0] == 0
    (out / "summary.json").write_text("{}")  # the earlier run, recognisable by its marker and summary
    code, _, err = run(["compare", str(same), str(same), "--out", str(out)], capsys)
    assert code == 2 and "pass --overwrite" in err
    assert run(["compare", str(same), str(same), "--out", str(out), "--overwrite"], capsys)[0] == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert json.loads((out / "summary.json").read_text())["rows_a"] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "out"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.parquet", "{b}"], "input A does not exist"),
        (["{a}", "{b}", "--key", "nope"], "no common key"),
        (["{a}", "{text_key}", "--key", "id"], "key 'id' cannot be compared"),
        (["{a}", "{b}", "--tol", "x"], "--tol expects COL=ATOL[,RTOL]"),
        (["{a}", "{garbage}"], "not readable Parquet"),
        (["{a}", "{b}", "--key", "id", "--columns", "nothing"], "no such column"),
    ],
)
def test_trouble_exits_two_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    paths = {
        "a": tmp_path / "a.parquet",
        "b": tmp_path / "b.parquet",
        "text_key": tmp_path / "t.parquet",
        "garbage": tmp_path / "g.parquet",
    }
    pq.write_table(pa.table({"id": [1, 2], "x": [1.0, 2.0]}), paths["a"])
    pq.write_table(pa.table({"id": [1, 2], "x": [1.0, 2.5]}), paths["b"])
    pq.write_table(pa.table({"id": ["1", "2"], "x": [1.0, 2.0]}), paths["text_key"])
    paths["garbage"].write_bytes(b"not parquet at all")
    argv = ["compare", *(arg.format(**{k: str(v) for k, v in paths.items()}) for arg in args)]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--debug adds the traceback; the exit code stays 2 (trouble), never 1 (differences)."""
    code, _, err = run(["--debug", "compare", str(tmp_path / "a"), str(tmp_path / "b")], capsys)
    assert code == 2
    assert "Traceback" in err and "SnapshotError" in err
    assert err.strip().splitlines()[-1] == f"milvusdiff: input A does not exist: {tmp_path / 'a'}"
