"""Bad input, case by case: each gives a correct result, or exit code 2 with one clear line on stderr, no
traceback, and nothing half-written where an output was asked for.

Files are made here with pyarrow; commands run in-process through the CLI entry point
(`milvusdiff.cli.main.main`), except where the environment is the input (unreachable servers), which run
`milvusdiff` in a process of its own so that its real stderr is what is checked.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.schemas import create_small_collection
from psycopg import sql
from pymilvus.exceptions import MilvusException

from milvusdiff.cli.main import main
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.compare.summary import Summary
from milvusdiff.config import Settings
from milvusdiff.errors import FilterConversionError, SchemaError
from milvusdiff.export import export_collection
from milvusdiff.services.journal import Journal
from milvusdiff.workflow.validate import validate

MILVUSDIFF = Path(sys.executable).with_name("milvusdiff")
KEY_META = {b"milvusdiff.key": b'["id"]'}


# -- helpers -----------------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def assert_trouble(code: int, err: str, *phrases: str) -> str:
    """Exit 2, exactly one line on stderr saying what is wrong, and no traceback."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("milvusdiff: "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def assert_nothing_written(parent: Path, before: set[str]) -> None:
    """No output and no temporary entry left behind in `parent`."""
    assert {p.name for p in parent.iterdir()} == before


def write(path: Path, columns: dict[str, pa.Array], key: str = "id") -> Path:
    metadata = {b"milvusdiff.key": json.dumps([key]).encode()}
    pq.write_table(pa.table(columns).replace_schema_metadata(metadata), path)
    return path


def vectors(rows: Sequence[Sequence[float] | None], dim: int = 2) -> pa.Array:
    return pa.array(rows, pa.list_(pa.float32(), dim))


