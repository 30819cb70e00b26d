"""Three stages in step: the engine produces batches, Python finishes them, pyarrow writes them.

DuckDB computes a streamed result only while it is being fetched, and pyarrow's writer and DuckDB
both release the GIL; so a fetching thread and a writing thread keep the engine and the disk busy
while the main thread runs the finishing pass, instead of each waiting for the others in turn. A
producer with threads of its own (Concurrent) is fetched on the main thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Generic, TypeVar, cast

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


class Prefetch(Generic[T]):
    """Iterate `items` in a background thread started at once, up to `depth` ahead; its exceptions
    surface in the consumer. close() stops the thread whether or not iteration began or ended."""

    def __init__(self, items: Iterable[T], depth: int = _DEPTH) -> None:
        self._items = items
        self._buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="milvusdiff-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._buffer.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self) -> None:
        try:
            for item in self._items:
                self._put(item)
                if self._stop.is_set():
                    return
            self._put(_END)
        except BaseException as exc:
            self._put(_Failure(exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:  # a generator holding a connection releases it now, not at GC
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self._buffer.get()
        if item is _END:
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return cast(T, item)

    def close(self) -> None:
        """A consumer that stops early must not leave the producer blocked on a full queue."""
        self._stop.set()
        self._thread.join()


def prefetched(items: Iterable[T], depth: int = _DEPTH) -> Generator[T, None, None]:
    """As Prefetch, started at the first next() and closed when the generator is."""
    source = Prefetch(items, depth)
    try:
        yield from source
    finally:
        source.close()


class Concurrent(Generic[T]):
    """Items whose producer decodes in threads of its own (the positional merge: numpy over scans that
    run in the background). They are consumed on the caller's thread: a fetching thread of their own only
    contended with the finishing pass for the GIL and buffered more batches between them (1M rows, one
    side shuffled: 2.96-3.07 -> 2.86-2.90 s, peak 1.22 -> 1.20 GB; inputs in key order unchanged)."""

    def __init__(self, items: Iterable[T]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)


def finish_to_parquet(batches: Iterable[pa.RecordBatch], diff: Path, finisher: Finisher) -> Tally:
    """Finish batch n while batch n+1 is fetched (unless its producer is Concurrent) and batch n-1 is
    written."""
    # Dictionary encoding only pays for the class column; on vectors it is pure overhead.
    with (
        pq.ParquetWriter(diff, finisher.schema, use_dictionary=["class"]) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="milvusdiff-write") as pool,
    ):
        pending: Future[None] | None = None
        for batch in batches if isinstance(batches, Concurrent) else prefetched(batches):
            finished = finisher.process(batch)
            if pending is not None:
                pending.result()
            pending = pool.submit(writer.write_batch, finished)
        if pending is not None:
            pending.result()
    return finisher.tally
