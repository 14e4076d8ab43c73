"""Dispatch latency: from sending `task/run_once` to the first line the user code prints.

Usage: python benchmarks/dispatch_latency.py [--runs 50] [--warmup 3] [--json PATH] [--quick]

The latency of one run is the wall-clock time (`time.time_ns()`) just before the POST, up to
the RFC 3339 time stamped on the run's first log line (the user code's first statement is
`print("first", flush=True)`). The floor is the start of a bare interpreter on this machine:
from just before `subprocess.Popen([sys.executable, "-c", "print('first')"])` until the
parent reads that line. Both are sampled alternately, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    BenchError,
    BenchResult,
    Client,
    bench_parser,
    first_line_ns,
    jupyter_server,
    ms,
    parse_log_line,
    print_tables,
    run_ns,
    summarize,
)

GOAL_RATIO = 2.0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_RECORDED_RUNS = 50
USER_CODE = 'print("first", flush=True)\n'
FLOOR_ARGV = [sys.executable, "-c", "print('first')"]
STAGES = (
    ("request", "POST sent -> task recorded (`created_at`)"),
    ("record", "task recorded -> run recorded (`started_at`)"),
    ("supervisor", "run recorded -> supervisor up (`exit.json` `started_ns`)"),
    ("child", "supervisor up -> first line logged (copy files, start user Python)"),
)
STAGE_MARKS = ("task_recorded", "run_recorded", "supervisor_up", "latency")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(
        __doc__, "tiny sizes (smoke test)", "measured runs", runs_default=MIN_RECORDED_RUNS
    )
    parser.add_argument("--warmup", type=int, default=3, help="runs before measuring")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = min(args.runs, 3), 1
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    return args


def iso_ns(value: str) -> int:
    """Nanoseconds since the epoch of an ISO 8601 time with a timezone (microseconds)."""
    since = datetime.fromisoformat(value) - EPOCH
    return since // timedelta(microseconds=1) * 1000


def supervisor_started_ns(client: Client, run_id: str) -> int | None:
    """When the run's supervisor was ready to start the child (from its exit record)."""
    path = client.data_dir / "runs" / run_id / "exit.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("started_ns")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, int) else None


def first_line_time(client: Client, run_id: str) -> int:
    """The time stamp of the run's first stdout line `first`."""
    lines = client.logs(run_id)
    for line in lines:
        parsed = parse_log_line(line)
        if parsed.stream == "stdout" and parsed.text == "first":
            return parsed.ns
    raise BenchError(f"run {run_id} never printed 'first': {lines}")


def dispatch_once(client: Client, orch_id: str) -> dict[str, int | None]:
    """One run: its latency and the moments in between, as ns since the POST."""
    sent = time.time_ns()
    task_id = client.run_once(orch_id)
    answered = time.time_ns()
    task = client.wait_task(task_id)
    if task["status"] != "success" or not task["last_runs"]:
        raise BenchError(f"run of task {task_id} did not succeed: {task}")
    run_id = task["last_runs"][0]["run_id"]
    run = client.run_details(task_id, run_id)
    first = first_line_time(client, run_id)
    supervisor = supervisor_started_ns(client, run_id)
    return {
        "latency": first - sent,
        "answered": answered - sent,
        "task_recorded": iso_ns(task["created_at"]) - sent,
        "run_recorded": iso_ns(run.get("started_at") or run["created_at"]) - sent,
        "supervisor_up": None if supervisor is None else supervisor - sent,
    }


def stage_table(samples: list[dict[str, int | None]]) -> tuple[list[list[str]], dict[str, Any]]:
    """Median and p95 of each stage of the dispatch path (from server-side records)."""
    rows = [["stage", "median (ms)", "p95 (ms)"]]
    figures: dict[str, Any] = {}
    start: str | None = None
    for (key, label), end in zip(STAGES, STAGE_MARKS, strict=True):
        durations = [_between(s, start, end) for s in samples]
        known = [d for d in durations if d is not None]
        start = end
        if known:
            figures[key] = summarize(known)
            rows.append([label, f"{figures[key]['median']:.1f}", f"{figures[key]['p95']:.1f}"])
    return rows, figures


def _between(sample: dict[str, int | None], start: str | None, end: str) -> float | None:
    """Milliseconds from one mark to the next (from the POST when start is None)."""
    begin = 0 if start is None else sample[start]
    finish = sample[end]
    return None if begin is None or finish is None else ms(finish - begin)


