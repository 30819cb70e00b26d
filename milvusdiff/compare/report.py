"""report.md and report.html: the summary tables and a sample of differences, for a person to read.

Both are rendered from one document model (sections of headed tables, notes and charts), which the
terminal view reuses, so the three always say the same thing. Columns that differ come first and
the rest fold into one line: a report on a 20-column collection with one bad column should show one
column. Charts are drawn only in HTML (inline SVG, see charts.py).

Everything they show comes from the typed Summary written to summary.json (deviation histograms
included), plus the sample rows; so summary.json and the reports cannot disagree.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from milvusdiff.compare.charts import BarChart, Histogram
from milvusdiff.compare.plan import a_col, b_col
from milvusdiff.compare.summary import DIFFERENCE_CLASSES, Deviations, Summary
from milvusdiff.compare.values import describe_change, fmt

__all__ = ["Section", "build_sections", "render_html", "render_markdown", "write_outputs"]

_DEVIATION_KINDS = ("float", "float_list", "sparse")


@dataclass
class Section:
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    charts: list[BarChart | Histogram] = field(default_factory=list)


def _side_note(summary: Summary, side: str) -> str:
    """`A (milvus): path` when the manifests name the stores, else `A: path`."""
    name, label = summary.sides.of(side), side.upper()
    return f"{label if name == label else f'{label} ({name})'}: {summary.inputs.of(side).path}"


def _result(summary: Summary) -> str:
    if summary.different:
        return "DIFFERENCES FOUND"
    if summary.store_warnings:
        return f"the rows agree, but the stores raised {len(summary.store_warnings)} warning(s)"
    return "no differences"


def _headline(summary: Summary) -> Section:
    notes = [_side_note(summary, side) for side in ("a", "b")]
    notes += [
        f"key: {', '.join(summary.key)} · engine: {summary.engine} · {summary.elapsed_seconds} s",
        f"result: {_result(summary)}",
    ]
    if summary.inputs.journal:
        notes.append(f"journal: {summary.inputs.journal}")
    if summary.lower_bound:
        notes.append(f"stopped after {summary.max_diffs} differing keys (max_diffs): counts are lower bounds")
    return Section("milvusdiff compare", notes=notes)


def _warnings(summary: Summary) -> Section | None:
    """Store warnings make the exit code 1 even when the rows agree, so the report must show them."""
    if not summary.store_warnings:
        return None
    return Section("Store warnings", notes=list(summary.store_warnings))


def _counts(summary: Summary) -> Section:
    bound = "≥ " if summary.lower_bound else ""
    rows = [["rows_a", fmt(summary.rows_a)], ["rows_b", fmt(summary.rows_b)]]
    for name in DIFFERENCE_CLASSES:
        rows.append([name, f"{bound}{getattr(summary, name)}"])
    unchanged = summary.unchanged
    rows.append(["unchanged", fmt(unchanged) if unchanged is not None else "unknown"])
    bars = [(name, int(getattr(summary, name))) for name in DIFFERENCE_CLASSES]
    if unchanged is not None:
        bars.append(("unchanged", int(unchanged)))
    notes = []
    if summary.against_journal:
        rows.append(["against_journal", str(summary.against_journal)])
        bars.append(("against_journal", summary.against_journal))
        notes.append(
            f"against_journal: {summary.against_journal} keys on which both stores agree, but not with the "
            "journal (deleted, changed or added in both behind the client's back): both wrong"
        )
    if summary.staged is not None:
        staged = summary.staged
        notes.append(
            f"staged: {staged.settled} of {staged.buckets} buckets settled from the manifests; "
            f"{fmt(staged.candidate_keys)} keys with differing digests read in full"
        )
    return Section("Keys", ["class", "count"], rows, notes, charts=[BarChart("Keys by class", bars)])


def _deviation_chart(name: str, mismatches: int, histogram: Deviations) -> Histogram:
    """One column's deviations; rows the histogram cannot place are counted in a note, never dropped."""
    bins = [(b.low, b.high, b.count) for b in histogram.bins]
    drawn = sum(count for _, _, count in bins)
    notes = []
    if histogram.zero:
        notes.append(f"{histogram.zero} rows with deviation 0 (e.g. -0.0 against 0.0): not drawn")
    if histogram.nan:
        notes.append(f"{histogram.nan} rows with null or NaN on one side: not drawn")
    if mismatches > histogram.total:
        notes.append(f"{mismatches - histogram.total} rows whose lengths or sparse indices differ: not drawn")
    return Histogram(f"{name}: deviation of {drawn} of {mismatches} differing rows", bins, notes)


def _columns(summary: Summary) -> Section:
    """Differing columns, most mismatches first, with their charts; the others in one line."""
    columns = summary.columns
    differing = sorted((n for n in columns if columns[n].mismatches), key=lambda n: -columns[n].mismatches)
    rows = [
        [
            name,
            columns[name].kind,
            str(columns[name].mismatches),
            f"{columns[name].max_deviation:.3g}" if columns[name].max_deviation is not None else "",
        ]
        for name in differing
    ]
    same = [n for n in columns if not columns[n].mismatches]
    notes = [f"{len(same)} columns without mismatches: {', '.join(same)}"] if same else []
    for label, names in (
        ("only in A", summary.columns_only_a),
        ("only in B", summary.columns_only_b),
        ("ignored", summary.columns_ignored),
    ):
        if names:
            notes.append(f"columns {label}: {', '.join(names)}")
    for name, why in summary.columns_incomparable.items():
        notes.append(f"column {name} not compared, types differ: {why}")
    charts: list[BarChart | Histogram] = []
    if differing:
        charts.append(BarChart("Mismatches per column", [(n, int(columns[n].mismatches)) for n in differing]))
    charts += [
        _deviation_chart(name, columns[name].mismatches, deviations)
        for name in differing
        if columns[name].kind in _DEVIATION_KINDS and (deviations := columns[name].deviations) is not None
    ]
    headers = ["column", "kind", "mismatches", "max deviation"] if rows else []
    return Section("Columns", headers, rows, notes, charts)


