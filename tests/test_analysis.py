"""milvusdiff.analysis on diff directories whose every difference, verdict and operation is known.

`make_validate_dir` builds what `milvusdiff validate` writes: a Milvus and a PostgreSQL snapshot that
each miss the intended state in known ways, a journal snapshot produced by milvusdiff's own LMDB
journal (the operations that wrote the rows), and the comparison run by `milvusdiff.compare.compare`
with that journal as arbiter. `make_agreeing_dir` is the opposite corner: equal stores, no journal,
no vector columns. test_notebook.py runs the notebook on both.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from milvusdiff import analysis
from milvusdiff.compare import compare
from milvusdiff.config import Settings
from milvusdiff.errors import ConfigError
from milvusdiff.export import export_collection
from milvusdiff.services.journal import Journal
from milvusdiff.types.convert import rows_to_table
from milvusdiff.types.digest import row_digests
from milvusdiff.types.spec import CollectionSpec, FieldSpec

SPEC = CollectionSpec(
    name="shop",
    fields=(
        FieldSpec("id", "INT64", is_primary=True),
        FieldSpec("title", "VARCHAR", max_length=64),
        FieldSpec("price", "DOUBLE"),
        FieldSpec("emb", "FLOAT_VECTOR", dim=4),
        FieldSpec("img", "FLOAT_VECTOR", dim=4),
    ),
)
PLAIN_SPEC = CollectionSpec(name="plain", fields=SPEC.fields[:3])

INSERT_BATCHES = (range(0, 20), range(20, 40), range(40, 60))  # journal seq 1, 2, 3
UPSERTED = range(40, 45)  # seq 4, committed: new titles
DELETED = (50, 51, 52)  # seq 5, committed; Milvus still holds them
IN_DOUBT = (55, 56)  # seq 6, in doubt; Milvus has the new titles, PostgreSQL the old
EMB_SMALL, IMG_ULP, EMB_BIG = 5, 6, 20  # Milvus emb +1e-3, Milvus img +1 ulp, PostgreSQL emb +5
MISSING_IN_PG, STALE_TITLE_IN_PG, BAD_PRICE_IN_PG = 10, 41, 42
ONLY_IN_PG = 999  # never written through the journal

EXPECTED_VERDICTS = {"a_wrong": 5, "b_wrong": 4, "both_wrong": 0, "in_doubt": 2, "unknown": 1}
EXPECTED_SEQ = {5: 1, 6: 1, 10: 1, 20: 2, 41: 4, 42: 4, 50: 5, 51: 5, 52: 5, 55: 6, 56: 6}


def make_rows(ids: range | list[int] | tuple[int, ...], version: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    vectors = rng.random((1000, 2, 4), dtype=np.float32)
    return [
        {
            "id": i,
            "title": f"title {i}" + (f" v{version}" if version > 1 else ""),
            "price": i * 1.5,
            "emb": vectors[i, 0].tolist(),
            "img": vectors[i, 1].tolist(),
        }
        for i in ids
    ]


def _by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def _write_snapshot(rows: dict[int, dict[str, Any]], spec: CollectionSpec, directory: Path, source: str) -> Path:
    table = rows_to_table([rows[k] for k in sorted(rows)], spec)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"milvusdiff.source": source.encode()})
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "part-00000.parquet")
    (directory / "manifest.json").write_text(json.dumps({"source": source, "collection": spec.name}), encoding="utf-8")
    return directory


def _digests(rows: list[dict[str, Any]]) -> list[bytes]:
    return row_digests(rows_to_table(rows, SPEC), SPEC).to_pylist()


def _journal_snapshot(lmdb: Path, directory: Path) -> Path:
    """Write the operations through the journal as the ShadowClient would, then export it as validate does."""
    with Journal(lmdb) as journal:
        journal.register_collection(SPEC)
        for batch in INSERT_BATCHES:
            journal.commit(journal.begin(SPEC.name, "insert", list(batch), _digests(make_rows(batch))))
        upserted = make_rows(UPSERTED, version=2)
        journal.commit(journal.begin(SPEC.name, "upsert", list(UPSERTED), _digests(upserted)))
        journal.commit(journal.begin(SPEC.name, "delete", list(DELETED)))
        seq = journal.begin(SPEC.name, "upsert", list(IN_DOUBT), _digests(make_rows(IN_DOUBT, version=2)))
        journal.mark_in_doubt(seq, "timeout")
    settings = Settings(milvus_uri="unused", milvus_token=None, pg_conn="unused", journal_path=lmdb)
    export_collection(SPEC.name, source="journal", out=directory, settings=settings)
    return directory


def _stores() -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """(milvus, pg) rows: the intended state, each store wrong in its own known ways."""
    intended = _by_id(make_rows(range(60)))
    intended.update(_by_id(make_rows(UPSERTED, version=2)))
    for key in DELETED:
        del intended[key]
    milvus = copy.deepcopy(intended) | _by_id(make_rows(DELETED))
    milvus.update(_by_id(make_rows(IN_DOUBT, version=2)))
    milvus[EMB_SMALL]["emb"][0] = float(np.float32(milvus[EMB_SMALL]["emb"][0] + 1e-3))
    milvus[IMG_ULP]["img"][1] = float(np.nextafter(np.float32(milvus[IMG_ULP]["img"][1]), np.float32(2)))
    pg = copy.deepcopy(intended) | _by_id(make_rows([ONLY_IN_PG]))
    del pg[MISSING_IN_PG]
    pg[EMB_BIG]["emb"] = [pg[EMB_BIG]["emb"][0] + 5.0, *pg[EMB_BIG]["emb"][1:]]
    pg[STALE_TITLE_IN_PG]["title"] = f"title {STALE_TITLE_IN_PG}"
    pg[BAD_PRICE_IN_PG]["price"] = 0.0
    return milvus, pg


def _assemble(building: Path, out: Path, **compare_options: Any) -> Path:
    """Move compare's outputs to the top of the directory, as validate lays them out."""
    compare(
        building / "snapshots" / "milvus", building / "snapshots" / "pg", out=building / "compare", **compare_options
    )
    for produced in (building / "compare").iterdir():
        produced.rename(building / produced.name)
    (building / "compare").rmdir()
    building.rename(out)
    return out