def compare_json(capsys: pytest.CaptureFixture[str], a: Path, b: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(["compare", str(a), str(b), "--format", "json", *extra], capsys)
    assert "Traceback" not in err
    return code, json.loads(out)


def diff_rows(out: Path) -> dict[Any, dict[str, Any]]:
    return {row["id"]: row for row in pq.read_table(out / "diff.parquet").to_pylist()}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good.parquet", {"id": pa.array([1, 2, 3], pa.int64()), "v": vectors([[1, 2]] * 3)})


# -- unreadable inputs: exit 2, one line, nothing written -----------------------------------------


def _truncated(tmp_path: Path, good: Path) -> Path:
    data = good.read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(data[: len(data) // 2])
    return tmp_path / "truncated.parquet"


def _corrupt_pages(tmp_path: Path, good: Path) -> Path:
    """Footer intact, data pages overwritten: the file opens, its data cannot be decoded."""
    data = bytearray(good.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(4, len(data) - footer):
        data[i] = 0xFF
    (tmp_path / "corrupt.parquet").write_bytes(bytes(data))
    return tmp_path / "corrupt.parquet"


def _empty(tmp_path: Path, good: Path) -> Path:
    (tmp_path / "empty.parquet").write_bytes(b"")
    return tmp_path / "empty.parquet"


def _not_parquet(tmp_path: Path, good: Path) -> Path:
    (tmp_path / "rows.parquet").write_text("id,v\n1,2\n", encoding="utf-8")
    return tmp_path / "rows.parquet"


def _empty_directory(tmp_path: Path, good: Path) -> Path:
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "manifest.json").write_text("{}", encoding="utf-8")
    return tmp_path / "snap"


UNREADABLE = {
    "nonexistent file": (lambda tmp, good: tmp / "missing.parquet", "does not exist"),
    "empty file": (_empty, "not readable Parquet"),
    "truncated parquet": (_truncated, "not readable Parquet"),
    "corrupt data pages": (_corrupt_pages, "corrupt.parquet"),
    "not parquet": (_not_parquet, "not readable Parquet"),
    "snapshot directory without parts": (_empty_directory, "no part-*.parquet files"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
@pytest.mark.parametrize("side", ["a", "b"])
def test_unreadable_input_exits_two(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str], case: str, side: str
) -> None:
    make, phrase = UNREADABLE[case]
    bad = make(tmp_path, good)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    inputs = [str(bad), str(good)] if side == "a" else [str(good), str(bad)]
    code, _, err = run(["compare", *inputs, "--out", str(outputs / "diff")], capsys)
    assert_trouble(code, err, phrase)
    assert_nothing_written(outputs, set())


def test_corrupt_data_pages_with_the_polars_engine(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pages are checked before any engine reads them, so both engines refuse alike, naming the file."""
    code, _, err = run(["compare", str(_corrupt_pages(tmp_path, good)), str(good), "--engine", "polars"], capsys)
    assert_trouble(code, err, "corrupt.parquet", "column 'id'")


def test_snapshot_directory_without_manifest_is_read_from_its_parts(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parts carry the key (and spec) in their own metadata: the manifest is evidence, not a requirement."""
    (tmp_path / "snap").mkdir()
    changed = {"id": pa.array([1, 2, 3], pa.int64()), "v": vectors([[1, 2], [1, 2], [9, 9]])}
    write(tmp_path / "snap" / "part-00000.parquet", changed)
    code, summary = compare_json(capsys, tmp_path / "snap", good)
    assert code == 1 and summary["changed"] == 1 and summary["unchanged"] == 2


# -- inputs that cannot be compared: exit 2 ---------------------------------------------------------


def test_key_column_missing(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_key = tmp_path / "no_key.parquet"
    pq.write_table(pa.table({"pk": pa.array([1], pa.int64())}), no_key)
    code, _, err = run(["compare", str(good), str(no_key), "--key", "id"], capsys)
    assert_trouble(code, err, "no common key", "'id'")
    code, _, err = run(["compare", str(no_key), str(no_key)], capsys)  # no key named anywhere
    assert_trouble(code, err, "--key")


def test_key_types_that_differ_are_never_compared(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'42' and 42 are different keys: an INT64 side and a VARCHAR side are refused, not coerced."""
    as_text = write(tmp_path / "text.parquet", {"id": pa.array(["1", "2", "3"]), "v": vectors([[1, 2]] * 3)})
    code, _, err = run(["compare", str(good), str(as_text)], capsys)
    assert_trouble(code, err, "key 'id' cannot be compared", "int64", "string")


def test_vector_dimensions_that_differ(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wider = write(tmp_path / "wide.parquet", {"id": pa.array([1, 2, 3], pa.int64()), "v": vectors([[1, 2, 0]] * 3, 3)})
    code, _, err = run(["compare", str(good), str(wider), "--out", str(tmp_path / "diff")], capsys)
    assert_trouble(code, err, "'v'", "dimension", "2", "3")
    assert not (tmp_path / "diff").exists()


# -- inputs with a correct answer -------------------------------------------------------------------


def test_duplicate_keys_are_counted_not_collapsed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.parquet", {"id": pa.array([1, 2, 2, 3, 3, 3], pa.int64()), "x": pa.array([0] * 6)})
    b = write(tmp_path / "b.parquet", {"id": pa.array([1, 2, 3, 4, 4], pa.int64()), "x": pa.array([0] * 5)})
    code, summary = compare_json(capsys, a, b, "--out", str(tmp_path / "diff"))
    assert code == 1
    assert (summary["duplicate_a"], summary["duplicate_b"]) == (2, 1)
    assert (summary["rows_a"], summary["rows_b"]) == (6, 5)
    classes = {k: row["class"] for k, row in diff_rows(tmp_path / "diff").items()}
    assert classes == {2: "duplicate_a", 3: "duplicate_a", 4: "duplicate_b"}


def test_nan_inf_and_null_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nan, inf = math.nan, math.inf
    a_rows = [[nan, 1], [inf, -inf], None, [1, 2], None, [nan, 0], [0, 0]]
    b_rows = [[nan, 1], [inf, -inf], None, None, [1, 2], [1, 0], [0, inf]]
    keys = pa.array(range(len(a_rows)), pa.int64())
    a = write(tmp_path / "a.parquet", {"id": keys, "v": vectors(a_rows)})
    b = write(tmp_path / "b.parquet", {"id": keys, "v": vectors(b_rows)})
    for engine in ("duckdb", "polars"):
        out = tmp_path / f"diff-{engine}"
        code, summary = compare_json(capsys, a, b, "--engine", engine, "--out", str(out))
        assert code == 1 and summary["unchanged"] == 3  # NaN = NaN, inf = inf, null = null
        assert sorted(diff_rows(out)) == [3, 4, 5, 6]  # null vs value, value vs null, NaN vs value, 0 vs inf
        code, summary = compare_json(capsys, a, b, "--engine", engine, "--atol", "1e30")
        assert summary["changed"] == 4  # no tolerance makes a null, a NaN or an inf equal to a number


def test_very_long_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 2_000_000
    keys = pa.array([1, 2, 3], pa.int64())
    a = write(tmp_path / "a.parquet", {"id": keys, "s": pa.array([long, long, "short"])})
    b = write(tmp_path / "b.parquet", {"id": keys, "s": pa.array([long, long[:-1] + "y", "short"])})
    code, summary = compare_json(capsys, a, b, "--out", str(tmp_path / "diff"))
    assert code == 1 and summary["changed"] == 1 and summary["unchanged"] == 2
    row = diff_rows(tmp_path / "diff")[2]
    assert len(row["s__a"]) == len(row["s__b"]) == 2_000_000


def test_unicode_keys_and_text_keys_that_look_like_integers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = ["42", "042", "42.0", " 42", "٤٢", "4\u200b2", "é", "e\u0301", "🙂", "ß", "SS", "ss", ""]
    a = write(tmp_path / "a.parquet", {"id": pa.array(keys), "n": pa.array(range(len(keys)))})
    kept = [k for k in keys if k not in ("042", "e\u0301")]
    b = write(tmp_path / "b.parquet", {"id": pa.array(kept), "n": pa.array([keys.index(k) for k in kept])})
    code, summary = compare_json(capsys, a, b, "--out", str(tmp_path / "diff"))
    assert code == 1 and summary["unchanged"] == len(kept)
    assert {k: r["class"] for k, r in diff_rows(tmp_path / "diff").items()} == {"042": "only_a", "e\u0301": "only_a"}


# -- the LMDB map filling up ----------------------------------------------------------------------


def test_lmdb_map_grows_when_full(tmp_path: Path) -> None:
    """A tiny map fills at once; writers (several threads at a time) grow it and retry, and nothing is lost."""
    path = tmp_path / "journal"
    journal = Journal(path, map_size=64 << 10)
    keys_per_write, writes_per_thread, threads = 2000, 5, 4

    def writer(thread: int) -> None:
        for w in range(writes_per_thread):
            first = (thread * writes_per_thread + w) * keys_per_write
            keys = list(range(first, first + keys_per_write))
            seq = journal.begin("c", "insert", keys, [k.to_bytes(16, "big") for k in keys])
            journal.commit(seq)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    grown = journal._env.info()["map_size"]
    journal.close()
    assert grown > 64 << 10
    total = keys_per_write * writes_per_thread * threads
    with Journal(path) as reopened:  # a later open with the default (smaller) size keeps everything
        states = reopened.states("c", range(total))
        assert len(states) == total and {s.state for s in states.values()} == {"EXISTS"}
        assert states[total - 1].digest == (total - 1).to_bytes(16, "big")
        assert sum(1 for op in reopened.iter_ops("c") if op["status"] == "committed") == writes_per_thread * threads


GROW_IN_A_CHILD = """
import sys
from milvusdiff.services.journal import Journal

with Journal(sys.argv[1], map_size=64 << 10) as journal:
    for w in range(4):
        keys = list(range(w * 5000, (w + 1) * 5000))
        journal.commit(journal.begin("c", "insert", keys, [bytes(16)] * len(keys)))
    print(journal._env.info()["map_size"])
"""


def test_lmdb_map_grown_by_another_process(tmp_path: Path) -> None:
    """Another process grows the map while this one holds the journal open: this one adopts the new size."""
    path = tmp_path / "journal"
    with Journal(path, map_size=64 << 10) as journal:
        journal.commit(journal.begin("c", "insert", [-1], [bytes(16)]))
        child = subprocess.run(
            [sys.executable, "-c", GROW_IN_A_CHILD, str(path)], capture_output=True, text=True, timeout=60
        )
        assert child.returncode == 0, child.stderr
        assert int(child.stdout) > 64 << 10
        assert len(journal.states("c", range(-1, 20000))) == 20001
        journal.commit(journal.begin("c", "upsert", [-1], [bytes(16)]))
        assert journal.states("c", [-1])[-1].last_op == "upsert"


# -- outputs that cannot be written: exit 2, nothing half-written ------------------------------------


@pytest.mark.parametrize(
    ("command", "where"),
    [
        ("compare", "under a file"),
        ("compare", "in /proc"),
        ("validate", "under a file"),
        ("validate", "in /proc"),
        ("export", "under a file"),  # export refuses it before opening any store
    ],
)
def test_unwritable_output(
    tmp_path: Path,
    good: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    command: str,
) -> None:
    """Run as root, so a read-only directory is simulated by a parent that is a regular file, or by /proc."""
    monkeypatch.setenv("MILVUSDIFF_HOME", str(tmp_path / "home"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    out = blocker / "out" if where == "under a file" else Path("/proc") / f"milvusdiff-{os.getpid()}"
    argv = {
        "compare": ["compare", str(good), str(good), "--out", str(out)],
        "validate": ["validate", "--collection", "c", "--out", str(out)],
        "export": ["export", "-c", "c", "--out", str(out)],
    }[command]
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run(argv, capsys)
    assert_trouble(code, err, "a-file is a file" if where == "under a file" else "/proc")
    assert_nothing_written(tmp_path, before)
    assert not out.exists()


# -- unreachable servers: exit 2, one line, quickly --------------------------------------------------


def cli_process(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [str(MILVUSDIFF), *args], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("store", "args"),
    [
        ("milvus", ["validate", "--collection", "c", "--out", "run"]),
        ("milvus", ["export", "-c", "c", "--out", "run"]),
        ("milvus", ["repair", "--collection", "c", "--from", "pg"]),
        ("pg", ["export", "-c", "c", "--source", "pg", "--out", "run"]),
        ("pg", ["repair", "--collection", "c", "--from", "pg"]),
    ],
)
def test_unreachable_server(tmp_path: Path, store: str, args: list[str]) -> None:
    env = {"MILVUSDIFF_HOME": str(tmp_path / "home"), "MILVUSDIFF_JOURNAL": str(tmp_path / "journal")}
    if store == "milvus":
        env |= {"MILVUS_URI": "http://127.0.0.1:1", "PG_CONN": "postgresql://postgres@127.0.0.1:1/x"}
        phrase = "cannot reach Milvus at http://127.0.0.1:1"
    else:
        env |= {"MILVUS_URI": str(tmp_path / "lite" / "milvus.db"), "PG_CONN": "postgresql://postgres@127.0.0.1:1/x"}
        phrase = "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1/x"
    code, err = cli_process(args, env, tmp_path)
    assert_trouble(code, err, phrase)
    assert not (tmp_path / "run").exists()


# -- through the ShadowClient: names, keys and filters ----------------------------------------------


def rows(keys: list[Any], *, key: str = "id", text: str = "title") -> list[dict[str, Any]]:
    return [{key: k, text: f"row {k}", "emb": [float(i), 1.0, 0.0, 0.0]} for i, k in enumerate(keys)]


def assert_validates_clean(settings: Settings, collection: str, out: Path) -> Summary:
    result = validate(collection, out=out, settings=settings)
    assert result.exit_code == 0, result.summary
    return result.summary


def shadow_tables(pg_conn: str, schema: str) -> set[str]:
    with psycopg.connect(pg_conn) as conn:
        found = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
        return {row[0] for row in found.fetchall()}


def test_journal_of_another_collection_is_refused(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Arbitrating with another collection's journal would make every verdict `unknown` (or, where keys
    coincide, wrong): compare and validate refuse it, whether or not the stores differ."""
    client = ShadowClient.from_settings(settings)
    create_small_collection(client, "docs")
    client.insert("docs", rows([1, 2, 3]))
    client.close()
    other = Settings(**{**settings.__dict__, "journal_path": tmp_path / "other-journal"})
    client = ShadowClient.from_settings(other)
    create_small_collection(client, "other")
    client.insert("other", rows([1, 2, 3]))
    client.close()
    export_collection("docs", source="all", out=tmp_path / "snap", settings=settings)
    export_collection("other", source="journal", out=tmp_path / "other-snap", settings=other)
    sides = [str(tmp_path / "snap" / "milvus"), str(tmp_path / "snap" / "pg")]

    code, _, _ = run(["compare", *sides, "--journal", str(tmp_path / "snap" / "journal")], capsys)
    assert code == 0  # the right journal
    code, _, err = run(
        ["compare", *sides, "--journal", str(tmp_path / "other-snap"), "--out", str(tmp_path / "d")], capsys
    )
    assert_trouble(code, err, "records collection 'other', not 'docs'")
    code, _, err = run(["compare", *sides, "--journal", str(other.journal_path)], capsys)
    assert_trouble(code, err, "has no collection 'docs'", "'other'")
    assert not (tmp_path / "d").exists()

    args = ["validate", "--collection", "docs", "--out", str(tmp_path / "v"), "--journal", str(other.journal_path)]
    args += ["--milvus-uri", settings.milvus_uri, "--pg-conn", str(settings.pg_conn)]
    code, _, err = run(args, capsys)
    assert_trouble(code, err, "no collection 'docs'")
    assert not (tmp_path / "v").exists()


def test_text_keys_that_look_like_integers_and_unicode_keys(settings: Settings, tmp_path: Path) -> None:
    """VARCHAR keys are text end to end: '42', '042', '42.0' and the Arabic-Indic '٤٢' are four keys, and none
    of them is the integer 42, in Milvus, in PostgreSQL, in the journal and in the comparison."""
    keys = ["42", "042", "42.0", " 42", "٤٢", "é", "e\u0301", "🙂", "a'b", 'a"b', "x; DROP TABLE t; --"]
    client = ShadowClient.from_settings(settings)
    create_small_collection(client, "texts", key="pk", varchar_key=True)
    client.insert("texts", rows(keys, key="pk"))
    client.delete("texts", filter='pk in ["042", "e\u0301"]')  # "e" + combining acute; "é" stays
    assert set(client.journal.states("texts", keys)) == set(keys) and client.journal.states("texts", [42]) == {}
    assert client.journal.states("texts", ["042"])["042"].state == "DELETED"
    client.close()
    assert settings.pg_conn is not None
    with psycopg.connect(settings.pg_conn, autocommit=True) as conn:  # one row changed behind the client's back
        table = sql.Identifier(os.environ["MILVUSDIFF_PG_SCHEMA"], "texts")
        conn.execute(sql.SQL("UPDATE {} SET title = 'tampered' WHERE pk = %s").format(table), ("42",))
    result = validate("texts", out=tmp_path / "v", settings=settings)
    found = {row["pk"]: row["verdict"] for row in pq.read_table(result.out / "diff.parquet").to_pylist()}
    assert found == {"42": "b_wrong"}  # exactly '42': not '042', '42.0', ' 42' or '٤٢'
    assert result.summary.rows_a == result.summary.rows_b == len(keys) - 2


ODD_NAMES = {
    "sql keywords": ("select", "from", "where"),
    "quotes and semicolons": ('a"b; DROP TABLE x; --', "id", "c'd; --"),
    "a bobby table": ('Robert\'); DROP TABLE "_collections";--', "order", "group"),
}


@pytest.mark.parametrize("case", sorted(ODD_NAMES))
def test_collection_and_field_names_reach_postgresql_quoted(settings: Settings, tmp_path: Path, case: str) -> None:
    """Milvus decides which names exist (Milvus Lite accepts quotes, semicolons and spaces; a server accepts
    letters, digits and underscores): whatever it accepts is mirrored under exactly that name, quoted."""
    collection, key, text = ODD_NAMES[case]
    assert settings.pg_conn is not None
    schema = os.environ["MILVUSDIFF_PG_SCHEMA"]
    client = ShadowClient.from_settings(settings)
    try:
        create_small_collection(client, collection, key=key, text=text)
    except MilvusException:  # refused by Milvus: nothing of it reached PostgreSQL or the journal
        assert collection not in shadow_tables(settings.pg_conn, schema)
        assert client.journal.collection_spec(collection) is None
        client.close()
        return
    client.insert(collection, rows([1, 2, 3], key=key, text=text))
    client.delete(collection, ids=[2])
    client.close()
    assert collection in shadow_tables(settings.pg_conn, schema)
    assert {"$collections", collection} <= shadow_tables(settings.pg_conn, schema)
    summary = assert_validates_clean(settings, collection, tmp_path / "v")
    assert summary.rows_a == summary.rows_b == 2


def test_names_postgresql_would_truncate_are_refused_before_milvus(settings: Settings) -> None:
    client = ShadowClient.from_settings(settings)
    try:
        with pytest.raises(SchemaError, match="63-byte"):
            create_small_collection(client, "c" * 64)
        with pytest.raises(SchemaError, match="63-byte"):
            create_small_collection(client, "fine", text="é" * 32)  # 32 characters, 64 bytes
        assert not client.has_collection("c" * 64) and not client.has_collection("fine")
        create_small_collection(client, "c" * 63, text="f" * 63)  # exactly 63 bytes each: accepted
    finally:
        client.close()


def test_a_shadow_schema_name_with_quotes_and_semicolons(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = 'odd"; DROP SCHEMA public CASCADE; --'
    monkeypatch.setenv("MILVUSDIFF_PG_SCHEMA", odd)
    assert settings.pg_conn is not None
    try:
        client = ShadowClient.from_settings(settings)
        create_small_collection(client, "docs")
        client.insert("docs", rows([1, 2]))
        client.close()
        assert shadow_tables(settings.pg_conn, odd) == {"$collections", "docs"}
        assert "public" in {r[0] for r in _pg(settings.pg_conn, "SELECT nspname FROM pg_namespace")}
        assert_validates_clean(settings, "docs", tmp_path / "v")
    finally:
        with psycopg.connect(settings.pg_conn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(odd)))


def _pg(conninfo: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query, params).fetchall()


SNEAKY = "'); DROP TABLE inj; --"


def test_filters_with_injection_attempts(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A delete filter is Milvus' to parse: whatever it matches is deleted by key everywhere, and no part of
    a filter ever becomes SQL text (the filters package passes every literal as a parameter)."""
    assert settings.pg_conn is not None
    client = ShadowClient.from_settings(settings)
    create_small_collection(client, "inj")
    client.insert("inj", [*rows([1, 2, 3]), {"id": 4, "title": SNEAKY, "emb": [0.0, 0.0, 0.0, 0.0]}])
    ops_before = list(client.journal.iter_ops("inj"))

    with pytest.raises(MilvusException):  # not a filter: Milvus refuses it before anything is journaled
        client.delete("inj", filter="id in [1]; DROP TABLE inj")
    # quote-breaking attempts are string literals to Milvus and match nothing
    assert client.delete("inj", filter='title == "x\\" or id > 0 or \\""')["delete_count"] == 0
    assert client.delete("inj", filter='title == "\\"; DELETE FROM inj; --"')["delete_count"] == 0
    assert list(client.journal.iter_ops("inj")) == ops_before
    # a row whose text is SQL is deleted, exactly it, by a filter quoting that text
    client.delete("inj", filter=f'title == "{SNEAKY}"')
    deletes = [op for op in client.journal.iter_ops("inj") if op["op"] == "delete"]
    assert [(op["keys_sample"], op["status"]) for op in deletes] == [([4], "committed")]
    client.close()
    summary = assert_validates_clean(settings, "inj", tmp_path / "v")
    assert summary.rows_a == summary.rows_b == 3

    from milvusdiff.filters import to_postgres

    table = sql.Identifier(os.environ["MILVUSDIFF_PG_SCHEMA"], "inj")
    columns = {"id": "INT64", "title": "VARCHAR"}
    for expr, expected in ((f'title == "{SNEAKY}"', []), ('title == "row 1" or id == 3', [1, 3])):
        where, params = to_postgres(expr, columns)
        with psycopg.connect(settings.pg_conn) as conn:
            query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id").format(table, where)
            assert "DROP" not in query.as_string(conn)
            assert [r[0] for r in conn.execute(query, params).fetchall()] == expected
    with pytest.raises(FilterConversionError):
        to_postgres("id in [1]; DROP TABLE inj", columns)

    connection = [
        "--milvus-uri",
        settings.milvus_uri,
        "--pg-conn",
        settings.pg_conn,
        "--journal",
        str(settings.journal_path),
    ]
    code, _, err = run(["query-check", "--collection", "inj", "--filter", f'title == "{SNEAKY}"', *connection], capsys)
    assert code == 0, err
    code, _, err = run(
        ["query-check", "--collection", "inj", "--filter", "id in [1]; DROP TABLE inj", *connection], capsys
    )
    assert_trouble(code, err)
    assert _pg(settings.pg_conn, "SELECT count(*) FROM {}".replace("{}", table.as_string(None)))[0][0] == 3


def test_a_delete_filter_matching_more_keys_than_one_query_returns(settings: Settings, tmp_path: Path) -> None:
    """Milvus returns at most 16384 rows a query: a filter matching more is resolved page by page, every
    matching key is deleted in both stores, and the rest stays."""
    total, kept = 16384 + 600, 100
    client = ShadowClient.from_settings(settings)
    create_small_collection(client, "big")
    for start in range(0, total, 4096):
        client.insert("big", rows(list(range(start, min(start + 4096, total)))))
    client.delete("big", filter=f"id >= {kept}")
    states = client.journal.states("big", range(total))
    client.close()
    assert sorted(k for k, s in states.items() if s.state == "EXISTS") == list(range(kept))
    summary = assert_validates_clean(settings, "big", tmp_path / "v")
    assert summary.rows_a == summary.rows_b == kept
