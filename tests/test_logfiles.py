"""Following a log: to the run's end, whichever server of the data directory follows the run."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from jupyter_orch._proc.runlog import LogWriter
from jupyter_orch.server.logfiles import Cursor, LogWatcher, read_lines


async def _collect(follower: LogWatcher, run_id: str, start: int = 0) -> list[str]:
    return [line async for _, line in follower.follow(run_id, start)]


async def test_a_run_another_server_follows_is_followed_to_its_end(tmp_path: Path) -> None:
    """The run is not this server's (its end event is set from the start), yet it runs: the
    follower keeps reading until the other server's records say it has ended."""
    log = tmp_path / "log"
    log.write_text("one\n")
    state = {"running": True}

    async def running_elsewhere(run_id: str) -> bool:
        return state["running"]

    done = asyncio.Event()
    done.set()
    follower = LogWatcher(lambda run: log, lambda run: done, running_elsewhere, interval=0.01)
    reading = asyncio.ensure_future(_collect(follower, "r1"))
    await asyncio.sleep(0.1)
    assert not reading.done()  # without the check it would end here, after "one"
    with log.open("a") as fh:
        fh.write("two\nthree\n")
    await asyncio.sleep(0.1)
    state["running"] = False
    assert await asyncio.wait_for(reading, 5) == ["one", "two", "three"]


async def test_a_run_followed_here_ends_with_its_event(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("a\nb\n")
    ended = asyncio.Event()

    asked: list[str] = []

    async def running_elsewhere(run_id: str) -> bool:
        asked.append(run_id)
        return False  # its end is recorded before the event is set

    follower = LogWatcher(lambda run: log, lambda run: ended, running_elsewhere, interval=0.01)
    reading = asyncio.ensure_future(_collect(follower, "r2", start=1))
    await asyncio.sleep(0.05)
    assert asked == []  # no look at the records while this server follows the run
    with log.open("a") as fh:
        fh.write("c\n")
    ended.set()
    assert await asyncio.wait_for(reading, 5) == ["b", "c"]


async def test_many_followers_share_one_watcher(tmp_path: Path) -> None:
    """A hundred followers of one run: one watcher (one `stat` per tick), every line to each,
    and the watcher goes with the last follower."""
    log = tmp_path / "log"
    log.write_text("")
    ended = asyncio.Event()
    follower = LogWatcher(lambda run: log, lambda run: ended, interval=0.01)
    readers = [asyncio.ensure_future(_collect(follower, "r3")) for _ in range(100)]
    await asyncio.sleep(0.05)
    assert list(follower._watches) == ["r3"] and follower._watches["r3"].followers == 100
    with log.open("a") as fh:
        fh.writelines(f"{i}\n" for i in range(1000))
    ended.set()
    results = await asyncio.wait_for(asyncio.gather(*readers), 10)
    assert all(lines == [str(i) for i in range(1000)] for lines in results)
    assert follower._watches == {}


def _numbered(count: int, start: int = 0) -> bytes:
    return b"".join(b"line %07d\n" % n for n in range(start, start + count))


def test_a_capped_log_keeps_its_start_and_end_with_a_marker_that_counts_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log"
    writer = LogWriter(str(path), max_line=100, max_bytes=64 * 1024)
    for start in range(0, 50_000, 500):  # 50,000 lines of 55 bytes: 2.7 MB
        writer.feed("stdout", _numbered(500, start), 0)
        writer.flush()
        assert path.stat().st_size <= 64 * 1024
    texts = [line.split(" ", 3)[3] for line in path.read_text().splitlines()]
    marker = next(i for i, text in enumerate(texts) if text.startswith("jupyter_orch:"))
    numbers = [int(text.split()[1]) for text in texts if not text.startswith("jupyter_orch:")]
    assert numbers[:marker] == list(range(marker))  # the start, whole
    tail = numbers[marker:]
    assert tail == list(range(tail[0], 50_000))  # the end, whole, up to the last line
    dropped = texts[marker].split()
    line_bytes = len(path.read_text().splitlines()[0]) + 1
    assert int(dropped[1]) == (tail[0] - marker) * line_bytes
    assert dropped[3] == f"({tail[0] - marker}"
    assert path.stat().st_size >= 32 * 1024  # a cut keeps half the cap, at least
    assert {p.name for p in tmp_path.iterdir()} == {"log", "log.cut"}


@pytest.mark.parametrize("seed", range(5))
def test_a_cursor_keeps_line_numbers_across_cuts(tmp_path: Path, seed: int) -> None:
    """A reader that reads now and then, by pieces of any size, while the log is cut under
    it: every line it gets is the run's line of that index, in order, no line twice, and
    each gap is one marker standing for exactly the lines missed."""
    rng = random.Random(seed)
    path = tmp_path / "log"
    writer = LogWriter(str(path), max_line=100, max_bytes=16 * 1024)
    cursor = Cursor(path)
    got: list[tuple[int, int, str]] = []
    written = 0
    while written < 20_000:
        count = rng.randint(1, 400)
        writer.feed("stdout", _numbered(count, written), 0)
        writer.flush()
        written += count
        for _ in range(rng.randint(0, 3)):
            got += cursor.read(rng.choice([7, 100, 4096, 1 << 20]))
    while more := cursor.read():
        got += more
    expected_index = 0
    for index, span, text in got:
        assert index == expected_index, (index, text)
        if span == 1 and not text.split(" ", 3)[3].startswith("jupyter_orch:"):
            assert text.split()[-1] == f"{index:07d}"
        else:
            assert "jupyter_orch:" in text and span >= 1
        expected_index = index + span
    assert expected_index == written  # the last line is always there
    cursor.close()


def test_read_lines_gives_the_last_lines_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "log"
    assert list(read_lines(path)) == []
    path.write_bytes(b"a\nb\r\n\nd")  # no final newline: "d" is a line still
    assert [line for piece in read_lines(path) for line in piece] == ["a", "b\r", "", "d"]
    path.write_bytes(_numbered(200_000))
    pieces = list(read_lines(path))
    assert len(pieces) > 1  # 2.4 MB in pieces of about a MiB
    assert [line for piece in pieces for line in piece] == _numbered(200_000).decode().split("\n")[
        :-1
    ]
    for last in (0, 1, 2, 99_999, 200_000, 10**12):
        lines = [line for piece in read_lines(path, last) for line in piece]
        assert lines == [f"line {n:07d}" for n in range(max(0, 200_000 - last), 200_000)]
