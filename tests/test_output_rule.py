"""Outputs never destroy anything milvusdiff did not make (milvusdiff.destination, the one rule).

Every command that writes `--out` refuses an existing non-empty path unless `--overwrite`, and
`--overwrite` replaces only an earlier milvusdiff output of the same kind: never an input of the same
command, never a store (LMDB journal, Milvus Lite database, embedded PostgreSQL data directory), never
a user's directory. Work entries left by killed runs are removed by the next run; a live run's are not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_compare_truth import build_tables
from test_snapshot_verify import export_table

from milvusdiff.cli.main import main
from milvusdiff.destination import MARKER_NAME
from milvusdiff.services.journal import Journal


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def refused(code: int, err: str, *phrases: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("milvusdiff: ") and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` with its content: what must come through a refusal untouched."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    """snap/milvus and snap/pg (two real snapshots) and an unrelated file of the user's."""
    a, b, _ = build_tables()
    export_table(a, tmp_path / "snap" / "milvus")
    export_table(b, tmp_path / "snap" / "pg", "pg")
    (tmp_path / "snap" / "notes.txt").write_text("the user's own file")
    return tmp_path / "snap"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize(
    ("out", "phrase"),
    [
        ("{snap}", "contains the input"),
        ("{snap}/milvus", "is the input"),
        ("{snap}/pg/diff", "is inside the input"),
    ],
)
def test_compare_never_writes_over_its_inputs(
    snap: Path, capsys: pytest.CaptureFixture[str], out: str, phrase: str, overwrite: list[str]
) -> None:
    before = tree(snap)
    argv = ["compare", str(snap / "milvus"), str(snap / "pg"), "--out", out.format(snap=snap), *overwrite]
    refused(*run(argv, capsys)[::2], phrase)
    assert tree(snap) == before


def test_compare_never_replaces_an_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _ = build_tables()
    one = export_table(a, tmp_path / "a.parquet")
    other = export_table(b, tmp_path / "b.parquet")
    before = one.read_bytes()
    refused(*run(["compare", str(one), str(other), "--out", str(one), "--overwrite"], capsys)[::2], "is the input")
    assert one.is_file() and one.read_bytes() == before


def test_overwrite_replaces_only_an_earlier_output_of_the_same_kind(
    snap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = str(snap / "milvus"), str(snap / "pg")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text("{}")  # looks like an output, but milvusdiff did not make it
    refused(*run(["compare", a, b, "--out", str(mine), "--overwrite"], capsys)[::2], "not an output of milvusdiff")
    assert tree(mine) == {"summary.json": b"{}"}

    diff = tmp_path / "diff"
    assert run(["compare", a, b, "--out", str(diff)], capsys)[0] == 1
    assert json.loads((diff / MARKER_NAME).read_text())["kind"] == "compare"
    refused(*run(["compare", a, b, "--out", str(diff)], capsys)[::2], "pass --overwrite")
    assert run(["compare", a, b, "--out", str(diff), "--overwrite"], capsys)[0] == 1

    # a compare output is not a snapshot: export --overwrite refuses it before any store is touched
    before = tree(diff)
    argv = ["export", "-c", "docs", "--out", str(diff), "--overwrite", "--milvus-uri", str(tmp_path / "none.db")]
    refused(*run(argv, capsys)[::2], "a milvusdiff compare output, not a snapshot output")
    # nor is a snapshot an output of compare
    refused(*run(["compare", a, b, "--out", a.replace("milvus", "pg"), "--overwrite"], capsys)[::2], "input")
    assert tree(diff) == before


def test_an_empty_directory_is_used_without_overwrite(snap: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert run(["compare", str(snap / "milvus"), str(snap / "pg"), "--out", str(tmp_path / "empty")], capsys)[0] == 1
    assert (tmp_path / "empty" / "summary.json").is_file()


def _journal(tmp_path: Path) -> Path:
    path = tmp_path / "j"
    with Journal(path):
        pass
    return path


def _milvus_lite(tmp_path: Path) -> Path:
    from pymilvus import MilvusClient

    path = tmp_path / "m.db"
    MilvusClient(str(path)).close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))
    return path


def _user_directory(tmp_path: Path) -> Path:
    path = tmp_path / "mine"
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    return path


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (_journal, "an LMDB database"),
        (_milvus_lite, "a Milvus Lite database"),
        (_user_directory, "not an output of milvusdiff"),
    ],
)
def test_export_overwrite_never_deletes_a_store_or_a_users_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], phrase: str
) -> None:
    target = make(tmp_path)
    before = tree(target)
    argv = ["export", "-c", "docs", "--out", str(target), "--overwrite", "--journal", str(tmp_path / "other")]
    refused(*run([*argv, "--milvus-uri", str(tmp_path / "none.db")], capsys)[::2], phrase)
    assert tree(target) == before


