"""Key census: how many distinct primary keys were written, and which occur more than once.

Real Milvus servers keep duplicate primary keys and iterators have lost rows before, so the snapshot
must say what it holds, not assume it. Counting distinct keys exactly needs every key at once, which a
Python set cannot promise for any size; instead the key column goes to a scratch Parquet file as it
streams past, and DuckDB (which spills to disk past its memory limit) counts it at the end.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
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

    def add(self, keys: pa.ChunkedArray | pa.Array) -> None:
        assert self._writer is not None, "census already counted"
        self._writer.write_table(pa.Table.from_arrays([keys], schema=self._schema))

    def count(self) -> KeyStats:
        assert self._writer is not None, "census already counted"
        self._writer.close()
        self._writer = None
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
