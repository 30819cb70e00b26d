"""report.html of a demo run, rendered by a real browser (headless Chromium).

The page must render without a single console message (no script, no failed load) and the rendered
page must hold the charts: the DOM Chromium builds has every chart the summary calls for, and the
screenshot has the pixels of their bars, so the SVG is drawn and not only present in the file.
`make browser` (run by .ci/run) installs Debian's chromium when it is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH, and `make browser` (apt-get install chromium) could not install it"
)
BAR_RGB, BIN_RGB = (0x4C, 0x72, 0xB0), (0xDD, 0x84, 0x52)
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]


class _Charts(HTMLParser):
    """The aria-label of every <svg class="chart"> in a DOM, and how many bars and bins they draw."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.shapes = {"bar": 0, "bin": 0}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg" and found.get("class") == "chart":
            self.titles.append(found.get("aria-label") or "")
        if tag == "rect" and found.get("class") in self.shapes:
            self.shapes[str(found["class"])] += 1


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, pg_conn: str) -> Path:
    """`milvusdiff demo` as a user runs it, in a fresh directory."""
    root = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MILVUS_TOKEN", "MILVUSDIFF_JOURNAL")}
    env.update({"MILVUSDIFF_HOME": str(root / ".milvusdiff"), "PG_CONN": pg_conn})
    executable = Path(sys.executable).parent / "milvusdiff"
    done = subprocess.run(
        [str(executable), "demo", "--rows", "400", "--out", "run"], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr[-3000:]
    return root / "run"


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    # A private profile: a shared one would let two runs (or a user's browser) meet.
    profile = cwd / "chromium-profile"
    command = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


def _expected_charts(summary: dict[str, object]) -> set[str]:
    columns = summary["columns"]
    assert isinstance(columns, dict)
    differing = {name for name, info in columns.items() if info["mismatches"]}
    deviations = {name for name in differing if columns[name]["kind"] in ("float", "float_list", "sparse")}
    assert deviations, "the demo corrupts vectors: at least one vector column must differ"
    return {"Keys by class", "Mismatches per column", "Verdicts: which store is wrong"} | {
        f"{name}: deviation" for name in deviations
    }


def test_demo_report_renders_its_charts_without_console_errors(demo_run: Path, tmp_path: Path) -> None:
    page = (demo_run / "report.html").resolve()
    done = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []

    charts = _Charts()
    charts.feed(done.stdout)
    summary = json.loads((demo_run / "summary.json").read_text())
    rendered = {t.split(": deviation")[0] + ": deviation" if ": deviation" in t else t for t in charts.titles}
    assert _expected_charts(summary) <= rendered
    assert charts.shapes["bar"] > 0 and charts.shapes["bin"] > 0


def test_demo_report_charts_are_drawn(demo_run: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    page = (demo_run / "report.html").resolve()
    done = _chromium(f"--screenshot={shot}", "--window-size=1000,6000", page.as_uri(), cwd=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-3000:]
    pixels = np.round(imread(shot)[:, :, :3] * 255).astype(np.int64)
    for colour in (BAR_RGB, BIN_RGB):
        assert (np.abs(pixels - np.array(colour)).sum(axis=2) <= 6).sum() > 100, f"no {colour} pixels drawn"