def test_the_embedded_postgresql_data_directory_is_never_an_output(
    make_pg_home: Callable[[], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from milvusdiff.services.embedded_pg import ensure_embedded_pg, stop_embedded_pg

    home = make_pg_home()
    ensure_embedded_pg(home / "pg")
    try:
        before = sorted(p.name for p in (home / "pg").iterdir())
        env = {"MILVUSDIFF_HOME": str(home)}
        old = {k: os.environ.get(k) for k in (*env, "PG_CONN")}
        os.environ.update(env)
        os.environ.pop("PG_CONN", None)
        try:
            argv = ["export", "-c", "docs", "--source", "pg", "--overwrite", "--milvus-uri", str(tmp_path / "x.db")]
            refused(*run([*argv, "--out", str(home / "pg")], capsys)[::2], "PostgreSQL data directory")
            refused(*run([*argv, "--out", str(home)], capsys)[::2], "contains the embedded PostgreSQL data directory")
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        assert sorted(p.name for p in (home / "pg").iterdir()) == before
    finally:
        stop_embedded_pg(home / "pg")


_HOLD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from milvusdiff.destination import WorkEntry
    entry = WorkEntry(Path(sys.argv[1]), sys.argv[2], directory=True)
    (entry.path / "work").write_text("in progress")
    print("ready", flush=True)
    if sys.argv[3] == "die":
        os.kill(os.getpid(), 9)  # killed mid-run, as a user's Ctrl-\\ or the OOM killer would
    sys.stdin.read()
    """
)


def _hold(parent: Path, name: str, how: str) -> subprocess.Popen[str]:
    peer = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(parent), name, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdout is not None and peer.stdout.readline() == "ready\n"
    return peer


def test_stale_work_entries_are_removed_and_live_ones_kept(
    snap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    killed = [_hold(outputs, name, "die") for name in (".diff.partial-11-0badc0de", ".x.scratch-12-0badc0de")]
    for peer in killed:
        assert peer.wait() == -signal.SIGKILL
    legacy = outputs / ".milvusdiff-compare-k3j2h1"  # what earlier releases left
    legacy.mkdir()
    live = _hold(outputs, ".other.partial-13-0badc0de", "wait")
    try:
        assert run(["compare", str(snap / "milvus"), str(snap / "pg"), "--out", str(outputs / "diff")], capsys)[0] == 1
        assert sorted(p.name for p in outputs.iterdir()) == [".other.partial-13-0badc0de", "diff"]
        assert (outputs / ".other.partial-13-0badc0de" / "work").read_text() == "in progress"
    finally:
        assert live.stdin is not None
        live.stdin.close()
        live.wait()


def test_a_killed_compare_leaves_nothing_after_the_next_run(
    snap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real compare, killed while it writes: its hidden entries go with the next run in that directory."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    script = textwrap.dedent(
        """
        import importlib, os, sys
        def killed(*args, **kwargs):
            os.kill(os.getpid(), 9)
        importlib.import_module("milvusdiff.compare.api").finish_to_parquet = killed
        from milvusdiff.cli.main import main
        main(sys.argv[1:])
        """
    )
    argv = ["compare", str(snap / "milvus"), str(snap / "pg"), "--out", str(outputs / "diff")]
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = sorted(p.name for p in outputs.iterdir())
    assert left and all(name.startswith(".diff.") for name in left)
    assert run(argv, capsys)[0] == 1
    assert sorted(p.name for p in outputs.iterdir()) == ["diff"]


def test_map_to_a_missing_column_is_trouble_not_a_difference(snap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(snap / "milvus"), str(snap / "pg")
    refused(*run(["compare", a, b, "--map", "title=nope"], capsys)[::2], "--map title=nope: no column 'nope' in B")
    refused(*run(["compare", a, b, "--map", "nope=title"], capsys)[::2], "no column 'nope' in A")


@pytest.mark.parametrize("threads", ["-3", "0"])
def test_bad_threads_is_one_line(snap: Path, capsys: pytest.CaptureFixture[str], threads: str) -> None:
    code, _, err = run(["compare", str(snap / "milvus"), str(snap / "pg"), "--threads", threads], capsys)
    assert code == 2 and "--threads" in err and "Traceback" not in err


def test_an_unexpected_error_exits_two_also_with_debug(
    snap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Duplicate column names crashed compare with a KeyError that exited 1, the code for "differences"."""
    table = pq.read_table(sorted((snap / "milvus").glob("part-*.parquet")))
    twice = table.select(["id", "i32"]).append_column("i32", table.column("i32"))
    pq.write_table(twice, tmp_path / "twice.parquet")
    argv = ["compare", str(tmp_path / "twice.parquet"), str(tmp_path / "twice.parquet"), "--key", "id"]
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    code, _, err = run([*argv, "--debug"], capsys)
    assert code == 2 and "Traceback" in err


def test_quiet_prints_nothing_but_the_exit_code_tells(snap: Path, tmp_path: Path, capsys) -> None:
    a, b = str(snap / "milvus"), str(snap / "pg")
    assert run(["compare", a, b, "--quiet"], capsys) == (1, "", "")
    assert run(["compare", a, a, "--quiet", "--out", str(tmp_path / "d")], capsys)[:2] == (1, "")
    code, out, err = run(["compare", a, str(tmp_path / "missing"), "--quiet"], capsys)
    assert (code, out) == (2, "") and "does not exist" in err


def test_every_command_that_writes_out_refuses_a_users_directory(tmp_path: Path, capsys) -> None:
    """The rule is checked before any store is read, so no collection is needed to see it."""
    mine = _user_directory(tmp_path)
    before = tree(mine)
    lite = ["--milvus-uri", str(tmp_path / "none.db"), "--journal", str(tmp_path / "j")]
    commands = [
        ["validate", "--collection", "docs"],
        ["query-check", "--collection", "docs", "--filter", "id > 0"],
        ["search-check", "--collection", "docs"],
        ["demo", "--collection", "docs"],
        ["export", "-c", "docs"],
    ]
    for command in commands:
        for extra in ([], ["--overwrite"]):
            refused(*run([*command, *lite, "--out", str(mine), *extra], capsys)[::2], str(mine))
    assert tree(mine) == before
    shutil.rmtree(mine)
