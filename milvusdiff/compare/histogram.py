"""Deviation histograms on fixed logarithmic bins, filled batch by batch while a diff streams.

Fixed bins (a quarter decade each, 1e-20 to 1e20) make the counts of every batch add up without
keeping the deviations themselves, so memory stays bounded at any diff size; a log scale because one
ulp (1e-8) and gross corruption (1e3) both matter and differ by eleven orders of magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BINS_PER_DECADE = 4
LOW_EXPONENT, HIGH_EXPONENT = -20, 20
EDGES = np.logspace(LOW_EXPONENT, HIGH_EXPONENT, (HIGH_EXPONENT - LOW_EXPONENT) * BINS_PER_DECADE + 1)


@dataclass
class DeviationHistogram:
    """Counts of positive deviations per bin (outliers clipped into the end bins), zeros and NaNs apart."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(EDGES) - 1, dtype=np.int64))
    zero: int = 0
    nan: int = 0

    def add(self, values: np.ndarray) -> None:
        nan = np.isnan(values)
        self.nan += int(nan.sum())
        values = values[~nan]
        positive = values[values > 0]
        self.zero += int(values.size - positive.size)
        if positive.size:
            clipped = np.clip(positive, EDGES[0], EDGES[-1])
            self.counts += np.histogram(clipped, bins=EDGES)[0]

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zero + self.nan

    def drawn(self) -> list[tuple[float, float, int]]:
        """(low edge, high edge, count) from the first to the last non-empty bin: what a chart draws."""
        filled = np.flatnonzero(self.counts)
        if not filled.size:
            return []
        span = range(int(filled[0]), int(filled[-1]) + 1)
        return [(float(EDGES[i]), float(EDGES[i + 1]), int(self.counts[i])) for i in span]
