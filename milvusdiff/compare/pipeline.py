"""Three stages in step: the engine produces batches, Python finishes them, pyarrow writes them.

DuckDB computes a streamed result only while it is being fetched, and pyarrow's writer and DuckDB
both release the GIL; so a fetching thread and a writing thread keep the engine and the disk busy
while the main thread runs the finishing pass, instead of each waiting for the others in turn.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, cast

import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.compare.finish import Finisher
from milvusdiff.compare.tally import Tally

T = TypeVar("T")
_DEPTH = 4
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterable[T], depth: int = _DEPTH) -> Generator[T, None, None]:
    """Iterate `items` in a background thread, up to `depth` ahead; its exceptions surface here."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in items:
                put(item)
                if stop.is_set():
                    return
            put(_END)
        except BaseException as exc:
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="milvusdiff-prefetch", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.exc
            yield cast(T, item)
    finally:
        stop.set()  # a consumer that stops early must not leave the producer blocked on a full queue
        thread.join()


def finish_to_parquet(batches: Iterable[pa.RecordBatch], diff: Path, finisher: Finisher) -> Tally:
    """Finish batch n while batch n+1 is fetched and batch n-1 is written."""
    # Dictionary encoding only pays for the class column; on vectors it is pure overhead.
    with (
        pq.ParquetWriter(diff, finisher.schema, use_dictionary=["class"]) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="milvusdiff-write") as pool,
    ):
        pending: Future[None] | None = None
        for batch in prefetched(batches):
            finished = finisher.process(batch)
            if pending is not None:
                pending.result()
            pending = pool.submit(writer.write_batch, finished)
        if pending is not None:
            pending.result()
    return finisher.tally
