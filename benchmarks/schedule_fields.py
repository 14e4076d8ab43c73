"""What the schedule fields of a task answer cost: `next_fires` and `schedule_description`.

Usage: python benchmarks/schedule_fields.py [--tasks 1000] [--runs 3] [--json PATH] [--quick]

Every task answer of a scheduled task carries its next three fire times (in its zone) and its
schedule in words. They are computed in the server's process from the stored schedule, zone and
next instant, with caches per schedule (the parsed cron, its words) and per (schedule, zone,
next instant) (the fire times), because the tasks of a listing share a few schedules. This
times the functions the service calls for each task (`cron.fires_from`, `cron.describe`) over
N tasks, in this process: each task its own schedule with caches cleared (the worst case, as on
a server's first listing), the same again with the caches warm (the next listing before an
instant passes), and N tasks sharing 10 schedules with cold caches. Best of `--runs`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import BenchResult, bench_parser
from jupyter_orch.server import cron

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
Task = tuple[str, str, datetime]


def tasks(count: int, distinct: int | None) -> list[Task]:
    """(schedule, zone, next instant) of `count` tasks: each its own schedule, or `distinct`."""
    moment = datetime.now(timezone.utc)
    made = []
    for i in range(count):
        n = i if distinct is None else i % distinct
        expr = f"{n % 60} {(n // 60) % 60} {(n // 3600) % 24} * * *"  # seconds first
        zone = ZONES[n % len(ZONES)]
        first = cron.next_fire(cron.parse_cron(expr), cron.parse_timezone(zone), moment)
        assert first is not None  # a daily schedule always fires again
        made.append((expr, zone, first))
    return made


def clear() -> None:
    """Empty the caches, as on a server's first listing."""
    for cached in (cron.stored_cron, cron.describe, cron.fires_from):
        cached.cache_clear()


def fields(items: list[Task]) -> None:
    """What the service computes for each task of a listing."""
    for expr, zone, first in items:
        cron.fires_from(expr, zone, first, 3)
        cron.describe(expr)


def best_ms(runs: int, prepare: Callable[[], None], work: Callable[[], None]) -> float:
    """The best of `runs` timings of `work`, each after `prepare`, in milliseconds."""
    best = float("inf")
    for _ in range(runs):
        prepare()
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main(argv: list[str] | None = None) -> BenchResult:
    """Time the fields; the section for docs/performance.md."""
    parser = bench_parser(__doc__, "100 tasks, 1 run", "repetitions", runs_default=3)
    parser.add_argument("--tasks", type=int, default=1000)
    opts = parser.parse_args(argv)
    count, runs = (100, 1) if opts.quick else (opts.tasks, opts.runs)
    own = tasks(count, None)
    shared = tasks(count, 10)
    cold = best_ms(runs, clear, lambda: fields(own))
    warm = best_ms(runs, lambda: fields(own), lambda: fields(own))
    few = best_ms(runs, clear, lambda: fields(shared))
    clear()
    figures: dict[str, Any] = {"tasks": count, "cold_ms": cold, "warm_ms": warm, "shared_ms": few}
    per = 1000 / count
    table = [
        ["case", f"ms for {count:,} tasks", "µs a task"],
        ["each task its own schedule, caches cold", f"{cold:.1f}", f"{cold * per:.0f}"],
        ["the same, caches warm", f"{warm:.2f}", f"{warm * per:.1f}"],
        ["10 schedules shared, caches cold", f"{few:.1f}", f"{few * per:.0f}"],
    ]
    result: BenchResult = {
        "name": "schedule_fields",
        "title": "Schedule fields of a task answer",
        "description": " ".join(__doc__.split("\n\n")[2].split()),
        "params": {"tasks": count, "runs": runs},
        "figures": figures,
        "table": table,
        "goal_met": None,
        "notes": [
            "run-once and continuous tasks, and scheduled ones that do not fire (paused, "
            "killed, ended), skip both computations: their `next_fires` is `[]`"
        ],
    }
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])["table"], indent=1))
