"""demo: the main job end to end on whatever stores the settings name (embedded by default).

Create a collection with every type Milvus Lite supports, drive a mixed workload through the
ShadowClient, corrupt a few rows behind its back in each store, validate, and say which keys
differ, what differs and which store is wrong. Its exit code is validate's: 1, since the
corruption must be found.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milvusdiff.client.shadow import ShadowClient
from milvusdiff.config import Settings
from milvusdiff.destination import guard
from milvusdiff.workflow.validate import ValidateResult, validate

DEMO_PRESET = "all_types"
# (store, kind, count): what the demo does behind the ShadowClient's back.
DEMO_CORRUPTIONS = (("milvus", "delete", 2), ("milvus", "vector", 2), ("pg", "update", 2), ("pg", "insert", 1))


def _every_row_every_dynamic_key(preset: Any) -> Any:
    """Milvus Lite 3.2 merges dynamic keys on upsert where Milvus documents an override, and validate
    reports every such row (see the README). The demo gives each row every dynamic key, so the two
    semantics coincide and what validate finds is exactly what the demo corrupted."""
    hints = dict(preset.hints)
    for f in preset.dynamic_fields:
        hints[f.name] = dataclasses.replace(preset.hint(f.name), presence=1.0)
    return dataclasses.replace(preset, hints=hints)


@dataclass
class DemoRun:
    collection: str
    workload: Any
    corruptions: list[Any] = field(default_factory=list)
    result: ValidateResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    settings: Settings,
    *,
    collection: str = "milvusdiff_demo",
    rows: int = 3000,
    threads: int = 2,
    seed: int = 7,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> DemoRun:
    from milvusdiff.workload.corrupt import corrupt
    from milvusdiff.workload.runner import run_workload
    from milvusdiff.workload.schemas import create_from_preset, load_preset

    if out is not None:  # refuse a wrong --out now, not after the workload
        guard(Path(out), kind="validate", overwrite=overwrite, settings=settings)
    clock = time.perf_counter()
    preset = _every_row_every_dynamic_key(load_preset(DEMO_PRESET))
    client = ShadowClient.from_settings(settings)
    try:
        say(f"1. creating collection {collection!r} from preset {DEMO_PRESET!r} (every type Milvus Lite supports)")
        create_from_preset(client, preset, collection, drop_existing=True)
        say(f"2. writing {rows} rows, then a mix of inserts, upserts and deletes, through ShadowClient")
        report = run_workload(
            client, preset, collection, rows=rows, batch=250, threads=threads, seed=seed, progress=progress
        )
    finally:
        client.close()
    for line in report.summary_lines():
        say(f"   {line}")
    run = DemoRun(collection, report)
    run.seconds["workload"] = time.perf_counter() - clock

    say("3. corrupting rows behind the ShadowClient's back:")
    for number, (store, kind, count) in enumerate(DEMO_CORRUPTIONS):
        changes = corrupt(settings, collection, store=store, kind=kind, count=count, seed=seed + number)
        run.corruptions.extend(changes)
        for change in changes:
            say(f"   {change}")

    clock = time.perf_counter()
    say("4. validating: export Milvus, PostgreSQL and the journal, compare, arbitrate")
    run.result = validate(collection, out=out, overwrite=overwrite, settings=settings, quiet=not progress)
    run.seconds["validate"] = time.perf_counter() - clock
    return run
