"""The workload runner against Milvus Lite and PostgreSQL: a seeded run ends in the same state every time,
threads leave Milvus, the shadow and the journal in agreement with the keys the runner tracked, the
validate hook sees the stores at rest, and failed writes are counted, reported and set aside."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from helpers.agreement import assert_agreement, milvus_table, read_stores, table_values
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException
from test_workload_support import connection_args, load_and_run

from milvusdiff.cli.main import main
from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.errors import ConfigError, SchemaError
from milvusdiff.workload.ops import parse_ops
from milvusdiff.workload.runner import run_workload
from milvusdiff.workload.schemas import create_from_preset, load_preset

pytest_plugins = ["test_workload_support"]

SMALL = {"rows": 400, "batch": 100, "operations": 20}


def milvus_keys(client: ShadowClient, collection: str) -> list[Any]:
    spec = client.spec(collection)
    return milvus_table(client, spec).column(spec.primary.name).to_pylist()


def test_a_seeded_run_ends_with_the_same_rows_every_time(lite_client: ShadowClient) -> None:
    first = load_and_run(lite_client, "varchar_partitions", "first", seed=21, **SMALL)
    second = load_and_run(lite_client, "varchar_partitions", "second", seed=21, **SMALL)
    other = load_and_run(lite_client, "varchar_partitions", "other", seed=22, **SMALL)
    assert first.reproducible and first.live_keys == second.live_keys != other.live_keys
    assert milvus_keys(lite_client, "first") == first.live_keys == milvus_keys(lite_client, "second")
    spec = lite_client.spec("first")
    assert table_values(milvus_table(lite_client, spec)) == table_values(
        milvus_table(lite_client, lite_client.spec("second"))
    )
    assert first.ops == second.ops and first.rows == second.rows


def test_two_threads_leave_milvus_postgres_and_the_journal_in_agreement(lite_client: ShadowClient) -> None:
    # Every row carries every dynamic key: Milvus Lite's upsert merges dynamic keys (see the next test).
    report = load_and_run(
        lite_client, "all_types", "mixed", rows=600, batch=100, threads=2, operations=40, seed=5, dynamic_presence=1.0
    )
    stores = assert_agreement(lite_client, "mixed")  # rows, values, partitions, journal EXISTS keys and digests
    assert stores.keys(stores.milvus) == report.live_keys
    kinds = {op.split(":")[0] for op in report.ops}
    assert kinds == {"load", "insert", "upsert", "delete"}
    assert len([op for op in report.ops if op.startswith("delete:")]) >= 3
    assert report.sync_errors == 0 and not report.uncertain_keys and report.threads == 2


def test_upserts_show_that_milvus_lite_merges_dynamic_keys(lite_client: ShadowClient) -> None:
    """Milvus documents upsert as a replacement; Milvus Lite 3.2 keeps the old row's dynamic keys. The
    shadow holds what was written, so every difference is Milvus holding extra keys, nothing else."""
    load_and_run(lite_client, "all_types", "merged", rows=400, batch=100, operations=12, seed=5, ops={"upsert": 1})
    stores = read_stores(lite_client, "merged")
    milvus, pg = table_values(stores.milvus), table_values(stores.pg)
    differing = [(m, p) for m, p in zip(milvus, pg, strict=True) if m != p]
    assert differing
    for m, p in differing:
        assert {k for k in m if m[k] != p[k]} == {"$meta"}
        written, held = json.loads(p["$meta"]), json.loads(m["$meta"])
        assert written.items() < held.items()


def test_the_final_state_with_threads_depends_only_on_the_seed(lite_client: ShadowClient) -> None:
    options = {**SMALL, "threads": 2, "seed": 9}
    first = load_and_run(lite_client, "varchar_partitions", "one", **options)
    second = load_and_run(lite_client, "varchar_partitions", "two", **options)
    assert first.live_keys == second.live_keys
    assert table_values(read_stores(lite_client, "one").pg) == table_values(read_stores(lite_client, "two").pg)


def test_the_validate_hook_sees_the_stores_at_rest(lite_client: ShadowClient) -> None:
    """Writers are paused while the hook runs: no write is half done (in Milvus, not yet in PostgreSQL)."""
    preset = load_preset("ecommerce")
    create_from_preset(lite_client, preset, "watched")
    seen: list[tuple[int, int]] = []

    def check() -> int:
        in_milvus = lite_client.query("watched", filter="", output_fields=["count(*)"])[0]["count(*)"]
        seen.append((in_milvus, lite_client.shadow.count("watched")))
        return in_milvus

    report = run_workload(
        lite_client, preset, "watched", rows=600, batch=50, threads=2, operations=20, seed=3,
        validate_every=0.05, on_validate=check, progress=False,
    )  # fmt: skip
    assert len(report.validations) == len(seen) >= 2
    assert all(milvus == pg for milvus, pg in seen)
    assert [v.result for v in report.validations] == [milvus for milvus, _ in seen]
    assert seen[-1][0] == len(report.live_keys)


class _AnswerLost(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED


class _Faults:
    """Fault injection on MilvusClient.upsert: the n-th calls fail before or after reaching Milvus."""

    def __init__(self, real: Any, rejected: set[int], lost_answer: set[int]) -> None:
        self.real, self.rejected, self.lost_answer = real, rejected, lost_answer
        self.calls = 0
        self.keys: dict[int, list[Any]] = {}
        self._lock = threading.Lock()

    def method(self) -> Any:
        def upsert(client: MilvusClient, collection: str, data: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                call = self.calls
            self.keys[call] = [row["product_id"] for row in data]
            if call in self.rejected:
                raise MilvusException(code=65535, message="injected: rejected")
            result = self.real(client, collection, data, *args, **kwargs)
            if call in self.lost_answer:
                raise _AnswerLost()  # applied, but the answer never came back
            return result

        return upsert


def test_failed_writes_are_counted_reported_and_their_keys_set_aside(
    lite_client: ShadowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = _Faults(MilvusClient.upsert, rejected={2}, lost_answer={4})
    monkeypatch.setattr(MilvusClient, "upsert", faults.method())
    report = load_and_run(lite_client, "ecommerce", "faulty", rows=400, batch=50, operations=6, seed=2,
                          ops={"upsert": 1})  # fmt: skip
    assert faults.calls == 6
    assert (report.sync_errors, report.in_doubt_errors) == (2, 1)
    assert any("rejected" in sample for sample in report.error_samples)
    assert sorted(report.uncertain_keys) == sorted(faults.keys[2] + faults.keys[4])
    stores = read_stores(lite_client, "faulty")
    assert stores.journal_keys("IN_DOUBT") == sorted(faults.keys[4])
    assert set(stores.keys(stores.milvus)) == set(report.live_keys) | set(report.uncertain_keys)
    assert "2 writes failed (1 in doubt)" in "\n".join(report.summary_lines())


def test_a_run_stops_after_max_errors(lite_client: ShadowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise MilvusException(code=65535, message="injected: refused")

    monkeypatch.setattr(MilvusClient, "insert", refuse)
    report = load_and_run(lite_client, "rag", "refused", rows=1000, batch=100, seed=1, max_errors=3)
    assert report.sync_errors == 3 and report.stopped_early == "3 failed writes"
    assert report.live_keys == [] and lite_client.shadow.count("refused") == 0


def test_bad_arguments_are_refused_before_anything_is_written(lite_client: ShadowClient) -> None:
    for text, message in [
        ("insert=60,merge=5", "expected name=weight"),
        ("insert=sixty", "must be an integer"),
        ("insert=0", "not all zero"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_ops(text)
    assert parse_ops("delete=1, insert=3") == {"insert": 3, "upsert": 0, "delete": 1}
    preset = load_preset("rag")
    create_from_preset(lite_client, preset, "chunks")
    for options, error, message in [
        ({"threads": 0}, ConfigError, "threads must be from 1"),
        ({"batch": 0}, ConfigError, "batch >= 1"),
        ({"validate_every": 1.0}, ConfigError, "on_validate hook"),
        ({"ops": {"insert": 1, "truncate": 1}}, ConfigError, "unknown operation 'truncate'"),
    ]:
        with pytest.raises(error, match=message):
            run_workload(lite_client, preset, "chunks", progress=False, **options)
    with pytest.raises(SchemaError, match="does not have the fields of preset 'ecommerce'"):
        run_workload(lite_client, "ecommerce", "chunks", progress=False)
    run_workload(lite_client, preset, "chunks", rows=10, batch=10, operations=0, progress=False)
    with pytest.raises(ConfigError, match="is not empty"):
        run_workload(lite_client, preset, "chunks", rows=10, progress=False)


def test_cli_runs_a_workload_and_refuses_bad_input_with_one_line(
    lite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["workload", "--schema", "varchar_partitions", "--collection", "cli", "--rows", "300", "--batch", "100"]
    argv += ["--threads", "2", "--seed", "4", *connection_args(lite_settings)]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "workload varchar_partitions -> cli" in out and "seed 4" in out and "keys live" in out
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--drop-existing", "--ops", "insert=60,merge=5"])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.strip().splitlines() == ["milvusdiff: --ops: expected name=weight with name in insert, "
                                                 "upsert, delete, got 'merge=5'"]  # fmt: skip


def test_cli_validates_with_writers_paused_and_at_the_end(
    lite_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MILVUSDIFF_HOME", str(tmp_path / "home"))
    argv = ["workload", "--schema", "varchar_partitions", "--collection", "checked", "--rows", "200"]
    argv += ["--batch", "100", "--operations", "4", "--seed", "1", "--validate-every", "600"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, *connection_args(lite_settings)])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    runs = list((tmp_path / "home" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "summary.json").exists()
    assert f"no differences, outputs in {runs[0]}" in out