def make_validate_dir(tmp: Path) -> Path:
    """A `milvusdiff validate`-shaped output directory with the differences described at the top."""
    building = tmp / "building"
    milvus, pg = _stores()
    _write_snapshot(milvus, SPEC, building / "snapshots" / "milvus", "milvus")
    _write_snapshot(pg, SPEC, building / "snapshots" / "pg", "pg")
    journal = _journal_snapshot(tmp / "lmdb", building / "snapshots" / "journal")
    shutil.rmtree(tmp / "lmdb")
    return _assemble(building, tmp / "validate", journal=journal)


def make_agreeing_dir(tmp: Path) -> Path:
    """A compare output directory for two equal stores without vector columns, compared without a journal."""
    building = tmp / "building-agree"
    rows = {r["id"]: {k: r[k] for k in ("id", "title", "price")} for r in make_rows(range(30))}
    _write_snapshot(rows, PLAIN_SPEC, building / "snapshots" / "milvus", "milvus")
    _write_snapshot(rows, PLAIN_SPEC, building / "snapshots" / "pg", "pg")
    return _assemble(building, tmp / "agree")


@pytest.fixture(scope="module")
def validate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_validate_dir(tmp_path_factory.mktemp("analysis"))


@pytest.fixture(scope="module")
def agreeing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_agreeing_dir(tmp_path_factory.mktemp("analysis-agree"))


def test_counts_table_names_the_stores(validate_dir: Path) -> None:
    table = analysis.counts_table(analysis.load_diff(validate_dir).summary)
    values = dict(zip(table["count"], table["value"], strict=True))
    assert values == {
        "rows_a": 60,
        "rows_b": 57,
        "only_a": 4,
        "only_b": 1,
        "changed": 7,
        "duplicate_a": 0,
        "duplicate_b": 0,
        "unchanged": 49,
    }
    meanings = dict(zip(table["count"], table["meaning"], strict=True))
    assert meanings["only_a"] == "only in milvus" and meanings["rows_b"] == "rows in pg"


def test_mismatches_per_column_most_first(validate_dir: Path) -> None:
    table = analysis.mismatches_per_column(analysis.load_diff(validate_dir).summary)
    assert table.select("column", "mismatches").rows() == [("title", 3), ("emb", 2), ("img", 1), ("price", 1)]
    assert table.filter(pl.col("column") == "price")["kind"].item() == "float"


def test_mismatches_per_column_empty_when_stores_agree(agreeing_dir: Path) -> None:
    run = analysis.load_diff(agreeing_dir)
    assert not run.different
    assert analysis.mismatches_per_column(run.summary).is_empty()