def _verdicts(summary: Summary) -> Section | None:
    if summary.verdicts is None:
        return None
    labels = summary.verdict_labels
    rows = [[labels[v], str(n)] for v, n in summary.verdicts.items()]
    chart = BarChart("Verdicts: which store is wrong", [(labels[v], int(n)) for v, n in summary.verdicts.items()])
    return Section("Verdicts (journal arbitration)", ["verdict", "keys"], rows, charts=[chart])


def what_differs(
    row: Mapping[str, Any], types: Mapping[str, pa.DataType] | None = None, sides: tuple[str, str] = ("A", "B")
) -> str:
    """One differing key of a diff, in words: the changed fields only (A → B), or where the row is.

    `types` maps `<col>__a` names to their Arrow types (the schema of diff.parquet), so floats print
    at their own width; without it they print as float64. `sides` names the stores ('milvus', 'pg').
    """
    cls = row["class"]
    if cls.startswith("duplicate"):
        return f"{row['count_a']} rows in {sides[0]}, {row['count_b']} in {sides[1]}"
    if cls.startswith("only"):
        return f"only in {sides[0] if cls == 'only_a' else sides[1]}"
    types = types or {}
    return "; ".join(
        f"{c}: {describe_change(row[a_col(c)], row[b_col(c)], types.get(a_col(c)))}"
        for c in row["changed_columns"] or []
    )


NO_JOURNAL = "no journal"


def verdict_text(row: Mapping[str, Any], summary: Summary) -> str:
    """The verdict in the stores' names ('milvus wrong'), or why there is none."""
    verdict = row.get("verdict")
    return str(summary.verdict_labels.get(verdict, verdict)) if verdict else NO_JOURNAL


def key_headers(summary: Summary) -> list[str]:
    return [", ".join(summary.key), "class", "what differs (A → B)", "verdict"]


def key_row(row: Mapping[str, Any], summary: Summary, types: Mapping[str, pa.DataType] | None) -> list[str]:
    """One differing key as every report and command prints it: key, class, what differs, verdict."""
    key = ", ".join(fmt(row[k]) for k in summary.key)
    sides = (summary.sides.a, summary.sides.b)
    return [key, row["class"], what_differs(row, types, sides), verdict_text(row, summary)]


def _sample_section(summary: Summary, sample: list[dict[str, Any]], types: Mapping[str, pa.DataType] | None) -> Section:
    rows = [key_row(row, summary, types) for row in sample]
    return Section("Sample of differences", key_headers(summary), rows)


def build_sections(
    summary: Summary, sample: list[dict[str, Any]], types: Mapping[str, pa.DataType] | None = None
) -> list[Section]:
    sections = [_headline(summary), _warnings(summary), _counts(summary), _columns(summary), _verdicts(summary)]
    if sample:
        sections.append(_sample_section(summary, sample, types))
    return [s for s in sections if s is not None]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: list[Section]) -> str:
    lines: list[str] = []
    for depth, section in enumerate(sections):
        lines += [f"{'#' if depth == 0 else '##'} {section.title}", ""]
        if section.headers:
            lines.append("| " + " | ".join(map(_md_cell, section.headers)) + " |")
            lines.append("|" + "---|" * len(section.headers))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in section.rows]
            lines.append("")
        lines += [f"- {_md_cell(note)}" for note in section.notes]
        if section.notes:
            lines.append("")
    return "\n".join(lines)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-variant-numeric:tabular-nums}"
    "th{background:#f3f3f3}figure{margin:1em 0}"
)


def render_html(sections: list[Section]) -> str:
    """A self-contained page: inline CSS and SVG, nothing fetched from anywhere."""
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(sections[0].title)}</title>"]
    parts.append(f"<style>{_CSS}</style></head><body>")
    for depth, section in enumerate(sections):
        tag = "h1" if depth == 0 else "h2"
        parts.append(f"<{tag}>{e(section.title)}</{tag}>")
        if section.headers:
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in section.headers) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in section.rows]
            parts.append("</table>")
        if section.notes:
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in section.notes) + "</ul>")
        parts += [f"<figure>{chart.svg()}</figure>" for chart in section.charts]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_outputs(out: Path, summary: Summary, sample: list[dict[str, Any]]) -> None:
    """summary.json, report.md and report.html into `out`, all from the one Summary, so they cannot disagree;
    the sample's values are formatted by the types of the diff.parquet beside them."""
    summary.write(out)
    schema = pq.read_schema(out / "diff.parquet")
    types = {name: schema.field(name).type for name in schema.names}
    sections = build_sections(summary, sample, types)
    (out / "report.md").write_text(render_markdown(sections), encoding="utf-8")
    (out / "report.html").write_text(render_html(sections), encoding="utf-8")
