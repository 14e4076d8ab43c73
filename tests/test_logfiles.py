"""Following a log: to the run's end, whichever server of the data directory follows the run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jupyter_orch.server.logfiles import LogWatcher


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
