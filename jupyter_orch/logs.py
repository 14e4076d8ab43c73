"""Reading run logs: whole, or the last N lines without reading the whole file."""

from __future__ import annotations

import os
from pathlib import Path

_BLOCK = 1 << 16


def read_lines(path: Path, last: int | None = None) -> list[str]:
    """The log's lines (without newlines); only the last `last` when given."""
    try:
        with open(path, "rb") as fh:
            data = fh.read() if last is None else _tail_bytes(fh.fileno(), last)
    except FileNotFoundError:
        return []
    # Split on "\n" only: a printed "\r" or U+2028 belongs to its line, not a new one.
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines if last is None else lines[-last:] if last else []


def _tail_bytes(fd: int, count: int) -> bytes:
    """Enough bytes from the end of a file to hold its last `count` lines."""
    end = os.fstat(fd).st_size
    pos, chunks, newlines = end, [], 0
    while pos > 0 and newlines <= count:
        size = min(_BLOCK, pos)
        pos -= size
        chunk = os.pread(fd, size, pos)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    return b"".join(reversed(chunks))
