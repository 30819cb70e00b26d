"""report.md and report.html: the summary tables and a sample of differences, for a person to read.

Both are rendered from one document model (sections of headed tables), which the terminal view
reuses, so the three always say the same thing.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VALUE_CHARS = 60
_VECTOR_ITEMS = 4


@dataclass
class Section:
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, list):
        shown = ", ".join(fmt(v) for v in value[:_VECTOR_ITEMS])
        more = f", … ({len(value)} items)" if len(value) > _VECTOR_ITEMS else ""
        return f"[{shown}{more}]"
    if isinstance(value, bytes):
        value = value.hex()
    text = str(value)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _side_note(summary: dict[str, Any], side: str) -> str:
    """`A (milvus): path` when the manifests name the stores, else `A: path`."""
    name, label = summary["sides"][side], side.upper()
    return f"{label if name == label else f'{label} ({name})'}: {summary['inputs'][side]['path']}"


def _headline(summary: dict[str, Any]) -> Section:
    inputs = summary["inputs"]
    notes = [_side_note(summary, side) for side in ("a", "b")]
    notes += [
        f"key: {', '.join(summary['key'])} · engine: {summary['engine']} · {summary['elapsed_seconds']} s",
        "result: " + ("DIFFERENCES FOUND" if summary["different"] else "no differences"),
    ]
    if inputs["journal"]:
        notes.append(f"journal: {inputs['journal']}")
    if summary["lower_bound"]:
        notes.append(f"stopped after --max-diffs {summary['max_diffs']}: counts are lower bounds")
    return Section("milvusdiff compare", notes=notes)


def _counts(summary: dict[str, Any]) -> Section:
    bound = "≥ " if summary["lower_bound"] else ""
    rows = [["rows_a", fmt(summary["rows_a"])], ["rows_b", fmt(summary["rows_b"])]]
    for name in ("only_a", "only_b", "changed", "duplicate_a", "duplicate_b"):
        rows.append([name, f"{bound}{summary[name]}"])
    rows.append(["unchanged", fmt(summary["unchanged"]) if summary["unchanged"] is not None else "unknown"])
    return Section("Keys", ["class", "count"], rows)


def _columns(summary: dict[str, Any]) -> Section:
    rows = [
        [
            name,
            info["kind"],
            str(info["mismatches"]),
            fmt(info["max_deviation"]) if info["max_deviation"] is not None else "",
        ]
        for name, info in summary["columns"].items()
    ]
    notes = []
    for label, key in (
        ("only in A", "columns_only_a"),
        ("only in B", "columns_only_b"),
        ("ignored", "columns_ignored"),
    ):
        if summary[key]:
            notes.append(f"columns {label}: {', '.join(summary[key])}")
    for name, why in summary["columns_incomparable"].items():
        notes.append(f"column {name} not compared, types differ: {why}")
    return Section("Columns", ["column", "kind", "mismatches", "max deviation"], rows, notes)


def _verdicts(summary: dict[str, Any]) -> Section | None:
    if summary["verdicts"] is None:
        return None
    labels = summary["verdict_labels"]
    rows = [[labels[v], str(n)] for v, n in summary["verdicts"].items()]
    return Section("Verdicts (journal arbitration)", ["verdict", "keys"], rows)


def _sample_section(summary: dict[str, Any], sample: list[dict[str, Any]]) -> Section:
    keys = summary["key"]
    labels = summary["verdict_labels"]
    rows = []
    for row in sample:
        details = "; ".join(f"{c}: {fmt(row[f'{c}__a'])} → {fmt(row[f'{c}__b'])}" for c in row["changed_columns"] or [])
        if row["class"].startswith("duplicate"):
            details = f"{row['count_a']} rows in A, {row['count_b']} in B"
        elif row["class"].startswith("only"):
            details = f"only in {row['class'][-1].upper()}"
        verdict = labels.get(row["verdict"], "") if row["verdict"] else ""
        rows.append([", ".join(fmt(row[k]) for k in keys), row["class"], details, verdict])
    return Section("Sample of differences", [", ".join(keys), "class", "what differs (A → B)", "verdict"], rows)


def build_sections(summary: dict[str, Any], sample: list[dict[str, Any]]) -> list[Section]:
    sections = [_headline(summary), _counts(summary), _columns(summary), _verdicts(summary)]
    if sample:
        sections.append(_sample_section(summary, sample))
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
    "th{background:#f3f3f3}"
)


def render_html(sections: list[Section]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(sections[0].title)}</title>"]
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
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_reports(out: Path, summary: dict[str, Any], sample: list[dict[str, Any]]) -> None:
    sections = build_sections(summary, sample)
    (out / "report.md").write_text(render_markdown(sections), encoding="utf-8")
    (out / "report.html").write_text(render_html(sections), encoding="utf-8")
