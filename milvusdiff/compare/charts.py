"""Charts of report.html as inline SVG: bars for counts, a log-scale histogram for deviations.

Inline SVG because a report is attached to tickets, mailed and opened offline: it must need no
script, font or stylesheet from anywhere. Each chart is data plus an `svg()` method, so the report
model stays data and only the HTML renderer draws; every value is also written as text on the chart,
since counts are read, not estimated.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

_WIDTH = 640
_LABEL_WIDTH = 190
_VALUE_WIDTH = 70
_ROW = 22
_PLOT_HEIGHT = 150
_BAR_COLOUR = "#4c72b0"
_HIST_COLOUR = "#dd8452"


def _svg(title: str, height: int, body: list[str]) -> str:
    e = html.escape
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{e(title)}" font-family="sans-serif" font-size="12">'
        f"<title>{e(title)}</title>"
        f'<text x="0" y="14" font-weight="bold">{e(title)}</text>' + "".join(body) + "</svg>"
    )


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one per label, with the value written at the end of each."""

    title: str
    bars: list[tuple[str, int]]

    def svg(self) -> str:
        e = html.escape
        top = max((value for _, value in self.bars), default=0) or 1
        span = _WIDTH - _LABEL_WIDTH - _VALUE_WIDTH
        body = []
        for row, (label, value) in enumerate(self.bars):
            y = 24 + row * _ROW
            length = max(value / top * span, 1.0 if value else 0.0)
            body.append(f'<text x="{_LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{e(label)}</text>')
            body.append(
                f'<rect class="bar" x="{_LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" height="{_ROW - 6}" '
                f'fill="{_BAR_COLOUR}"><title>{e(label)}: {value}</title></rect>'
            )
            body.append(f'<text x="{_LABEL_WIDTH + length + 4:.1f}" y="{y + 15}">{value}</text>')
        return _svg(self.title, 30 + len(self.bars) * _ROW, body)


@dataclass(frozen=True)
class Histogram:
    """Counts on logarithmic bins ((low, high, count), adjacent and ascending) with decade ticks."""

    title: str
    bins: list[tuple[float, float, int]]
    notes: list[str] = field(default_factory=list)

    def svg(self) -> str:
        e = html.escape
        left, plot_width = 50, _WIDTH - 70
        top_y = 28
        base = top_y + _PLOT_HEIGHT
        peak = max((count for _, _, count in self.bins), default=0) or 1
        # Whole decades with one to spare on each side, so one filled bin reads as a bar, not as the plot.
        first, last = (self.bins[0][0], self.bins[-1][1]) if self.bins else (1.0, 10.0)
        low, high = math.floor(math.log10(first)) - 1.0, math.ceil(math.log10(last)) + 1.0
        scale = plot_width / (high - low)
        body = [
            f'<line x1="{left}" y1="{base}" x2="{left + plot_width}" y2="{base}" stroke="#888"/>',
            f'<text x="{left - 6}" y="{top_y + 10}" text-anchor="end">{peak}</text>',
            f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>',
        ]
        for lo, hi, count in self.bins:
            x, width = left + (math.log10(lo) - low) * scale, (math.log10(hi) - math.log10(lo)) * scale
            height = count / peak * _PLOT_HEIGHT
            body.append(
                f'<rect class="bin" x="{x:.1f}" y="{base - height:.1f}" width="{max(width - 1, 1):.1f}" '
                f'height="{height:.1f}" fill="{_HIST_COLOUR}"><title>{lo:.3g} to {hi:.3g}: {count}</title></rect>'
            )
        for exponent in range(math.ceil(low), math.floor(high) + 1):
            x = left + (exponent - low) * scale
            body.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#888"/>')
            body.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">1e{exponent}</text>')
        body.append(
            f'<text x="{left + plot_width / 2:.0f}" y="{base + 32}" text-anchor="middle">deviation |a - b| per row'
            " (largest element for vectors), log scale</text>"
        )
        for row, note in enumerate(self.notes):
            body.append(f'<text x="0" y="{base + 50 + row * 16}">{e(note)}</text>')
        return _svg(self.title, base + 40 + len(self.notes) * 16 + (6 if self.notes else 0), body)
