"""Snapshots are checked against their manifest on every read, and fully by `milvusdiff verify`.

Each case tampers with a real snapshot written by milvusdiff's own SnapshotWriter (the export's writer)
the way the adversarial pass did, and checks that compare (both engines), `compare --journal` and verify
refuse it with exit code 2 and one line naming the file, where before they passed silently.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_compare_truth import SPEC, build_tables

from milvusdiff.cli.main import main
from milvusdiff.export.manifest import Manifest
from milvusdiff.export.prepare import Batch
from milvusdiff.export.writer import SnapshotWriter
from milvusdiff.snapshot_format import FORMAT_META, FORMAT_VERSION, MANIFEST_META

ROWS_PER_PART = 40  # build_tables() has 120 rows: three parts


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def one_line(code: int, err: str, *phrases: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("milvusdiff: ") and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def export_table(table: pa.Table, out: Path, source: str = "milvus") -> Path:
    """A snapshot exactly as export writes it: SnapshotWriter, key census, manifest, publication."""
    schema = table.schema.with_metadata({**(table.schema.metadata or {}), b"milvusdiff.source": source.encode()})
    writer = SnapshotWriter(out, schema, "id", rows_per_part=ROWS_PER_PART)
    for start in range(0, table.num_rows, ROWS_PER_PART):
        writer.write(Batch(table.slice(start, ROWS_PER_PART).replace_schema_metadata(schema.metadata)))
    files, keys = writer.close_data()
    manifest = Manifest(
        source=source,
        collection=SPEC.name,
        spec=SPEC.to_dict(),
        primary_key="id",
        primary_key_type="INT64",
        rows_written=writer.rows,
        distinct_keys=keys.distinct_keys,
        files=files,
    )
    writer.publish(manifest)
    return out


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    a, b, _ = build_tables()
    root = tmp_path_factory.mktemp("snapshots")
    return export_table(a, root / "a"), export_table(b, root / "b", "pg")


@pytest.fixture
def snaps(pristine: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """Fresh copies to tamper with."""
    a, b = (Path(shutil.copytree(p, tmp_path / p.name)) for p in pristine)
    return a, b


def _manifest(snapshot: Path) -> dict:
    return json.loads((snapshot / "manifest.json").read_text())


def _write_manifest(snapshot: Path, manifest: dict) -> None:
    (snapshot / "manifest.json").write_text(json.dumps(manifest))


def _drop_five_rows(snapshot: Path) -> str:
    part = snapshot / "part-00001.parquet"
    table = pq.read_table(part)
    pq.write_table(table.slice(5), part)
    return part.name


def _edit_rows_written(snapshot: Path) -> str:
    manifest = _manifest(snapshot)
    manifest["rows_written"] -= 5
    _write_manifest(snapshot, manifest)
    return "rows_written"


def _no_files(snapshot: Path) -> str:
    manifest = _manifest(snapshot)
    manifest["files"] = []
    _write_manifest(snapshot, manifest)
    return "part-00000.parquet: not listed in the manifest"


def _path_outside(snapshot: Path) -> str:
    other = snapshot.parent / "other"
    other.mkdir()
    shutil.copy(snapshot / "part-00000.parquet", other / "part-00000.parquet")
    manifest = _manifest(snapshot)
    manifest["files"][0]["name"] = "../other/part-00000.parquet"
    _write_manifest(snapshot, manifest)
    return "'../other/part-00000.parquet', a path outside the snapshot"


def _extra_part(snapshot: Path) -> str:
    shutil.copy(snapshot / "part-00002.parquet", snapshot / "part-00003.parquet")
    return "part-00003.parquet: not listed in the manifest"


def _missing_part(snapshot: Path) -> str:
    (snapshot / "part-00002.parquet").unlink()
    return "part-00002.parquet: listed in the manifest but missing"


def flip_vector_byte(part: Path) -> None:
    """One bit of one float in an (uncompressed) vector page: the file still decodes, to a wrong value."""
    column = pq.read_table(part, columns=["vec"]).column("vec").combine_chunks()
    needle = np.asarray(column.values)[3 * column.type.list_size :][:2].tobytes()
    data = bytearray(part.read_bytes())
    at = data.find(needle)
    assert at > 0 and data.find(needle, at + 1) < 0
    data[at + 1] ^= 0x01
    part.write_bytes(bytes(data))


def _flipped_page_byte(snapshot: Path) -> str:
    flip_vector_byte(snapshot / "part-00001.parquet")
    return "part-00001.parquet: column 'vec'"


TAMPERING = {
    "part rewritten without 5 rows": (_drop_five_rows, "part-00001.parquet"),
    "rows_written edited": (_edit_rows_written, None),
    "files: []": (_no_files, None),
    "a listed path outside the snapshot": (_path_outside, None),
    "an extra unlisted part": (_extra_part, None),
    "a listed part missing": (_missing_part, None),
    "a flipped byte in a vector page": (_flipped_page_byte, None),
}


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_compare_refuses_a_tampered_snapshot(
    snaps: tuple[Path, Path], capsys: pytest.CaptureFixture[str], case: str, engine: str
) -> None:
    a, b = snaps
    assert run(["compare", str(a), str(b), "--engine", engine], capsys)[0] == 1  # intact: the differences
    tamper, phrase = TAMPERING[case]
    said = tamper(b)
    code, _, err = run(["compare", str(a), str(b), "--engine", engine], capsys)
    one_line(code, err, "input B", phrase or said)


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_refuses_a_tampered_snapshot(
    snaps: tuple[Path, Path], capsys: pytest.CaptureFixture[str], case: str
) -> None:
    _, b = snaps
    code, out, _ = run(["verify", str(b)], capsys)
    assert code == 0 and "intact (3 files, " in out and "rows, 3 sha256 checked)" in out
    tamper, phrase = TAMPERING[case]
    said = tamper(b)
    one_line(*run(["verify", str(b)], capsys)[::2], phrase or said)


def test_verify_hashes_what_a_read_does_not_touch(snaps: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """A read checks the pages it reads; verify hashes every byte. A changed vector page goes unread by a
    comparison of other columns, and is caught by verify's sha256 (and page checksum)."""
    a, b = snaps
    shutil.rmtree(b)
    shutil.copytree(a, b)
    flip_vector_byte(b / "part-00000.parquet")
    code, out, _ = run(["compare", str(a), str(b), "--columns", "i32,title", "--format", "json"], capsys)
    assert code == 1 and json.loads(out)["changed"] == 0  # read fine (exit 1: build_tables() repeats a key)
    one_line(*run(["verify", str(b)], capsys)[::2], "part-00000.parquet")


