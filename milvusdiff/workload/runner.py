"""A realistic write load through a ShadowClient: an initial load, then a seeded mix of operations.

Threads share one ShadowClient (as an application's request handlers would), but each worker owns a
disjoint block of keys (see `pool`): its upserts and deletes hit keys it inserted, and it knows at
every moment which of its keys are live, without reading anything back. So the run ends with the
exact set of keys the collection must hold, which is what tests and drills compare the stores with.

Reproducibility: every worker draws from its own Generator seeded with (seed, worker index). With a
fixed number of operations (no duration) and explicit keys, the final state (keys and values) is a
function of (preset, seed, threads, rows, batch, operations, ops weights) alone, with any number of
threads, because no two workers touch the same key and the interleaving of their requests cannot
change the outcome. With one thread the sequence of requests itself is identical too. A duration
makes the number of operations depend on speed, and auto_id lets Milvus number the keys in arrival
order; the report says when the final state is not reproducible.

Failed writes (SyncError, InDoubtError) are counted, sampled into the report and their keys set aside
(the journal knows their state); a run stops after `max_errors` of them. Anything else is a bug or a
misconfiguration and stops the run with its exception.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.errors import ConfigError, SchemaError, SyncError
from milvusdiff.types.spec import FieldSpec
from milvusdiff.workload.generate import Batch, RowGenerator
from milvusdiff.workload.ops import DEFAULT_OPS, DELETE_KINDS, OPERATIONS, check_ops, plan_delete
from milvusdiff.workload.pool import BLOCK, KeyPool
from milvusdiff.workload.progress import WorkloadProgress
from milvusdiff.workload.report import Tally, ValidationRun, WorkloadReport
from milvusdiff.workload.schemas import INT_RANGES, Preset, load_preset

ValidateHook = Callable[[], Any]
MAX_THREADS = 32
_REFRESH_SECONDS = 0.25


class Gate:
    """Workers run operations concurrently; the validator can stop them all between two operations.

    Validation must see the stores at rest: a write in flight is in Milvus but not yet committed in
    PostgreSQL, which a diff would report as a difference that is not there a moment later.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._paused = False

    @contextmanager
    def operation(self) -> Iterator[None]:
        with self._cond:
            while self._paused:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        with self._cond:
            self._paused = True
            while self._active:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._paused = False
                self._cond.notify_all()


