"""What the panels show, as escaped HTML and plain text: status badges, times, tables, logs.

Pure functions of the server's JSON and a clock, so they are tested without a kernel and cost
O(rows shown).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..sdk.logs import LogLine, printed

#: Status words and the JupyterLab colour that goes with each (the word is always shown too).
GOOD, BUSY, WAIT, BAD, GONE = "good", "busy", "wait", "bad", "gone"
TONE = {
    "success": GOOD,
    "ready": GOOD,
    "started": BUSY,
    "running": BUSY,
    "pending": BUSY,
    "pending_packaging": BUSY,
    "packaging": BUSY,
    "pending_resume": BUSY,
    "paused": WAIT,
    "pending_pause": WAIT,
    "pending_kill": WAIT,
    "crash_loop": BAD,
    "failed": BAD,
    "failure": BAD,
    "error": BAD,
    "timed_out": BAD,
    "unknown": BAD,
    "killed": GONE,
}
COLOUR = {
    GOOD: "var(--jp-success-color1, #388e3c)",
    BUSY: "var(--jp-brand-color1, #1976d2)",
    WAIT: "var(--jp-warn-color1, #f57c00)",
    BAD: "var(--jp-error-color1, #d32f2f)",
    GONE: "var(--jp-ui-font-color2, #757575)",
}
#: A mark per tone, so that the tone reads without colour as well as the word.
MARK = {GOOD: "✔", BUSY: "●", WAIT: "❚❚", BAD: "✖", GONE: "■"}
KIND_WORDS = {"Oneshot": "run once", "CronJob": "scheduled", "NetworkService": "continuous"}

_TABLE = (
    '<table style="border-collapse:collapse;width:100%;font-size:var(--jp-ui-font-size1, 13px)">'
)
_TH = (
    '<th style="text-align:left;padding:2px 8px;'
    'border-bottom:1px solid var(--jp-border-color1, #bdbdbd)">'
)
_TD = '<td style="text-align:left;padding:2px 8px;vertical-align:top">'
_SELECTED_STYLE = "background:var(--jp-layout-color2, #eeeeee)"
_MUTED = "color:var(--jp-ui-font-color2, #757575)"


def esc(value: object) -> str:
    """Text made safe to put in HTML; empty for None."""
    return "" if value is None else html.escape(str(value))


def words(status: object) -> str:
    """A status word for people: `timed_out` becomes `timed out`."""
    return "" if status is None else str(status).replace("_", " ")


def badge(status: object) -> str:
    """A status in its colour, with a mark and its word (never colour alone)."""
    if not status:
        return ""
    tone = TONE.get(str(status), BUSY)
    style = f"color:{COLOUR[tone]};font-weight:600;white-space:nowrap"
    return f'<span style="{style}">{MARK[tone]} {esc(words(status))}</span>'


def muted(text: str) -> str:
    """Secondary text, escaped and greyed."""
    return f'<span style="{_MUTED}">{esc(text)}</span>'


def parse_time(value: object) -> datetime | None:
    """A server time (ISO 8601 with offset); None when absent or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(timezone.utc)


def span(seconds: float) -> str:
    """A length of time in the two largest units: `4 s`, `3 min 4 s`, `2 h 5 min`, `3 days`."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return _two(whole // 60, "min", whole % 60, "s")
    if whole < 86400:
        return _two(whole // 3600, "h", whole % 3600 // 60, "min")
    days = whole // 86400
    return _two(days, "day" if days == 1 else "days", whole % 86400 // 3600, "h")


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big} {big_unit} {small} {small_unit}" if small else f"{big} {big_unit}"


def relative(value: object, at: datetime) -> str:
    """A time relative to `at`: `just now`, `3 min ago`, `in 2 h`; a date when far away."""
    moment = parse_time(value)
    if moment is None:
        return ""
    delta = (at - moment).total_seconds()
    if abs(delta) < 5:
        return "just now"
    if abs(delta) >= 45 * 86400:
        return f"on {moment.date().isoformat()}"
    text = _rough(abs(delta))
    return f"{text} ago" if delta > 0 else f"in {text}"


def _rough(seconds: float) -> str:
    """A rounded length of time in one unit, as in `3 min ago`."""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    days = int(seconds // 86400)
    return f"{days} day" if days == 1 else f"{days} days"


def when(value: object, at: datetime) -> str:
    """A relative time, with the exact time as its tooltip."""
    moment = parse_time(value)
    if moment is None:
        return ""
    exact = moment.replace(microsecond=0).isoformat(sep=" ")
    return f'<span title="{esc(exact)}">{esc(relative(value, at))}</span>'


def duration(run: Mapping[str, Any], at: datetime) -> str:
    """How long a run took, or has been going for when it still runs."""
    start = parse_time(run.get("started_at") or run.get("created_at"))
    if start is None:
        return ""
    end = parse_time(run.get("ended_at")) or (at if run.get("status") == "running" else None)
    return "" if end is None else span((end - start).total_seconds())


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    selected: int | None,
    empty: str,
    ids: Sequence[str] = (),
) -> str:
    """An HTML table of cells that are already HTML; `empty` (escaped) when there is no row.
    Rows given `ids` carry them (`data-id`) and show a pointer: a click selects them."""
    if not rows:
        return f'<p style="{_MUTED};font-style:italic">{esc(empty)}</p>'
    head = "".join(f"{_TH}{esc(name)}</th>" for name in headers)
    body = "".join(
        f"<tr{_row_attributes(i, selected, ids)}>"
        + "".join(f"{_TD}{cell}</td>" for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"{_TABLE}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _row_attributes(i: int, selected: int | None, ids: Sequence[str]) -> str:
    style = "cursor:pointer;" if i < len(ids) else ""
    if i == selected:
        style += _SELECTED_STYLE
    data = f' data-id="{esc(ids[i])}"' if i < len(ids) else ""
    return data + (f' style="{style}"' if style else "")


def message(text: str, ok: bool) -> str:
    """A one-line result of an action: in the success or the error colour, with a mark."""
    if not text:
        return ""
    tone = GOOD if ok else BAD
    return f'<span style="color:{COLOUR[tone]}">{MARK[tone]} {esc(text)}</span>'


def log_box(lines: Iterable[LogLine], empty: str) -> str:
    """A run's output in a scroll box that starts at its end, so the newest lines show."""
    text = printed(lines)
    if not text:
        return f'<p style="{_MUTED};font-style:italic">{esc(empty)}</p>'
    # column-reverse puts the scroll origin at the bottom: a live log shows its newest lines.
    box = (
        "display:flex;flex-direction:column-reverse;max-height:24em;overflow:auto;"
        "border:1px solid var(--jp-border-color2, #e0e0e0);padding:4px 8px;"
        "background:var(--jp-layout-color1, #ffffff)"
    )
    pre = "margin:0;white-space:pre-wrap;font-family:var(--jp-code-font-family, monospace)"
    return f'<div style="{box}"><pre style="{pre}">{esc(text)}</pre></div>'


def count(n: int, noun: str) -> str:
    """`1 task`, `1,000 tasks`."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