def supervisor_imports() -> str:
    """The top-level import statements of the supervisor's modules (`supervise.py` and the
    `runfiles.py` it imports), as code for `python -c`."""
    imports: list[ast.stmt] = []
    for module in ("jupyter_orch._proc.supervise", "jupyter_orch._proc.runfiles"):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise BenchError(f"{module} not found")
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        imports += [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(dict.fromkeys(ast.unparse(node) for node in imports))


def measure_context(client: Client, reps: int) -> dict[str, dict[str, float]]:
    """Pieces of the path timed on their own: interpreter starts and an HTTP round trip."""

    def http_ns() -> int:
        start = time.time_ns()
        client.post("workspaces/list")
        return time.time_ns() - start

    imports = supervisor_imports()
    probes = {
        "`python -c pass` (start to exit)": lambda: run_ns([sys.executable, "-c", "pass"]),
        "`python -I -S -c pass` (start to exit)": lambda: run_ns(
            [sys.executable, "-I", "-S", "-c", "pass"]
        ),
        "`python -I -S` + the imports of supervise.py": lambda: run_ns(
            [sys.executable, "-I", "-S", "-c", imports]
        ),
        "HTTP round trip, `POST workspaces/list`": http_ns,
    }
    return {name: summarize([ms(probe()) for _ in range(reps)]) for name, probe in probes.items()}


def measure(runs: int, warmup: int) -> dict[str, Any]:
    """Start a server, then sample dispatch and floor alternately; raw figures."""
    with jupyter_server() as client:
        orch_id = client.upload({"main.py": USER_CODE}, name="dispatch-latency")
        client.wait_orch(orch_id)
        for _ in range(warmup):
            dispatch_once(client, orch_id)
            first_line_ns(FLOOR_ARGV)
        samples, floor = [], []
        for _ in range(runs):
            floor.append(first_line_ns(FLOOR_ARGV))
            samples.append(dispatch_once(client, orch_id))
        context = measure_context(client, min(runs, 30))
    return {"samples": samples, "floor_ns": floor, "context": context}


def build_result(raw: dict[str, Any], runs: int, warmup: int) -> BenchResult:
    """Summaries, tables and the verdict on the goal."""
    latency = summarize([ms(s["latency"]) for s in raw["samples"]])
    answered = summarize([ms(s["answered"]) for s in raw["samples"]])
    floor = summarize([ms(v) for v in raw["floor_ns"]])
    ratio = latency["median"] / floor["median"]
    overhead = latency["median"] - floor["median"]
    met = ratio <= GOAL_RATIO
    stages, stage_figures = stage_table(raw["samples"])
    context_rows = [["measured alone", "median (ms)", "p95 (ms)"]] + [
        [name, f"{s['median']:.1f}", f"{s['p95']:.1f}"] for name, s in raw["context"].items()
    ]
    return {
        "name": "dispatch_latency",
        "title": "Dispatch latency",
        "description": (
            "Time from just before the client sends `POST task/run_once` (wall clock) to the "
            "time stamp of the run's first log line; the user code's first statement is "
            '`print("first", flush=True)`. One orchestration, runs one after another, '
            f"{warmup} warm-up runs not counted. Floor: `{sys.executable} -c \"print('first')\"` "
            "timed from just before `subprocess.Popen` to the parent reading the line, sampled "
            "alternately with the runs."
        ),
        "params": {"runs": runs, "warmup": warmup, "recordable": runs >= MIN_RECORDED_RUNS},
        "figures": {
            "dispatch_ms": latency,
            "floor_ms": floor,
            "run_once_answer_ms": answered,
            "ratio_median": ratio,
            "overhead_median_ms": overhead,
            "stages_ms": stage_figures,
            "context_ms": raw["context"],
            "raw_dispatch_ms": [round(ms(s["latency"]), 3) for s in raw["samples"]],
            "raw_floor_ms": [round(ms(v), 3) for v in raw["floor_ns"]],
        },
        "table": [
            ["measure", "n", "median (ms)", "p95 (ms)", "min (ms)", "max (ms)"],
            _row("dispatch (run_once -> first line)", latency),
            _row("floor (bare `python -c` start)", floor),
            _row("run_once answer received", answered),
            ["overhead: median - floor median", "", f"{overhead:.1f}", "", "", ""],
            ["ratio: median / floor median", "", f"{ratio:.2f}", "", "", ""],
        ],
        "extra_tables": [
            ("Where the time goes (medians of each stage, from the server's records)", stages),
            ("Pieces timed alone on the same machine", context_rows),
        ],
        "goal": f"median dispatch latency <= {GOAL_RATIO:g} x median floor",
        "goal_met": met,
        "notes": [f"ratio {ratio:.2f} -> goal {'met' if met else 'NOT met'}"],
    }


def _row(label: str, stats: dict[str, float]) -> list[str]:
    return [label, str(int(stats["n"]))] + [
        f"{stats[k]:.1f}" for k in ("median", "p95", "min", "max")
    ]


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the table; write JSON if asked; return the result."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    raw = measure(args.runs, args.warmup)
    result = build_result(raw, args.runs, args.warmup)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
