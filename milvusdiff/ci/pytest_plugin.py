"""pytest plugin: a suite's Milvus writes, proven correct by adding one flag.

Registered through the `pytest11` entry point, so installing milvusdiff is enough; it does nothing
until asked:

- the `milvusdiff_client` fixture (session-scoped) is a ShadowClient on the stores the CLI would use
  (MILVUS_URI, PG_CONN, MILVUSDIFF_JOURNAL, ...);
- `pytest --milvusdiff-validate` validates, after the last test, every collection the suite wrote
  through the journal, and fails the session if any differs;
- `@pytest.mark.milvusdiff_validate` validates what one test wrote as soon as it returns, and fails
  that test.

Which collections a test wrote is read from the journal (the operations logged after a bookmark),
not guessed from test code, so writes made through any ShadowClient on the same journal count.
This module is imported by every pytest run in an environment where milvusdiff is installed: it
imports nothing heavy at module level.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from milvusdiff.ci.gate import GateCase
    from milvusdiff.client.shadow import ShadowClient
    from milvusdiff.config import Settings

MARKER = "milvusdiff_validate"
_BOOKMARK = pytest.StashKey[int]()
_SETTINGS = pytest.StashKey["Settings"]()
_OUTCOME = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("milvusdiff", "prove the suite's Milvus writes with milvusdiff")
    group.addoption(
        "--milvusdiff-validate",
        action="store_true",
        help="after the session, validate every collection written through the journal; any difference fails it",
    )
    group.addoption(
        "--milvusdiff-out",
        metavar="DIR",
        help="where validation outputs go [default: <milvusdiff home>/runs/pytest-<time>]",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: validate the collections this test wrote, and fail it if they differ"
    )


def _settings(config: pytest.Config) -> Settings:
    if _SETTINGS not in config.stash:
        from milvusdiff.config import Settings

        config.stash[_SETTINGS] = Settings.resolve()
    return config.stash[_SETTINGS]


def _bookmark(settings: Settings) -> int:
    from milvusdiff.services.journal import Journal

    if not settings.journal_path.exists():
        return 0  # no journal yet: every operation the suite logs comes after this bookmark
    with Journal(settings.journal_path, readonly=True) as journal:
        return journal.last_seq()


def _written_since(settings: Settings, bookmark: int) -> tuple[list[str], list[str]]:
    """(collections to validate, collections dropped) among those written after `bookmark`."""
    from milvusdiff.services.journal import Journal

    last_op: dict[str, str] = {}
    if not settings.journal_path.exists():
        return [], []
    with Journal(settings.journal_path, readonly=True) as journal:
        for record in journal.ops_since(bookmark):
            last_op[record["collection"]] = record["op"]
    live = sorted(c for c, op in last_op.items() if op != "drop_collection")
    dropped = sorted(c for c, op in last_op.items() if op == "drop_collection")
    return live, dropped


def _out_root(config: pytest.Config, settings: Settings, label: str) -> Path:
    chosen = config.getoption("--milvusdiff-out")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = Path(chosen) if chosen else settings.home / "runs" / f"pytest-{stamp}"
    return base / label


def _validate(config: pytest.Config, settings: Settings, collections: list[str], label: str) -> list[GateCase]:
    from milvusdiff.workflow.validate_all import validate_all

    if not collections:
        return []
    # A rerun into the same --milvusdiff-out replaces that earlier run's output (and only such an output).
    root = _out_root(config, settings, label)
    return validate_all(root, collections=collections, settings=settings, overwrite=True).cases


@pytest.fixture(scope="session")
def milvusdiff_client(pytestconfig: pytest.Config) -> Iterator[ShadowClient]:
    """A ShadowClient on the configured stores, shared by the session (as Milvus QA suites use one)."""
    from milvusdiff.client.shadow import ShadowClient

    client = ShadowClient.from_settings(_settings(pytestconfig))
    try:
        yield client
    finally:
        client.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.getoption("--milvusdiff-validate"):
        session.config.stash[_BOOKMARK] = _bookmark(_settings(session.config))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """With the marker, the test fails when the collections it wrote do not validate."""
    if item.get_closest_marker(MARKER) is None:
        return (yield)
    settings = _settings(item.config)
    bookmark = _bookmark(settings)
    result = yield
    live, _ = _written_since(settings, bookmark)
    failed = [c for c in _validate(item.config, settings, live, _safe_label(item.nodeid)) if not c.passed]
    if failed:
        pytest.fail("milvusdiff: " + "\n".join(c.line for c in failed), pytrace=False)
    return result


def _safe_label(nodeid: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in nodeid)[:120]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _BOOKMARK not in config.stash:
        return
    settings = _settings(config)
    live, dropped = _written_since(settings, config.stash[_BOOKMARK])
    cases = _validate(config, settings, live, "session")
    lines = [f"milvusdiff: {c.line}" for c in cases]
    lines += [f"milvusdiff: {name}: dropped during the session, not validated" for name in dropped]
    if not live and not dropped:
        lines.append("milvusdiff: no collection was written during the session")
    config.stash[_OUTCOME] = lines
    if any(not c.passed for c in cases) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_OUTCOME, None)
    if not lines:
        return
    terminalreporter.section("milvusdiff validation")
    for line in lines:
        terminalreporter.write_line(line)