def test_deviation_columns_and_values(validate_dir: Path, agreeing_dir: Path) -> None:
    run = analysis.load_diff(validate_dir)
    assert analysis.deviation_columns(run.diff) == ["emb", "img"]
    emb = np.sort(analysis.deviations(run.diff, "emb"))
    assert emb == pytest.approx([1e-3, 5.0], rel=1e-3)
    (img,) = analysis.deviations(run.diff, "img")
    assert 0 < img < 1e-6  # one float32 ulp of a value in [0, 1)
    assert analysis.deviation_columns(analysis.load_diff(agreeing_dir).diff) == []


def test_deviation_columns_needs_all_three_metrics() -> None:
    frame = pl.DataFrame({"v__max_abs": [1.0], "v__l2": [1.0], "v__cosine": [0.0], "w__max_abs": [1.0]})
    assert analysis.deviation_columns(frame) == ["v"]


def test_verdict_counts_use_store_names(validate_dir: Path, agreeing_dir: Path) -> None:
    table = analysis.verdict_counts(analysis.load_diff(validate_dir).summary)
    assert table is not None
    assert dict(zip(table["verdict"], table["keys"], strict=True)) == EXPECTED_VERDICTS
    labels = dict(zip(table["verdict"], table["label"], strict=True))
    assert labels["a_wrong"] == "milvus wrong" and labels["b_wrong"] == "pg wrong"
    assert analysis.verdict_counts(analysis.load_diff(agreeing_dir).summary) is None


def test_keys_with_operations_follow_last_seq_to_the_oplog(validate_dir: Path) -> None:
    frame = analysis.keys_with_operations(validate_dir)
    assert frame is not None and frame.height == 12
    rows = {r["id"]: r for r in frame.iter_rows(named=True)}
    assert {k: r["last_seq"] for k, r in rows.items() if r["last_seq"] is not None} == EXPECTED_SEQ
    assert (rows[EMB_SMALL]["op"], rows[EMB_SMALL]["status"], rows[EMB_SMALL]["verdict"]) == (
        "insert",
        "committed",
        "milvus wrong",
    )
    assert (rows[STALE_TITLE_IN_PG]["op"], rows[STALE_TITLE_IN_PG]["verdict"]) == ("upsert", "pg wrong")
    assert (rows[50]["state"], rows[50]["op"], rows[50]["batch_keys"]) == ("DELETED", "delete", 3)
    assert (rows[55]["state"], rows[55]["status"], rows[55]["verdict"]) == ("IN_DOUBT", "in_doubt", "in doubt")
    assert rows[ONLY_IN_PG]["state"] is None and rows[ONLY_IN_PG]["verdict"] == "unknown"
    assert frame.schema["time"] == pl.Datetime("us", "UTC")


def test_keys_with_operations_without_oplog_keeps_the_states(validate_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(validate_dir, tmp_path / "copy"))
    (copy / analysis.JOURNAL_SNAPSHOT / analysis.OPLOG).unlink()
    frame = analysis.keys_with_operations(copy)
    assert frame is not None
    row = frame.filter(pl.col("id") == 41).row(0, named=True)
    assert (row["last_seq"], row["last_op"], row["op"]) == (4, "upsert", None)


def test_keys_with_operations_none_without_journal(agreeing_dir: Path) -> None:
    assert analysis.load_diff(agreeing_dir).journal is None
    assert analysis.keys_with_operations(agreeing_dir) is None


def test_operations_behind_counts_bad_keys_per_batch(validate_dir: Path) -> None:
    frame = analysis.keys_with_operations(validate_dir)
    assert frame is not None
    ops = analysis.operations_behind(frame)
    assert dict(zip(ops["seq"], ops["differing_keys"], strict=True)) == {1: 3, 2: 1, 4: 2, 5: 3, 6: 2}
    delete = ops.filter(pl.col("seq") == 5).row(0, named=True)
    assert delete["operation"] == "#5 delete (committed)"
    assert delete["classes"] == ["only_a"] and delete["verdicts"] == ["milvus wrong"]


