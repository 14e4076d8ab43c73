"""Schedule precision: how late scheduled runs start, and the API's latency meanwhile.

Usage: python benchmarks/schedule_precision.py [--tasks 1000] [--minutes 3] [--rate 8]
       [--baseline-seconds 60] [--json PATH] [--quick]

N scheduled tasks of a trivial orchestration (`pass`); task i fires once a minute at second
`i * 60 // N` (6-field cron, seconds first), so about N / 60 runs a second. The tasks are
created and paused at once; the API's latency is probed while they are paused (baseline), then
they are resumed and, over a window of whole seconds, probed again while they fire. After the
window the server's SQLite database is read (read-only): for every run with trigger `schedule`
whose `scheduled_for` lies in the window, lateness = `created_at` - `scheduled_for`
(`created_at` is stamped just before the run's row is written and its process started).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    BenchError,
    BenchResult,
    Client,
    bench_main,
    bench_parser,
    cpu_sample,
    cpu_use,
    jupyter_server,
    percentile,
)

GOAL_LATENESS_MS = 50.0
GOAL_API_RATIO = 2.0
ON_TIME_MS = 100.0  # the scheduling rule: `created_at` within 100 ms of the instant
USER_CODE = "pass\n"
PROBES = ("get_by_id", "list_task_runs")
RECORDABLE_TASKS, RECORDABLE_SECONDS = 1000, 180
LIST_SAMPLES = 3  # `task/list` of every task, measured alone while paused (it is slow)
SETTLE_TIMEOUT = 120.0
PROBE_SEED = 1234
PHASE_BINS = 10  # API latency by the phase of the second a request starts in


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(__doc__, "20 tasks, 15 s (smoke test)")
    parser.add_argument("--tasks", type=int, default=1000, help="scheduled tasks")
    parser.add_argument("--minutes", type=float, default=3.0, help="measurement window")
    parser.add_argument("--rate", type=float, default=8.0, help="API probes a second")
    parser.add_argument("--baseline-seconds", type=float, default=60.0, help="paused probing")
    parser.add_argument("--drain-seconds", type=float, default=5.0, help="wait after the window")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.minutes = min(args.tasks, 20), 0.25
        args.baseline_seconds, args.drain_seconds = 5.0, 3.0
    args.window = round(args.minutes * 60)
    if args.tasks < 1 or args.window < 1 or args.rate <= 0 or args.baseline_seconds <= 0:
        parser.error("--tasks, --minutes, --rate and --baseline-seconds must be positive")
    return args


# -- statistics ------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, float]:
    """Count, p50, p99 and max (zeros when there are no values)."""
    if not values:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def spread_seconds(tasks: int) -> list[int]:
    """The second of the minute each task fires at, spread evenly over the minute."""
    return [i * 60 // tasks for i in range(tasks)]


# -- the server's records --------------------------------------------------------------------


@contextmanager
def read_only_db(client: Client) -> Iterator[sqlite3.Connection]:
    """The server's database, opened read-only."""
    uri = f"{(client.data_dir / 'orch.db').as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
        yield db


def count_tasks(client: Client, ids: set[str], status: str) -> int:
    """How many of the tasks have this status."""
    with read_only_db(client) as db:
        rows = db.execute("SELECT id FROM tasks WHERE status = ?", (status,)).fetchall()
    return sum(1 for (task_id,) in rows if task_id in ids)


def count_running(client: Client) -> int:
    """Runs still marked running."""
    with read_only_db(client) as db:
        return int(db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0])


