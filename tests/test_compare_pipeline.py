"""The prefetching stage: order kept, producer errors surface in the consumer, early stops do not hang."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from milvusdiff.compare.pipeline import prefetched


def test_items_arrive_in_order() -> None:
    assert list(prefetched(range(100), depth=3)) == list(range(100))


def test_a_failing_producer_raises_in_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield from range(3)
        raise ValueError("engine failed")

    received = []
    with pytest.raises(ValueError, match="engine failed"):
        for item in prefetched(failing()):
            received.append(item)
    assert received == [0, 1, 2]


def test_a_consumer_that_stops_early_releases_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        for i in itertools.count():
            produced.append(i)
            yield i

    stream = prefetched(endless(), depth=2)
    assert next(stream) == 0
    stream.close()  # joins the producer thread: it must not stay blocked on the full queue
    assert len(produced) <= 5
