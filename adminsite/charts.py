"""Charts drawn on the server as inline SVG: no chart library, no script, no request to anyone.

Every mark carries a `<title>` (the browser shows its numbers on hover) and the templates print the same
numbers beside each chart. Labels are escaped: connection names and dispositions are tenant text.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#2457d6", "#1a9e77", "#e6a100", "#d0453a", "#7b52ab", "#00a0b0", "#8c6d31", "#6b7a8f"]
# Call statuses keep one colour everywhere: green finished, blues in progress, warm colours failed.
STATUS_COLORS = {
    "Completed": "#1a9e77",
    "Answered": "#00a0b0",
    "Ringing": "#5b8def",
    "Initiating": "#9aa5b1",
    "Decline": "#e6a100",
    "Rejected — Capacity": "#7b52ab",
    "Trigger Failed": "#d0453a",
    "SIP Call Failed": "#8e1f1f",
    "delivered": "#1a9e77",
    "failed": "#d0453a",
    "pending": "#9aa5b1",
    # campaign rows (pending and failed as for deliveries)
    "completed": "#1a9e77",
    "calling": "#00a0b0",
    "skipped": "#e6a100",
}
FONT = 'font-family="system-ui, sans-serif" font-size="11" fill="currentColor"'  # a constant: no input


def color_for(key: str, position: int) -> str:
    return STATUS_COLORS.get(key, PALETTE[position % len(PALETTE)])


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    head = format_html(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" '
        'role="img" aria-label="{}">',
        width,
        height,
        width,
        height,
        label,
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 - every part was built by format_html


def _rect(x: float, y: float, w: float, h: float, color: str, title: str) -> str:
    return format_html(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        _n(x),
        _n(y),
        _n(max(w, 0)),
        _n(max(h, 0)),
        color,
        title,
    )


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    head = f'<text x="{{}}" y="{{}}" text-anchor="{{}}" {FONT}>{{}}</text>'
    return format_html(head, _n(x), _n(y), anchor, text)


def _n(value: float) -> str:
    # format_html escapes its arguments into strings first, so numbers are formatted before.
    return f"{value:.1f}"


def nice_max(value: int) -> int:
    """The axis maximum: the value rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def stacked_columns(labels: list[str], series: dict[str, list[int]], *, label: str) -> SafeString:
    """One column per label, stacked by series; a legend under the axis."""
    width, height, left, top, plot_h = 660, 250, 34, 10, 170
    column = (width - left - 10) / max(len(labels), 1)
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top_value = nice_max(max(totals, default=0))
    body = [_axis(left, top, plot_h, width, top_value)]
    for i, name in enumerate(labels):
        y: float = top + plot_h
        for position, (key, values) in enumerate(series.items()):
            if not values[i]:
                continue
            h = values[i] / top_value * plot_h
            y -= h
            body.append(
                _rect(left + i * column + 3, y, column - 6, h, color_for(key, position), f"{name} · {key}: {values[i]}")
            )
        if totals[i]:
            body.append(_text(left + (i + 0.5) * column, y - 3, str(totals[i]), "middle"))
        if len(labels) <= 7 or (len(labels) - 1 - i) % 2 == 0:  # every other day, always today
            body.append(_text(left + (i + 0.5) * column, top + plot_h + 14, name, "middle"))
    body.append(_legend(list(series), top + plot_h + 34, left))
    return _svg(width, height, label, body)


def _axis(left: int, top: int, plot_h: int, width: int, top_value: int) -> str:
    parts: list[str] = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#c8ced6" stroke-width="1"/>',
                left,
                width - 10,
                _n(y),
                _n(y),
            )
        )
        value = top_value * fraction
        parts.append(_text(left - 4, y + 4, f"{value:g}", "end"))
    return "".join(parts)


def _legend(keys: list[str], y: int, left: int) -> str:
    parts, x = [], left
    for position, key in enumerate(keys):
        parts.append(_rect(x, y - 9, 10, 10, color_for(key, position), key))
        parts.append(_text(x + 14, y, key))
        x += 24 + 7 * len(key)
    return "".join(parts)


