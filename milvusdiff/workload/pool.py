"""The keys one workload worker owns, and what the worker knows about each of them.

Every worker owns a disjoint block of key ordinals (worker w starts at w * BLOCK), so upserts and
deletes of different workers can never touch the same key, and a key range in a delete filter covers
only the keys of the worker that sends it. That is what keeps the tracked state exact under threads
without a lock around every operation, and what makes a multi-threaded run with a fixed number of
operations end in the same state every time: the order in which workers' requests interleave no
longer matters, since no two of them touch the same row.

State lives in parallel numpy arrays indexed by position (the order keys were added): the ordinal,
whether the key is live, its partition, and the value of one integer "probe" field that scalar
delete filters are evaluated on locally, so the worker knows exactly which keys a filter removes.
"""

from __future__ import annotations

import numpy as np

BLOCK = 10**9
_INITIAL_CAPACITY = 1024


class KeyPool:
    """Keys of one worker. Not thread-safe by design: exactly one worker uses a pool."""

    def __init__(self, first_ordinal: int | None) -> None:
        """`first_ordinal` None means Milvus assigns keys (auto_id) and they are added as they come back."""
        self.first_ordinal = first_ordinal
        self.size = 0
        self.ordinals = np.empty(_INITIAL_CAPACITY, dtype=np.int64)
        self.live = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self.uncertain = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self.partition = np.zeros(_INITIAL_CAPACITY, dtype=np.int16)
        self.probe = np.zeros(_INITIAL_CAPACITY, dtype=np.int64)
        self.probe_valid = np.zeros(_INITIAL_CAPACITY, dtype=bool)

    def reserve(self, n: int) -> np.ndarray:
        """Positions for `n` new keys (ordinals follow the worker's block); they become live on set_live."""
        if self.first_ordinal is None:
            raise ValueError("keys of an auto_id collection come from Milvus: use add()")
        positions = self._grow(n)
        self.ordinals[positions] = self.first_ordinal + positions
        return positions

    def add(self, ordinals: np.ndarray) -> np.ndarray:
        """Positions for keys Milvus assigned."""
        positions = self._grow(len(ordinals))
        self.ordinals[positions] = ordinals
        return positions

    def set_live(self, positions: np.ndarray, partition: int, probe: np.ndarray, probe_valid: np.ndarray) -> None:
        self.live[positions] = True
        self.partition[positions] = partition
        self.probe[positions] = probe
        self.probe_valid[positions] = probe_valid

    def kill(self, positions: np.ndarray) -> None:
        self.live[positions] = False

    def quarantine(self, positions: np.ndarray) -> None:
        """A failed write left these keys in a state only the journal knows: never touch them again."""
        self.live[positions] = False
        self.uncertain[positions] = True

    def live_positions(self, partition: int | None = None) -> np.ndarray:
        live = self.live[: self.size]
        if partition is not None:
            live = live & (self.partition[: self.size] == partition)
        return np.flatnonzero(live)

    def sample(self, rng: np.random.Generator, n: int, partition: int | None = None) -> np.ndarray:
        """Up to `n` distinct live positions, in ascending order."""
        live = self.live_positions(partition)
        if len(live) <= n:
            return live
        return np.sort(rng.choice(live, n, replace=False))

    def window(self, rng: np.random.Generator, width: int) -> tuple[int, int]:
        """A run of `width` consecutive positions starting at a random live key (last one clipped)."""
        live = self.live_positions()
        start = int(rng.choice(live))
        return start, min(start + width, self.size) - 1

    def live_ordinals(self) -> np.ndarray:
        return self.ordinals[self.live_positions()]

    def uncertain_ordinals(self) -> np.ndarray:
        return self.ordinals[np.flatnonzero(self.uncertain[: self.size])]

    def _grow(self, n: int) -> np.ndarray:
        needed = self.size + n
        if needed > len(self.ordinals):
            capacity = max(needed, 2 * len(self.ordinals))
            for name in ("ordinals", "live", "uncertain", "partition", "probe", "probe_valid"):
                old = getattr(self, name)
                new = np.zeros(capacity, dtype=old.dtype)
                new[: self.size] = old[: self.size]
                setattr(self, name, new)
        positions = np.arange(self.size, needed)
        self.size = needed
        return positions
