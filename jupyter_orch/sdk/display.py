"""Tables for people: plain text for terminals and reprs, escaped HTML for notebooks."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

_TH = '<th style="text-align:left">'
_TD = '<td style="text-align:left;white-space:pre-wrap">'


def cell(value: object) -> str:
    """A value as table text: empty for None, whitespace runs folded to one space."""
    return "" if value is None else " ".join(str(value).split())


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """Aligned columns under a header line; `empty` when there are no rows."""
    if not rows:
        return empty
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(row, widths) for row in rows]
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """An HTML table of escaped cells; a short italic note when there are no rows."""
    if not rows:
        return f"<p><em>{html.escape(empty)}</em></p>"
    head = "".join(f"{_TH}{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"{_TD}{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_fields(title: str, pairs: Sequence[tuple[str, str]]) -> str:
    """A title line, then one indented `name  value` line per field."""
    width = max((len(name) for name, _ in pairs), default=0)
    return "\n".join([title, *(f"  {name.ljust(width)}  {value}" for name, value in pairs)])


def html_fields(title: str, pairs: Sequence[tuple[str, str]]) -> str:
    """A two-column HTML table of fields under a bold caption, every value escaped."""
    rows = "".join(
        f"<tr>{_TH}{html.escape(name)}</th>{_TD}{html.escape(value)}</td></tr>"
        for name, value in pairs
    )
    caption = f'<caption style="text-align:left"><strong>{html.escape(title)}</strong></caption>'
    return f"<table>{caption}<tbody>{rows}</tbody></table>"


def short_time(value: object) -> str:
    """An ISO time to the second, keeping its offset (the server writes UTC)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.replace(microsecond=0).isoformat(sep=" ")


def deletion_words(answer: dict[str, Any], done: str) -> str:
    """A `task/delete` answer in words: "deleted 1 task (id) and 3 runs; killed first, …"."""
    tasks, runs, running = answer["tasks"], answer["task_runs"], answer["running"]
    text = f"{done} {_count(len(tasks), 'task')} ({', '.join(tasks)}) and {_count(runs, 'run')}"
    if running:
        kill = "killed first" if answer["deleted"] else "would kill first"
        text += f"; {kill}, as they {'had' if answer['deleted'] else 'have'} a run going: "
        text += ", ".join(running)
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
