"""report.md and report.html as a person reads them: what differs comes first, values exact, charts inline.

Two real Parquet files are compared: key 1 has a float64 changed by 5e-10 and a float32 by one ulp,
key 2 a dense vector with two elements changed, key 3 a sparse vector with one value changed and one
index added; eighteen other columns never differ. The browser test (test_report_browser.py) renders
what these tests read as text.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from milvusdiff.compare import compare
from milvusdiff.types.typemap import SPARSE_TYPE

ROWS = 6
SAME_COLUMNS = [f"c{i:02d}" for i in range(18)]


def _tables() -> tuple[pa.Table, pa.Table]:
    ids = pa.array(range(ROWS), pa.int64())
    price = np.full(ROWS, 0.75)
    score = np.full(ROWS, 0.1, dtype=np.float32)
    emb = np.tile(np.arange(8, dtype=np.float32) / 8, (ROWS, 1))
    sparse = [{"indices": [1, 5], "values": [0.5, 0.25]} for _ in range(ROWS)]
    same = {name: pa.array([f"{name}-{i}" for i in range(ROWS)]) for name in SAME_COLUMNS}

    def table(price: np.ndarray, score: np.ndarray, emb: np.ndarray, sparse: list[dict[str, list]]) -> pa.Table:
        return pa.table(
            {
                "id": ids,
                "price": pa.array(price, pa.float64()),
                "score": pa.array(score, pa.float32()),
                "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel(), pa.float32()), 8),
                "sparse": pa.array(sparse, SPARSE_TYPE),
                **same,
            }
        )

    a = table(price, score, emb, sparse)
    price_b, score_b, emb_b = price.copy(), score.copy(), emb.copy()
    price_b[1] += 5e-10
    score_b[1] = np.nextafter(score[1], np.float32(1))
    emb_b[2, 3], emb_b[2, 6] = 0.3, 9.5
    sparse_b = [dict(s) for s in sparse]
    sparse_b[3] = {"indices": [1, 5, 9], "values": [0.5, 0.125, 2.0]}
    return a, table(price_b, score_b, emb_b, sparse_b)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    a, b = _tables()
    pq.write_table(a, root / "a.parquet")
    pq.write_table(b, root / "b.parquet")
    result = compare(root / "a.parquet", root / "b.parquet", key="id", out=root / "out")
    assert result.exit_code == 1 and result.summary.changed == 3
    return root / "out"


def test_sample_shows_only_what_differs_with_exact_floats(run_dir: Path) -> None:
    report = (run_dir / "report.md").read_text()
    sample = report.split("## Sample of differences")[1]
    assert "price: 0.75 → 0.7500000005" in sample  # float64: repr, not 6 digits
    assert "score: 0.1 → 0.10000001" in sample  # float32: shortest text for its own bits
    assert "emb: [3]: 0.375 → 0.3, [6]: 0.75 → 9.5" in sample  # the changed elements, not the first four
    assert "sparse: 5: 0.25 → 0.125, 9: absent → 2.0" in sample  # differing indices with both values
    assert "c00" not in sample  # unchanged fields are not shown


def test_columns_that_differ_come_first_and_the_rest_fold_into_one_line(run_dir: Path) -> None:
    report = (run_dir / "report.md").read_text()
    columns = report.split("## Columns")[1].split("##")[0]
    table_rows = [line for line in columns.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert {row.split("|")[1].strip() for row in table_rows} == {"price", "score", "emb", "sparse"}
    assert f"- 18 columns without mismatches: {', '.join(SAME_COLUMNS)}" in columns


def test_html_is_self_contained_with_inline_svg_charts(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|<script|<link", page, re.IGNORECASE)
    titles = re.findall(r'<svg class="chart"[^>]*aria-label="([^"]*)"', page)
    assert titles[:3] == ["Keys by class", "Mismatches per column", "price: deviation of 1 of 1 differing rows"]
    assert {"score: deviation of 1 of 1 differing rows", "emb: deviation of 1 of 1 differing rows"} <= set(titles)
    assert "sparse: deviation of 0 of 1 differing rows" in titles  # an index added: no element deviation
    assert "1 rows whose lengths or sparse indices differ: not drawn" in page
    assert page.count('class="bin"') > 0