def wait_until(check: Callable[[], bool], what: str, timeout: float = SETTLE_TIMEOUT) -> None:
    """Poll `check` every 0.2 s (BenchError at the deadline)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"not {what} after {timeout} s")
        time.sleep(0.2)


def window_records(client: Client, start: int, end: int) -> tuple[list[tuple[Any, ...]], int]:
    """Runs with trigger `schedule` (task, instant, created, ended, status) and skips in the
    window; the instants are filtered here (their text format is not fixed width)."""
    with read_only_db(client) as db:
        runs = db.execute(
            "SELECT task_id, scheduled_for, created_at, ended_at, status FROM runs"
            " WHERE trigger = 'schedule'"
        ).fetchall()
        skips = db.execute("SELECT scheduled_for FROM skips").fetchall()
    inside = [r for r in runs if start <= datetime.fromisoformat(r[1]).timestamp() < end]
    skipped = sum(1 for (s,) in skips if start <= datetime.fromisoformat(s).timestamp() < end)
    return inside, skipped


# -- the API ---------------------------------------------------------------------------------


def create_paused(client: Client, orch_id: str, seconds: list[int]) -> list[str]:
    """One scheduled task per second given, each paused right after it is created."""
    ids = []
    for second in seconds:
        body = {
            "orch_id": orch_id,
            "workspace_id": 1,
            "json": {},
            "schedule": f"{second} * * * * *",
        }
        task_id: str = client.post("task/run_scheduled", body, status=201)["id"]
        client.post("task/pause", {"id": task_id, "pause": True}, status=202)
        ids.append(task_id)
    return ids


def resume_all(client: Client, ids: list[str]) -> None:
    """Resume every task and wait until each is `started` again (its timer set)."""
    for task_id in ids:
        client.post("task/pause", {"id": task_id, "pause": False}, status=202)
    wanted = set(ids)
    wait_until(lambda: count_tasks(client, wanted, "started") == len(wanted), "all resumed")


def kill_all(client: Client, ids: list[str]) -> int:
    """Kill every task, then wait for their runs to end; how many kills failed."""
    failed = 0
    for task_id in ids:
        try:
            client.post("task/kill", {"id": task_id}, status=202)
        except (BenchError, requests.RequestException):
            failed += 1
    wait_until(lambda: count_running(client) == 0, "every run ended", timeout=60.0)
    return failed


def probe(client: Client, ids: list[str], until: float, rate: float) -> dict[str, Any]:
    """Until wall time `until`, `rate` requests a second on average (never bursting to catch
    up), alternating `task/get_by_id` and `task/list_task_runs` over the tasks; times in ms.
    The gaps are random (0.5-1.5 x the mean), so requests start at every phase of a second,
    not always at the instants when the tasks fire."""
    jitter = random.Random(PROBE_SEED)
    session = requests.Session()
    session.headers.update(client.session.headers)
    samples: dict[str, list[float]] = {name: [] for name in PROBES}
    offsets: dict[str, list[float]] = {name: [] for name in PROBES}  # of each start, in its second
    errors: Counter[str] = Counter()
    next_at = time.monotonic()
    with closing(session):
        for k in range(math.ceil(max(until - time.time(), 0) * rate * 2) + 1):
            pause = min(next_at - time.monotonic(), until - time.time())
            if pause > 0:
                time.sleep(pause)
            if time.time() >= until:
                break
            name, task_id = PROBES[k % 2], ids[(k // 2) % len(ids)]
            body = {"id": task_id} if name == "get_by_id" else {"task_id": task_id}
            offset = time.time() % 1
            elapsed = _timed_post(session, client.url(f"task/{name}"), body)
            if elapsed is None:
                errors[name] += 1
            else:
                samples[name].append(elapsed)
                offsets[name].append(offset)
            next_at = max(next_at + jitter.uniform(0.5, 1.5) / rate, time.monotonic())
    return {"ms": samples, "offsets": offsets, "errors": dict(errors)}


def _timed_post(session: requests.Session, url: str, body: dict[str, Any]) -> float | None:
    """Milliseconds of one POST answered 200 (None on any other outcome)."""
    start = time.perf_counter_ns()
    try:
        response = session.post(url, json=body, timeout=30)
    except requests.RequestException:
        return None
    elapsed = (time.perf_counter_ns() - start) / 1e6
    return elapsed if response.status_code == 200 else None


def time_list(client: Client, samples: int) -> list[float]:
    """Milliseconds of `task/list` of workspace 1 (every task, one run each)."""
    times = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        client.post("task/list", {"workspace_id": 1, "run_limit": 1})
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


# -- the measurement -------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start a server, create the paused tasks, probe, resume, probe the window; raw figures."""
    load_before = os.getloadavg()
    with jupyter_server() as client:
        orch_id = client.upload({"main.py": USER_CODE}, name="schedule-precision")
        client.wait_orch(orch_id)
        seconds = spread_seconds(args.tasks)
        setup = time.monotonic()
        ids = create_paused(client, orch_id, seconds)
        setup_seconds = time.monotonic() - setup
        try:
            raw = _measure_phases(client, args, ids)
        finally:
            failed_kills = kill_all(client, ids)
    raw.update(seconds=dict(zip(ids, seconds, strict=True)), failed_kills=failed_kills)
    raw.update(setup_seconds=setup_seconds, load_before=load_before)
    return raw