def horizontal_bars(rows: Sequence[tuple[str, float, str]], *, label: str, color_by_label: bool = True) -> SafeString:
    """One bar per `(label, value, caption)`; the caption is printed after the bar and on hover."""
    width, row_h, left = 660, 26, 170
    top_value = max((value for _, value, _ in rows), default=0) or 1
    body = []
    for i, (name, value, caption) in enumerate(rows):
        y = 6 + i * row_h
        bar = (width - left - 190) * value / top_value
        color = color_for(name, i) if color_by_label else PALETTE[0]
        body.append(_text(left - 8, y + 14, _clip(name, 26), "end"))
        body.append(_rect(left, y + 3, max(bar, 2), row_h - 8, color, f"{name}: {caption}"))
        body.append(_text(left + bar + 6, y + 14, caption))
    return _svg(width, max(len(rows), 1) * row_h + 10, label, body)


def latency_bars(rows: Sequence[tuple[str, int, int, str]], *, label: str) -> SafeString:
    """Per row `(name, p50_ms, p95_ms, caption)`: a light p95 bar with the p50 bar drawn over it."""
    width, row_h, left = 660, 30, 170
    top_value = max((p95 for _, _, p95, _ in rows), default=0) or 1
    scale = (width - left - 250) / top_value
    body = []
    for i, (name, p50, p95, caption) in enumerate(rows):
        y = 6 + i * row_h
        body.append(_text(left - 8, y + 16, _clip(name, 26), "end"))
        body.append(_rect(left, y + 4, max(p95 * scale, 2), row_h - 10, "#a9c1f5", f"{name}: p95 {p95} ms"))
        body.append(_rect(left, y + 4, max(p50 * scale, 2), row_h - 10, "#2457d6", f"{name}: p50 {p50} ms"))
        body.append(_text(left + p95 * scale + 6, y + 16, caption))
    return _svg(width, max(len(rows), 1) * row_h + 10, label, body)


def share_bar(parts: list[tuple[str, int]], *, label: str) -> SafeString:
    """One bar split by share (e.g. delivered / failed / pending), with a legend giving the counts."""
    width, left, bar_w = 660, 10, 640
    total = sum(value for _, value in parts) or 1
    body, x = [], float(left)
    for position, (name, value) in enumerate(parts):
        w = bar_w * value / total
        if value:
            body.append(_rect(x, 6, w, 26, color_for(name, position), f"{name}: {value} ({value / total:.0%})"))
        x += w
    legend = [(f"{name} {value}", name) for name, value in parts]
    parts_svg, lx = [], left
    for position, (text, key) in enumerate(legend):
        parts_svg.append(_rect(lx, 44, 10, 10, color_for(key, position), text))
        parts_svg.append(_text(lx + 14, 53, text))
        lx += 30 + 7 * len(text)
    return _svg(width, 64, label, body + parts_svg)


def progress_bars(rows: Sequence[tuple[str, dict[str, int], str]], *, label: str) -> SafeString:
    """Per row `(name, {part: count}, caption)`: one full-width bar split by the parts' shares, the
    caption after it; a legend of the parts under the bars."""
    width, row_h, left, bar_w = 660, 28, 170, 300
    body: list[str] = []
    for i, (name, parts, caption) in enumerate(rows):
        y = 6 + i * row_h
        total = sum(parts.values()) or 1
        body.append(_text(left - 8, y + 15, _clip(name, 26), "end"))
        x = float(left)
        for position, (part, count) in enumerate(parts.items()):
            if count:
                w = bar_w * count / total
                body.append(_rect(x, y + 4, w, row_h - 10, color_for(part, position), f"{name} · {part}: {count}"))
                x += w
        body.append(_text(left + bar_w + 8, y + 15, caption))
    keys = list(rows[0][1]) if rows else []
    legend_y = 6 + len(rows) * row_h + 14
    body.append(_legend(keys, legend_y, left))
    return _svg(width, legend_y + 10, label, body)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
