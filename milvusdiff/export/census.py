"""Key census: how many distinct primary keys were written, and which occur more than once.

Real Milvus servers keep duplicate primary keys and iterators have lost rows before, so the snapshot
must say what it holds, not assume it. Counting distinct keys exactly needs every key at once, which a
Python set cannot promise for any size; instead the key column goes to a scratch Parquet file as it
streams past, and DuckDB (which spills to disk past its memory limit) counts it at the end.

Keys that arrive strictly increasing (the PostgreSQL export reads ORDER BY the key) are distinct by
construction: the census notices that as they pass (one vectorised comparison per batch) and then
skips the DuckDB count, which measured about a tenth of a 100k-row export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from milvusdiff.export.manifest import KeyStats

DUPLICATE_SAMPLE = 10
_DUCKDB_MEMORY = "256MB"


class KeyCensus:
    def __init__(self, scratch: Path, key_field: pa.Field) -> None:
        self._scratch = scratch
        self._path = scratch / "keys.parquet"
        self._schema = pa.schema([key_field.remove_metadata().with_name("k")])
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._path, self._schema, compression="zstd")
        self._rows = 0
        self._ascending = True  # every key so far greater than the one before it (bytewise for strings)
        self._last: Any = None

    def add(self, keys: pa.ChunkedArray | pa.Array) -> None:
        assert self._writer is not None, "census already counted"
        self._writer.write_table(pa.Table.from_arrays([keys], schema=self._schema))
        if self._ascending and len(keys):
            self._ascending = self._still_ascending(keys)
        self._rows += len(keys)

    def _still_ascending(self, keys: pa.ChunkedArray | pa.Array) -> bool:
        if keys.null_count:
            return False
        first = keys[0].as_py()
        if self._last is not None and not first > self._last:
            return False
        self._last = keys[len(keys) - 1].as_py()
        if len(keys) == 1:
            return True
        return bool(pc.all(pc.greater(keys.slice(1), keys.slice(0, len(keys) - 1))).as_py())

    def count(self) -> KeyStats:
        assert self._writer is not None, "census already counted"
        self._writer.close()
        self._writer = None
        if self._ascending:
            return KeyStats(self._rows, 0, 0, [])
        con = duckdb.connect(config={"memory_limit": _DUCKDB_MEMORY, "temp_directory": str(self._scratch / "duckdb")})
        try:
            quoted = self._path.as_posix().replace("'", "''")
            source = f"read_parquet('{quoted}')"
            con.execute(f"CREATE TEMP VIEW counted AS SELECT k, count(*) AS n FROM {source} GROUP BY k")
            distinct, duplicate_keys, duplicate_rows = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE n > 1), coalesce(sum(n - 1), 0) FROM counted"
            ).fetchall()[0]
            sample: list[object] = []
            if duplicate_keys:
                rows = con.execute(
                    f"SELECT k FROM counted WHERE n > 1 ORDER BY n DESC, k LIMIT {DUPLICATE_SAMPLE}"
                ).fetchall()
                sample = [row[0] for row in rows]
        finally:
            con.close()
        return KeyStats(int(distinct), int(duplicate_keys), int(duplicate_rows), sample)

    def abandon(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