def _measure_phases(client: Client, args: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    """Baseline while paused, then the window while the tasks fire, then the records."""
    baseline = probe(client, ids, time.time() + args.baseline_seconds, args.rate)
    list_ms = time_list(client, LIST_SAMPLES)
    resume_all(client, ids)
    start = math.ceil(time.time()) + 1
    end = start + args.window
    time.sleep(max(0.0, start - time.time()))
    load_start, cpu_start = os.getloadavg(), cpu_sample(client.pid)
    loaded = probe(client, ids, end, args.rate)
    load_end, cpu_end = os.getloadavg(), cpu_sample(client.pid)
    time.sleep(args.drain_seconds)
    runs, skipped = window_records(client, start, end)
    return {
        "baseline": baseline,
        "loaded": loaded,
        "list_ms": list_ms,
        "window": (start, end),
        "runs": runs,
        "skipped": skipped,
        "load_start": load_start,
        "load_end": load_end,
        "cpu": cpu_use(cpu_start, cpu_end),
    }


# -- the analysis ----------------------------------------------------------------------------


def expected_instants(seconds: dict[str, int], start: int, end: int) -> set[tuple[str, int]]:
    """Every (task, epoch second) the schedules fire at in [start, end)."""
    by_second: dict[int, list[str]] = {}
    for task_id, second in seconds.items():
        by_second.setdefault(second, []).append(task_id)
    return {(t, s) for s in range(start, end) for t in by_second.get(s % 60, [])}


def _instant(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _ms_between(later: str, earlier: str) -> float:
    delta = datetime.fromisoformat(later) - datetime.fromisoformat(earlier)
    return delta / timedelta(microseconds=1) / 1000


def analyse_runs(raw: dict[str, Any]) -> dict[str, Any]:
    """Counts (expected, observed, missing, doubled), lateness and outcomes of the window."""
    start, end = raw["window"]
    runs = raw["runs"]
    keys = [(task_id, _instant(sf)) for task_id, sf, *_ in runs]
    observed = {(t, int(s)) for t, s in keys if s == int(s)}
    expected = expected_instants(raw["seconds"], start, end)
    lateness = [_ms_between(created, sf) for _, sf, created, *_ in runs]
    durations = [_ms_between(ended, created) for _, _, created, ended, _ in runs if ended]
    by_minute: dict[int, list[float]] = {}
    for (_, instant), late in zip(keys, lateness, strict=True):
        by_minute.setdefault(int(instant - start) // 60, []).append(late)
    return {
        "expected": len(expected),
        "observed_rows": len(runs),
        "observed_distinct": len(set(keys)),
        "missing": len(expected - observed),
        "doubled": len(keys) - len(set(keys)),
        "off_schedule": len(set(keys) - expected),
        "skips_recorded": raw["skipped"],
        "lateness_ms": stats(lateness),
        "late_over_100ms": sum(1 for ms in lateness if ms > ON_TIME_MS),
        "lateness_by_minute_ms": {m: stats(v) for m, v in sorted(by_minute.items())},
        **burst_lateness(runs),
        "run_status": dict(Counter(r[4] for r in runs)),
        "run_duration_ms": stats(durations),
    }


def burst_lateness(runs: list[tuple[Any, ...]]) -> dict[str, dict[str, float]]:
    """Lateness of the first and of the last run recorded of each second (the tasks of one
    second are due at the same instant), and how many runs each second had."""
    by_second: dict[str, list[float]] = {}
    for _, instant, created, *_ in runs:
        by_second.setdefault(instant, []).append(_ms_between(created, instant))
    groups = list(by_second.values())
    return {
        "first_of_second_ms": stats([min(g) for g in groups]),
        "last_of_second_ms": stats([max(g) for g in groups]),
        "runs_per_second": stats([float(len(g)) for g in groups]),
    }


def by_phase(phase: dict[str, Any]) -> list[dict[str, float]]:
    """Latency of both probed endpoints by the tenth of a second each request started in."""
    bins: list[list[float]] = [[] for _ in range(PHASE_BINS)]
    for name in PROBES:
        for offset, elapsed in zip(phase["offsets"][name], phase["ms"][name], strict=True):
            bins[min(int(offset * PHASE_BINS), PHASE_BINS - 1)].append(elapsed)
    return [stats(b) for b in bins]


def analyse_api(raw: dict[str, Any]) -> dict[str, Any]:
    """p50/p99 of each probed endpoint, paused vs firing, and the ratio of the p99s."""
    figures: dict[str, Any] = {}
    for name in PROBES:
        base, load = stats(raw["baseline"]["ms"][name]), stats(raw["loaded"]["ms"][name])
        figures[name] = {
            "baseline": base,
            "loaded": load,
            "p99_ratio": load["p99"] / base["p99"] if base["p99"] else math.inf,
            "errors_baseline": raw["baseline"]["errors"].get(name, 0),
            "errors_loaded": raw["loaded"]["errors"].get(name, 0),
        }
    figures["by_phase"] = {k: by_phase(raw[k]) for k in ("baseline", "loaded")}
    return figures


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    """Figures, tables and the verdict on the goals."""
    runs, api = analyse_runs(raw), analyse_api(raw)
    late = runs["lateness_ms"]
    late_met = runs["observed_rows"] > 0 and late["p99"] <= GOAL_LATENESS_MS
    api_met = all(api[n]["p99_ratio"] <= GOAL_API_RATIO for n in PROBES)
    complete = runs["missing"] == 0 and runs["doubled"] == 0 and runs["off_schedule"] == 0
    loads = {k: [round(v, 2) for v in raw[k]] for k in ("load_before", "load_start", "load_end")}
    return {
        "name": "schedule_precision",
        "title": "Schedule precision",
        "description": _description(args),
        "params": {
            "tasks": args.tasks,
            "window_seconds": args.window,
            "probe_rate_per_s": args.rate,
            "baseline_seconds": args.baseline_seconds,
            "recordable": not args.quick
            and args.tasks >= RECORDABLE_TASKS
            and args.window >= RECORDABLE_SECONDS,
        },
        "figures": {
            "runs": runs,
            "api_ms": api,
            "task_list_all_ms": raw["list_ms"],
            "cpu_window": raw["cpu"],
            "load_average": loads,
            "setup_seconds": raw["setup_seconds"],
            "failed_kills": raw["failed_kills"],
        },
        "table": _main_table(runs, api),
        "extra_tables": [
            ("Runs in the window", _count_table(runs)),
            ("Lateness by minute of the window", _minute_table(runs)),
            ("API latency by when in the second a request starts", _phase_table(api)),
            ("Machine during the window", _machine_table(raw, loads)),
        ],
        "goal": f"lateness p99 <= {GOAL_LATENESS_MS:g} ms; API p99 <= {GOAL_API_RATIO:g} x "
        "its paused baseline",
        "goal_met": late_met and api_met and complete,
        "notes": _notes(runs, api, late_met, api_met, complete, raw),
    }


def _description(args: argparse.Namespace) -> str:
    return (
        f"{args.tasks} scheduled tasks of one orchestration whose `main.py` is `pass`; task i "
        f"fires at second `i * 60 // {args.tasks}` of every minute (`S * * * * *`), about "
        f"{args.tasks / 60:.1f} runs a second, over a window of {args.window} s. Lateness = "
        "`created_at` - `scheduled_for` of each run with trigger `schedule` whose instant lies "
        "in the window, read from the server's SQLite database (`orch.db`, opened read-only) "
        "after the window. API latency: one client, "
        f"{args.rate:g} requests a second alternating `task/get_by_id` and "
        "`task/list_task_runs` over the tasks, timed around each POST; baseline on the same "
        f"server with the same tasks created but paused ({args.baseline_seconds:g} s, just "
        "before they are resumed), loaded during the window."
    )


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _stat_row(label: str, s: dict[str, float]) -> list[str]:
    return [label, str(int(s["n"])), _fmt(s["p50"]), _fmt(s["p99"]), _fmt(s["max"])]


def _main_table(runs: dict[str, Any], api: dict[str, Any]) -> list[list[str]]:
    rows = [["measure", "n", "p50 (ms)", "p99 (ms)", "max (ms)"]]
    rows.append(_stat_row("lateness (`created_at` - `scheduled_for`)", runs["lateness_ms"]))
    rows.append(_stat_row("lateness, first run of each second", runs["first_of_second_ms"]))
    rows.append(_stat_row("lateness, last run of each second", runs["last_of_second_ms"]))
    for name in PROBES:
        rows.append(_stat_row(f"`task/{name}`, tasks paused (baseline)", api[name]["baseline"]))
        rows.append(_stat_row(f"`task/{name}`, tasks firing", api[name]["loaded"]))
        rows.append([f"`task/{name}` p99 firing / paused", "", "", _ratio(api[name]), ""])
    return rows


def _ratio(figures: dict[str, Any]) -> str:
    return f"{figures['p99_ratio']:.2f}"


def _count_table(runs: dict[str, Any]) -> list[list[str]]:
    status = ", ".join(f"{k} {v}" for k, v in sorted(runs["run_status"].items())) or "none"
    return [
        ["count", "value"],
        ["instants expected (task x second in the window)", str(runs["expected"])],
        ["runs observed (rows)", str(runs["observed_rows"])],
        ["instants missing (no run)", str(runs["missing"])],
        ["instants with more than one run", str(runs["doubled"])],
        ["runs at an instant not in the task's schedule", str(runs["off_schedule"])],
        ["skipped or missed instants recorded by the server", str(runs["skips_recorded"])],
        ["runs due at one instant (median / max)", _per_second(runs)],
        ["run outcomes", status],
        ["run duration p50 / p99 (`created_at` -> `ended_at`, ms)", _duration(runs)],
    ]


def _per_second(runs: dict[str, Any]) -> str:
    n = runs["runs_per_second"]
    return f"{n['p50']:.0f} / {n['max']:.0f}"


def _duration(runs: dict[str, Any]) -> str:
    d = runs["run_duration_ms"]
    return f"{d['p50']:.0f} / {d['p99']:.0f}"


def _minute_table(runs: dict[str, Any]) -> list[list[str]]:
    rows = [["minute", "n", "p50 (ms)", "p99 (ms)", "max (ms)"]]
    for minute, s in runs["lateness_by_minute_ms"].items():
        rows.append(_stat_row(str(minute + 1), s))
    return rows


def _phase_table(api: dict[str, Any]) -> list[list[str]]:
    rows = [["start (ms past the second)", "n paused", "p99 paused (ms)", "n firing"]]
    rows[0] += ["p50 firing (ms)", "p99 firing (ms)"]
    step = 1000 // PHASE_BINS
    for i, (base, load) in enumerate(zip(*api["by_phase"].values(), strict=True)):
        rows.append([f"{i * step}-{(i + 1) * step}", str(int(base["n"])), _fmt(base["p99"])])
        rows[-1] += [str(int(load["n"])), _fmt(load["p50"]), _fmt(load["p99"])]
    return rows


def _machine_table(raw: dict[str, Any], loads: dict[str, list[float]]) -> list[list[str]]:
    cpu = raw["cpu"]
    return [
        ["measure", "value"],
        ["load average 1/5/15 min before the benchmark", _loads(loads["load_before"])],
        ["load average at the window's start", _loads(loads["load_start"])],
        ["load average at the window's end", _loads(loads["load_end"])],
        ["server process CPU (cores)", f"{cpu['process_cores']:.2f}"],
        ["runs' processes CPU (cores, supervisors + user code)", f"{cpu['children_cores']:.2f}"],
        [f"machine busy (all {os.cpu_count()} cores, any process)", f"{cpu['machine_busy']:.0%}"],
    ]


def _loads(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _notes(
    runs: dict[str, Any],
    api: dict[str, Any],
    late_met: bool,
    api_met: bool,
    complete: bool,
    raw: dict[str, Any],
) -> list[str]:
    late = runs["lateness_ms"]
    ratios = ", ".join(f"`{n}` {_ratio(api[n])}" for n in PROBES)
    errors = {n: api[n]["errors_baseline"] + api[n]["errors_loaded"] for n in PROBES}
    list_ms = raw["list_ms"]
    return [
        f"lateness p99 {late['p99']:.1f} ms -> goal {'met' if late_met else 'NOT met'}",
        f"runs later than {ON_TIME_MS:g} ms (the scheduling rule on an idle machine): "
        f"{runs['late_over_100ms']} of {late['n']} (max {late['max']:.1f} ms)",
        f"API p99 firing / paused: {ratios} -> goal {'met' if api_met else 'NOT met'}",
        f"every instant ran exactly once: {'yes' if complete else 'NO'} "
        f"({runs['observed_distinct']} of {runs['expected']} instants, "
        f"{runs['doubled']} doubled, {runs['off_schedule']} off schedule)",
        f"probe requests that failed (not 200): {sum(errors.values())}",
        f"`task/list` of all tasks (`run_limit` 1), paused, alone: "
        f"{min(list_ms):.0f}-{max(list_ms):.0f} ms ({len(list_ms)} samples; not probed under load)",
    ]


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the tables; write JSON if asked; return the result."""
    return bench_main(argv, parse_args, measure, build_result)


if __name__ == "__main__":
    main()