@dataclass
class _Shared:
    """What every worker of one run reads (and the few things they signal back)."""

    client: ShadowClient
    collection: str
    preset: Preset
    generator: RowGenerator
    weights: np.ndarray
    batch: int
    duration: float | None
    max_errors: int
    probe: FieldSpec | None
    gate: Gate
    tally: Tally
    stop: threading.Event
    finished: threading.Event  # set when the last worker has ended
    running: int = 0
    failure: BaseException | None = None
    stop_reason: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.stop.set()

    def halt(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()

    def worker_ended(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running == 0:
                self.finished.set()


def run_workload(
    client: ShadowClient,
    preset: Preset | str,
    collection: str,
    rows: int = 1000,
    ops: Mapping[str, float] = DEFAULT_OPS,
    batch: int = 500,
    threads: int = 1,
    duration: float | None = None,
    seed: int | None = None,
    validate_every: float | None = None,
    progress: bool = True,
    *,
    operations: int | None = None,
    on_validate: ValidateHook | None = None,
    null_rate: float | None = None,
    default_rate: float | None = None,
    dynamic_presence: float | None = None,
    max_errors: int = 100,
) -> WorkloadReport:
    """Load `rows` rows into the (empty, already created) collection, then run the operation mix.

    `operations` is the number of mixed operations (default: enough batches to write `rows` rows
    again); with `duration` (seconds) the mix runs that long instead. `on_validate` is called with the
    writers paused, every `validate_every` seconds and once at the end; its results are reported.
    `null_rate`, `default_rate` and `dynamic_presence` override the preset's hints (see RowGenerator).
    """
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    weights = check_ops(ops)
    _check_sizes(rows, batch, threads, duration, validate_every, on_validate)
    if (operations is not None and operations < 0) or max_errors < 1:
        raise ConfigError(f"operations must be >= 0 and max_errors >= 1 (got {operations}, {max_errors})")
    _check_collection(client, preset, collection)
    seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed
    report = WorkloadReport(
        collection=collection,
        preset=preset.name,
        seed=seed,
        threads=threads,
        batch=batch,
        reproducible=duration is None and not preset.spec.auto_id,
    )
    shared = _Shared(
        client=client,
        collection=collection,
        preset=preset,
        generator=RowGenerator(
            preset, null_rate=null_rate, default_rate=default_rate, dynamic_presence=dynamic_presence
        ),
        weights=np.array([weights[name] for name in OPERATIONS], dtype=float) / sum(weights.values()),
        batch=batch,
        duration=duration,
        max_errors=max_errors,
        probe=_probe_field(preset),
        gate=Gate(),
        tally=Tally(report),
        stop=threading.Event(),
        finished=threading.Event(),
        running=threads,
    )
    mixed = math.ceil(rows / batch) if operations is None else operations
    workers = [_Worker(shared, w, seed, _share(rows, threads, w), _share(mixed, threads, w)) for w in range(threads)]
    total = None if duration is not None else sum(math.ceil(w.initial / batch) + w.op_count for w in workers)
    started = time.monotonic()
    with WorkloadProgress(progress, total, f"{preset.name} -> {collection}") as bar:
        _drive(shared, workers, bar, started, validate_every, on_validate, report)
    report.elapsed = time.monotonic() - started - report.validation_seconds
    report.stopped_early = shared.stop_reason
    generator = shared.generator
    report.live_keys = generator.keys(np.sort(np.concatenate([w.pool.live_ordinals() for w in workers])))
    report.uncertain_keys = generator.keys(np.sort(np.concatenate([w.pool.uncertain_ordinals() for w in workers])))
    return report


def _drive(
    shared: _Shared,
    workers: list[_Worker],
    bar: WorkloadProgress,
    started: float,
    validate_every: float | None,
    on_validate: ValidateHook | None,
    report: WorkloadReport,
) -> None:
    """Run the workers to the end, refreshing progress and calling the validate hook on schedule."""
    threads = [threading.Thread(target=w.run, name=f"workload-{w.index}") for w in workers]
    for t in threads:
        t.start()
    next_validation = started + validate_every if validate_every else math.inf
    try:
        while not shared.finished.wait(min(_REFRESH_SECONDS, max(0.0, next_validation - time.monotonic()))):
            bar.update(*shared.tally.totals(), time.monotonic() - started)
            if on_validate is not None and time.monotonic() >= next_validation and not shared.stop.is_set():
                _validate(shared, on_validate, started, report)
                next_validation = time.monotonic() + (validate_every or math.inf)
    except BaseException:
        shared.halt("interrupted")
        raise
    finally:
        for t in threads:
            t.join()
    bar.update(*shared.tally.totals(), time.monotonic() - started)
    if shared.failure is not None:
        raise shared.failure
    if on_validate is not None:
        _validate(shared, on_validate, started, report)


def _validate(shared: _Shared, hook: ValidateHook, started: float, report: WorkloadReport) -> None:
    with shared.gate.quiet():
        begun = time.monotonic()
        result = hook()
        report.validation_seconds += time.monotonic() - begun
    report.validations.append(ValidationRun(begun - started, result))


class _Worker:
    """One thread of the workload: its keys, its random stream, its share of the operations."""

    def __init__(self, shared: _Shared, index: int, seed: int, initial: int, op_count: int) -> None:
        self.shared = shared
        self.index = index
        self.initial = initial
        self.op_count = op_count
        self.rng = np.random.default_rng([seed, index])
        self.pool = KeyPool(None if shared.preset.spec.auto_id else index * BLOCK)
        self.partitions = shared.preset.partitions
        self.delete_kinds = DELETE_KINDS if shared.probe is not None else DELETE_KINDS[:-1]

    def run(self) -> None:
        try:
            for start in range(0, self.initial, self.shared.batch):
                if self.shared.stop.is_set():
                    return
                self._insert(min(self.shared.batch, self.initial - start), "load")
            self._mix()
        except BaseException as exc:
            self.shared.fail(exc)
        finally:
            self.shared.worker_ended()

    def _mix(self) -> None:
        deadline = time.monotonic() + self.shared.duration if self.shared.duration is not None else None
        done = 0
        while not self.shared.stop.is_set():
            finished = done >= self.op_count if deadline is None else time.monotonic() >= deadline
            if finished:
                return
            op = OPERATIONS[int(self.rng.choice(len(OPERATIONS), p=self.shared.weights))]
            if op == "insert" or not self.pool.live[: self.pool.size].any():
                self._insert(self.shared.batch, "insert")
            elif op == "upsert":
                self._upsert()
            else:
                self._delete()
            done += 1

    def _insert(self, n: int, op: str) -> None:
        part = int(self.rng.integers(len(self.partitions))) if self.partitions else 0
        if self.pool.first_ordinal is None:
            batch = self.shared.generator.generate(self.rng, n=n)
            result = self._write(op, np.zeros(0, np.int64), n, lambda: self._send("insert", batch, part))
            if result is not None:
                self._keep(self.pool.add(np.asarray(result["ids"], dtype=np.int64)), part, batch)
            return
        positions = self.pool.reserve(n)
        batch = self.shared.generator.generate(self.rng, self.pool.ordinals[positions])
        if self._write(op, positions, n, lambda: self._send("insert", batch, part)) is not None:
            self._keep(positions, part, batch)

    def _upsert(self) -> None:
        part = None
        if self.partitions:
            part = int(self.pool.partition[self.pool.sample(self.rng, 1)[0]])
        positions = self.pool.sample(self.rng, self.shared.batch, part)
        batch = self.shared.generator.generate(self.rng, self.pool.ordinals[positions])
        if self._write("upsert", positions, len(positions), lambda: self._send("upsert", batch, part or 0)) is not None:
            self._keep(positions, part or 0, batch)

    def _delete(self) -> None:
        kind = self.delete_kinds[int(self.rng.integers(len(self.delete_kinds)))]
        shared = self.shared
        plan = plan_delete(
            kind,
            self.pool,
            self.rng,
            shared.batch,
            shared.generator.keys,
            shared.generator.key.name,
            shared.probe.name if shared.probe is not None else None,
        )

        def call() -> Any:
            if plan.ids is not None:
                return shared.client.delete(shared.collection, ids=plan.ids)
            return shared.client.delete(shared.collection, filter=plan.filter)

        if self._write(f"delete:{plan.kind}", plan.positions, len(plan.positions), call) is not None:
            self.pool.kill(plan.positions)

    def _send(self, op: str, batch: Batch, part: int) -> Any:
        method = self.shared.client.insert if op == "insert" else self.shared.client.upsert
        partition = self.partitions[part] if self.partitions else ""
        return method(self.shared.collection, batch.rows, partition_name=partition)

    def _keep(self, positions: np.ndarray, part: int, batch: Batch) -> None:
        probe = self.shared.probe
        if probe is None:
            self.pool.set_live(positions, part, np.zeros(len(positions), np.int64), np.zeros(len(positions), bool))
        else:
            self.pool.set_live(positions, part, *batch.stored_integers(probe))

    def _write(self, op: str, positions: np.ndarray, n: int, call: Callable[[], Any]) -> Any:
        """Run one write; on SyncError set its keys aside and count it. Returns the result, or None."""
        try:
            with self.shared.gate.operation():
                result = call()
        except SyncError as exc:
            self.pool.quarantine(positions)
            if self.shared.tally.error(op, exc) >= self.shared.max_errors:
                self.shared.halt(f"{self.shared.max_errors} failed writes")
            return None
        self.shared.tally.count(op, n)
        return {} if result is None else result


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _probe_field(preset: Preset) -> FieldSpec | None:
    """The integer field scalar deletes filter on: the first one, non-nullable ones first."""
    candidates = [f for f in preset.spec.fields if f.type in INT_RANGES and not f.is_primary]
    return sorted(candidates, key=lambda f: f.nullable)[0] if candidates else None


def _check_sizes(
    rows: int,
    batch: int,
    threads: int,
    duration: float | None,
    validate_every: float | None,
    on_validate: ValidateHook | None,
) -> None:
    if rows < 0 or batch < 1:
        raise ConfigError(f"rows must be >= 0 and batch >= 1 (got rows={rows}, batch={batch})")
    if not 1 <= threads <= MAX_THREADS:
        raise ConfigError(f"threads must be from 1 to {MAX_THREADS}, got {threads}")
    if duration is not None and duration <= 0:
        raise ConfigError(f"duration must be positive, got {duration}")
    if validate_every is not None and (validate_every <= 0 or on_validate is None):
        raise ConfigError("validate_every needs a positive interval and an on_validate hook")


def _check_collection(client: ShadowClient, preset: Preset, collection: str) -> None:
    """The collection must have the preset's fields and be empty: the runner tracks every key it holds."""
    spec = client.spec(collection)
    have = [(f.name, f.type) for f in spec.fields]
    want = [(f.name, f.type) for f in preset.spec.fields]
    if have != want:
        raise SchemaError(f"collection {collection!r} does not have the fields of preset {preset.name!r}")
    if client.shadow.count(collection):
        raise ConfigError(f"collection {collection!r} is not empty; a workload starts from an empty collection")
