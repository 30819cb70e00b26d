"""`validate` and `compare` print the first --show N differing keys: key, class, what differs, verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_compare_truth import make_pair
from test_notebook import _write_and_corrupt

from milvusdiff.cli.main import main
from milvusdiff.config import Settings


def run(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells at the terminal width
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0), capsys.readouterr().out


def key_lines(out: str) -> list[list[str]]:
    """The rows of the 'Differing keys' table, as lists of cell texts."""
    table = out.split("Differing keys (")[1] if "Differing keys (" in out else ""
    rows = [line for line in table.splitlines() if line.startswith("│")]
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in rows]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a, b, _ = make_pair(tmp_path_factory.mktemp("show"))
    return a, b


def test_compare_prints_the_first_ten_differing_keys_without_out(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code, out = run(["compare", str(pair[0]), str(pair[1]), "--temp-dir", str(scratch)], capsys, monkeypatch)
    assert code == 1
    rows = key_lines(out)
    assert [r[0] for r in rows] == ["10", "11", "12", "13", "14", "20", "21", "22", "23", "24"]
    assert rows[0] == ["10", "only_a", "only in milvus", "no journal"]
    assert rows[5] == ["20", "changed", "title: title 20 → another title", "no journal"]
    assert rows[7][2] == "d: 7.333333333333333 → 1000000000.0"  # 22 / 3, every digit
    assert "… and " in out and " more in diff.parquet" in out
    assert list(scratch.iterdir()) == []  # the diff it read the keys from is gone


def test_show_limits_the_keys_and_zero_prints_none(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = run(["compare", str(pair[0]), str(pair[1]), "--show", "3"], capsys, monkeypatch)
    assert [r[0] for r in key_lines(out)] == ["10", "11", "12"]
    _, out = run(["compare", str(pair[0]), str(pair[1]), "--show", "0"], capsys, monkeypatch)
    assert "Differing keys" not in out


def test_validate_prints_keys_with_verdicts(
    settings: Settings,
    pg_schema: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MILVUSDIFF_PG_SCHEMA", pg_schema)
    _write_and_corrupt(settings, pg_schema)
    assert settings.pg_conn is not None
    monkeypatch.setenv("MILVUS_URI", settings.milvus_uri)
    monkeypatch.setenv("PG_CONN", settings.pg_conn)
    monkeypatch.setenv("MILVUSDIFF_JOURNAL", str(settings.journal_path))
    argv = ["validate", "--collection", "shop", "--out", str(tmp_path / "run")]
    code, out = run(argv, capsys, monkeypatch)
    assert code == 1
    rows = key_lines(out)
    assert [r[0] for r in rows] == ["5", "7", "8"]
    assert rows[0][1] == "changed" and rows[0][2].startswith("emb: [0]: 9.0 → ")  # Milvus (A) holds the tampered vector
    assert rows[0][3] == "milvus wrong"
    assert rows[1] == ["7", "changed", "title: title 7 → tampered", "pg wrong"]
    assert rows[2] == ["8", "only_b", "only in pg", "milvus wrong"]