def test_side_by_side_shows_each_store_value(validate_dir: Path) -> None:
    table = analysis.side_by_side(analysis.load_diff(validate_dir), limit=10)
    assert table.columns == ["key", "column", "milvus", "pg", "differs", "max_abs", "verdict"]
    assert table["key"].to_list() == ["5", "6", "20", "41", "42", "55", "56"]
    title = table.filter(pl.col("key") == "41").row(0, named=True)
    assert (title["column"], title["milvus"], title["pg"], title["verdict"]) == (
        "title",
        "title 41 v2",
        "title 41",
        "pg wrong",
    )
    assert table.filter(pl.col("key") == "20")["max_abs"].item() == pytest.approx(5.0)
    assert table.filter(pl.col("key") == "42")["max_abs"].item() is None
    ulp = table.filter(pl.col("key") == "6").row(0, named=True)  # img: one element, one float32 ulp
    assert ulp["milvus"] != ulp["pg"] and ulp["differs"].startswith("[1]: ") and ulp["differs"].count("→") == 1
    assert analysis.side_by_side(analysis.load_diff(validate_dir), limit=2)["key"].to_list() == ["5", "6"]


def test_resolve_diff_dir_environment_wins(
    validate_dir: Path, agreeing_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(analysis.DIFF_DIR_ENV, raising=False)
    assert analysis.resolve_diff_dir(str(agreeing_dir)) == agreeing_dir
    monkeypatch.setenv(analysis.DIFF_DIR_ENV, str(validate_dir))
    assert analysis.resolve_diff_dir(str(agreeing_dir)) == validate_dir


def test_resolve_diff_dir_rejects_a_directory_without_a_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(analysis.DIFF_DIR_ENV, raising=False)
    with pytest.raises(ConfigError, match="not a diff output directory"):
        analysis.resolve_diff_dir(tmp_path)
    monkeypatch.setenv("MILVUSDIFF_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(ConfigError, match="no diff directory"):
        analysis.resolve_diff_dir("")


def test_latest_run_is_the_newest_under_the_home(
    validate_dir: Path, agreeing_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "home" / analysis.RUNS
    old, new = Path(shutil.copytree(validate_dir, runs / "old")), Path(shutil.copytree(agreeing_dir, runs / "new"))
    (runs / "not-a-run").mkdir()
    for run, stamp in ((old, 1_000_000), (new, 2_000_000)):
        os.utime(run / "summary.json", (stamp, stamp))
    monkeypatch.setenv("MILVUSDIFF_HOME", str(tmp_path / "home"))
    assert analysis.latest_run() == new
    monkeypatch.delenv("MILVUSDIFF_HOME")
    assert analysis.latest_run(tmp_path / "home" / "sub" / "dir") is None
    (tmp_path / "checkout" / ".milvusdiff").mkdir(parents=True)
    shutil.copytree(runs, tmp_path / "checkout" / ".milvusdiff" / analysis.RUNS)
    found = analysis.latest_run(tmp_path / "checkout" / "notebooks")
    assert found is not None and found.parent == tmp_path / "checkout" / ".milvusdiff" / analysis.RUNS


def test_figures_dir_default_and_override(validate_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = analysis.load_diff(validate_dir)
    monkeypatch.delenv(analysis.FIGURES_DIR_ENV, raising=False)
    assert analysis.figures_dir(run, tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv(analysis.FIGURES_DIR_ENV, str(tmp_path / "ci"))
    assert analysis.figures_dir(run) == tmp_path / "ci" and (tmp_path / "ci").is_dir()


def test_figures_are_written_as_png(validate_dir: Path, tmp_path: Path) -> None:
    run = analysis.load_diff(validate_dir)
    per_column = analysis.mismatches_per_column(run.summary)
    bars = analysis.bar_chart(per_column["column"], per_column["mismatches"], "Mismatches", "rows")
    assert [t.get_text() for t in bars.axes[0].get_yticklabels()] == ["title", "emb", "img", "price"]
    histograms = analysis.deviation_histograms(run.diff, ["emb", "img"])
    assert [ax.get_xscale() for ax in histograms.axes] == ["log", "log"]
    for fig, name in ((bars, "bars"), (histograms, "hist")):
        path = analysis.save_figure(fig, tmp_path, name)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deviation_histogram_says_what_it_cannot_draw() -> None:
    frame = pl.DataFrame({"v__max_abs": [float("nan"), 1e-3, 1.0, None], "v__l2": [1.0] * 4, "v__cosine": [0.0] * 4})
    fig = analysis.deviation_histograms(frame, ["v"])
    assert fig.axes[0].get_title() == "v: 3 differing rows (1 NaN or 0, not drawn)"


SPARSE_VALUE_KEY, SPARSE_INDEX_KEY = 1, 2  # a value changed at the same indices / an index added


def make_sparse_dir(tmp: Path) -> Path:
    """A compare output directory of two Parquet files that differ only in a sparse vector column."""
    import pyarrow as pa

    from milvusdiff.types.typemap import SPARSE_TYPE

    rows = [{"indices": [1, 5], "values": [0.5, 0.25]} for _ in range(4)]
    changed = [dict(r) for r in rows]
    changed[SPARSE_VALUE_KEY] = {"indices": [1, 5], "values": [0.5, 0.375]}
    changed[SPARSE_INDEX_KEY] = {"indices": [1, 5, 9], "values": [0.5, 0.25, 2.0]}
    for name, values in (("a", rows), ("b", changed)):
        table = pa.table({"id": pa.array(range(4), pa.int64()), "sparse": pa.array(values, SPARSE_TYPE)})
        pq.write_table(table, tmp / f"{name}.parquet")
    result = compare(tmp / "a.parquet", tmp / "b.parquet", key="id", out=tmp / "sparse-run")
    assert result.summary.changed == 2
    return tmp / "sparse-run"


def test_sparse_vectors_have_deviations_and_reindexed_rows(tmp_path: Path, validate_dir: Path) -> None:
    run = analysis.load_diff(make_sparse_dir(tmp_path))
    assert analysis.sparse_columns(run) == ["sparse"]
    values, reindexed = analysis.sparse_deviations(run, "sparse")
    assert values.tolist() == [0.125] and reindexed == 1
    assert list(analysis.vector_deviations(run)) == ["sparse"]
    assert set(analysis.vector_deviations(analysis.load_diff(validate_dir))) == {"emb", "img"}


def _home_with_a_run(root: Path, run: Path) -> Path:
    runs = root / ".milvusdiff" / analysis.RUNS
    shutil.copytree(run, runs / run.name)
    return runs / run.name


def test_relative_paths_are_read_from_where_the_user_ran_the_command(
    agreeing_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MILVUSDIFF_HOME", raising=False)
    (tmp_path / "kernel").mkdir()
    monkeypatch.chdir(tmp_path / "kernel")  # where Jupyter starts the kernel: notebooks/
    monkeypatch.setenv("PWD", str(agreeing_dir.parent))  # the user's shell
    monkeypatch.delenv(analysis.CWD_ENV, raising=False)
    monkeypatch.setenv(analysis.DIFF_DIR_ENV, agreeing_dir.name)
    choice = analysis.choose_diff_dir()
    assert choice.directory == agreeing_dir.resolve() and f"relative to {agreeing_dir.parent}" in choice.reason
    monkeypatch.setenv(analysis.CWD_ENV, str(tmp_path / "kernel"))  # recorded by make notebook: wins over PWD
    with pytest.raises(ConfigError, match="not a diff output directory"):
        analysis.choose_diff_dir()


def test_runs_under_two_homes_are_not_guessed_between(
    agreeing_dir: Path, validate_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MILVUSDIFF_HOME", raising=False)
    monkeypatch.delenv(analysis.DIFF_DIR_ENV, raising=False)
    mine = _home_with_a_run(tmp_path / "user", agreeing_dir)
    monkeypatch.setenv(analysis.CWD_ENV, str(tmp_path / "user"))
    (tmp_path / "checkout" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout" / "notebooks")
    assert analysis.latest_run() == mine  # one home: its newest run
    choice = analysis.choose_diff_dir()
    assert choice.directory == mine.resolve() and choice.reason == f"the newest run under {mine.parent}"
    _home_with_a_run(tmp_path / "checkout", validate_dir)
    with pytest.raises(ConfigError, match="runs under more than one directory") as refused:
        analysis.choose_diff_dir()
    assert str(mine.parent) in str(refused.value) and "checkout" in str(refused.value)


def test_run_header_says_which_run_and_when(agreeing_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.utime(agreeing_dir / "summary.json", (1_800_000_000, 1_800_000_000))
    monkeypatch.setenv(analysis.DIFF_DIR_ENV, str(agreeing_dir))
    choice = analysis.choose_diff_dir()
    header = analysis.run_header(analysis.load_diff(choice.directory), choice)
    assert f"`{agreeing_dir.resolve()}`" in header
    assert "made 2027-01-15 08:00:00 UTC · chosen by MILVUSDIFF_DIFF_DIR" in header
