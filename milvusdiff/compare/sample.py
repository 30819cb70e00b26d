"""The sample of differences the reports show: the smallest keys of each class.

Engines stream rows in no fixed order; choosing by key makes the sample the same on every run and
with either engine. Only key columns are sorted; whole rows are taken for the few chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CLASSES = ("only_a", "only_b", "changed", "duplicate_a", "duplicate_b")


class Sample:
    def __init__(self, key_names: list[str], per_class: int) -> None:
        self.keys = key_names
        self.per_class = per_class
        self.chosen: dict[str, pa.Table] = {}  # class -> its sample rows so far, with their `__row` numbers

    def offer(self, result: pa.RecordBatch, first_row: int) -> None:
        """Consider the rows of one output batch, whose first row is row `first_row` of diff.parquet."""
        if not self.per_class:
            return
        order = [(k, "ascending") for k in self.keys]
        narrow = pa.Table.from_batches([result.select([*self.keys, "class"])])
        narrow = narrow.append_column("__at", pa.array(np.arange(result.num_rows, dtype=np.int64)))
        for name in CLASSES:
            candidates = narrow.filter(pc.equal(narrow.column("class"), name))
            if not candidates.num_rows:
                continue
            best = candidates.take(pc.select_k_unstable(candidates, min(self.per_class, candidates.num_rows), order))
            at = best.column("__at").combine_chunks()
            rows = pa.Table.from_batches([result.take(at)]).append_column("__row", pc.add(at, first_row))
            both = pa.concat_tables([self.chosen[name], rows]) if name in self.chosen else rows
            self.chosen[name] = both.take(pc.select_k_unstable(both, min(self.per_class, both.num_rows), order))

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """(row number in diff.parquet, row) of the sample, by class then key."""
        order = [(k, "ascending") for k in self.keys]
        rows = []
        for name in CLASSES:
            if name in self.chosen:
                table = self.chosen[name]
                for row in table.take(pc.sort_indices(table, order)).to_pylist():
                    rows.append((row.pop("__row"), row))
        return rows
