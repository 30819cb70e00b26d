"""Readers in threads, the writer in the caller: reading and writing overlap, memory stays bounded.

Fetching (a gRPC round trip, a PostgreSQL cursor) and writing Parquet both spend most of their time
outside the GIL, so running them concurrently brings the export close to the speed of the bare
driver. The queue between them holds a few batches at most, so a slow disk throttles the readers
instead of letting batches pile up in memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _Done:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Channel(Generic[T]):
    def __init__(self, depth: int) -> None:
        self.items: queue.Queue[T | _Done | _Failed] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def put(self, item: T | _Done | _Failed) -> bool:
        """Block while the queue is full, but give up once the consumer has gone."""
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def run(self, producer: Iterable[T]) -> None:
        iterator = iter(producer)
        try:
            for item in iterator:
                if not self.put(item):
                    return
        except BaseException as exc:
            self.put(_Failed(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # runs the producer's own cleanup (closing its cursor) in its own thread
            self.put(_Done())


def run_producers(producers: Sequence[Iterable[T]], *, depth: int = 2) -> Iterator[T]:
    """Yield the items of every producer, each running in its own thread, as they arrive.

    The first producer error is raised here; closing this generator (or an error in the consumer)
    stops every producer at its next item.
    """
    channel: _Channel[T] = _Channel(depth)
    threads = [
        threading.Thread(target=channel.run, args=(p,), name=f"milvusdiff-export-{i}", daemon=True)
        for i, p in enumerate(producers)
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = channel.items.get()
            if isinstance(item, _Done):
                running -= 1
            elif isinstance(item, _Failed):
                raise item.exc
            else:
                yield item
    finally:
        channel.stop.set()
        for thread in threads:
            thread.join()