def test_a_journal_snapshot_is_checked_when_it_arbitrates(
    snaps: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_compare_truth import write_journal

    from milvusdiff.export.manifest import FileEntry

    a, b = snaps
    journal = write_journal(tmp_path / "journal", {1: ("EXISTS", None)})
    parts = sorted(journal.glob("part-*.parquet"))
    entries = [FileEntry(p.name, pq.ParquetFile(p).metadata.num_rows, p.stat().st_size, None) for p in parts]
    rows = sum(e.rows for e in entries)
    _write_manifest(
        journal, Manifest(source="journal", collection=SPEC.name, rows_written=rows, files=entries).to_dict()
    )
    assert run(["compare", str(a), str(b), "--journal", str(journal)], capsys)[0] == 1
    shutil.copy(parts[0], journal / "part-09999.parquet")
    one_line(*run(["compare", str(a), str(b), "--journal", str(journal)], capsys)[::2], "part-09999.parquet")


def test_a_newer_snapshot_format_is_refused(snaps: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = snaps
    assert _manifest(b)["format"] == FORMAT_VERSION
    assert pq.read_schema(b / "part-00000.parquet").metadata[FORMAT_META] == str(FORMAT_VERSION).encode()
    manifest = _manifest(b)
    manifest["format"] = FORMAT_VERSION + 1
    _write_manifest(b, manifest)
    one_line(*run(["compare", str(a), str(b)], capsys)[::2], f"snapshot format {FORMAT_VERSION + 1} is not supported")


def test_a_newer_format_in_a_single_file_is_refused(
    pristine: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = pristine
    table = pq.read_table(sorted(a.glob("part-*.parquet")))
    newer = {**table.schema.metadata, FORMAT_META: b"99"}
    pq.write_table(table.replace_schema_metadata(newer), tmp_path / "newer.parquet")
    one_line(*run(["compare", str(a), str(tmp_path / "newer.parquet")], capsys)[::2], "snapshot format 99")
    one_line(*run(["verify", str(tmp_path / "newer.parquet")], capsys)[::2], "snapshot format 99")


def test_a_single_file_snapshot_is_checked_against_its_own_manifest(
    pristine: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = pristine
    table = pq.read_table(sorted(a.glob("part-*.parquet")))
    one = export_table(table, tmp_path / "one.parquet")
    assert MANIFEST_META in pq.read_schema(one).metadata
    code, out, _ = run(["verify", str(one)], capsys)
    assert code == 0 and "intact (1 files, 121 rows" in out
    code, out, _ = run(["compare", str(a), str(one), "--format", "json"], capsys)
    assert code == 1 and json.loads(out)["changed"] == 0  # exit 1: build_tables() repeats a key
    flip_vector_byte(one)
    one_line(*run(["compare", str(a), str(one)], capsys)[::2], "one.parquet", "column 'vec'")


@pytest.mark.parametrize(
    ("name", "content"), [("rows.csv", "id,v\n1,2\n"), ("rows.json", '[{"id": 1}]'), ("rows.jsonl", '{"id": 1}\n')]
)
def test_other_formats_get_a_line_naming_what_is_read(
    pristine: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
) -> None:
    a, _ = pristine
    (tmp_path / name).write_text(content)
    for command in (["compare", str(a), str(tmp_path / name)], ["verify", str(tmp_path / name)]):
        line = one_line(*run(command, capsys)[::2], f"{name} is not a Parquet file")
        assert "Parquet files and snapshot directories" in line and "magic" not in line


def test_staged_compare_checks_only_the_buckets_it_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bucketed snapshots that agree are answered from their manifests; pages are checked where rows are read:
    a flipped byte in a settled bucket is verify's to find, one in a bucket being read stops compare."""
    from helpers.bucketed import write_bucketed

    a, _, _ = build_tables()
    a = a.slice(0, a.num_rows - 1)  # without its repeated key, so that whole buckets settle
    one = write_bucketed(a, SPEC, tmp_path / "one", 4, "milvus")
    two = write_bucketed(a, SPEC, tmp_path / "two", 4, "pg")
    flip_vector_byte(sorted(two.glob("part-b00001-*.parquet"))[0])
    code, out, err = run(["compare", str(one), str(two), "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["staged"]["examined"] == 0  # answered from the manifests: bucket 1 is never read
    one_line(*run(["verify", str(two)], capsys)[::2], "part-b00001-")
    manifest = _manifest(two)  # bucket 1 now looks different: it is read, and its pages checked
    manifest["bucket_stats"][1]["digest_sum"] = "0" * 32
    _write_manifest(two, manifest)
    one_line(*run(["compare", str(one), str(two)], capsys)[::2], "part-b00001-", "column 'vec'")
