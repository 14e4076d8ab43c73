"""Log capture: one run printing a million lines; lines captured per second, every line in order.

Usage: python benchmarks/log_capture.py [--lines 1000000] [--rounds 3] [--json PATH] [--quick]

Each variant's `main.py` prints `--lines` lines. The run's log (`runs/<id>/log` in the server's
data directory) is read from the file directly, not through `get_logs_for_run` (a million
lines is a large HTTP answer): every line must be a full stdout line with the expected text,
in order. Capture rate = lines / (time stamp of the last line - time stamp of the first), the
stamps taken by the supervisor as it reads the pipe. Wall time = from just before the
`run_once` POST to the run's `ended_at`. The floor runs the same script outside the server,
its stdout a pipe read in 64 KiB chunks into a file by this process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    BenchError,
    BenchResult,
    Client,
    bench_main,
    bench_parser,
    jupyter_server,
    parse_rfc3339_ns,
    percentile,
    upload_ready,
)

GOAL_LINES_PER_S = 200_000.0
RECORDABLE_LINES = 1_000_000
WIDE = 200  # characters of a wide line
TICK = os.sysconf("SC_CLK_TCK")
SCRIPTS = {
    "print": "for i in range({n}):\n    print(i)\n",
    "wide": "pad = 'x' * {pad}\nfor i in range({n}):\n    print(f'{{i:08d}} {{pad}}')\n",
    "buffered": (
        "import sys\n"
        "out = open(1, 'w', buffering=1 << 16, closefd=False)\n"
        "for i in range({n}):\n    print(i, file=out)\n"
        "out.flush()\n"
    ),
}
LABELS = {
    "print": "`print(i)`, unbuffered (`python -u`, as every run)",
    "wide": f"`print(f'{{i:08d}} {{pad}}')`, {WIDE}-character lines, unbuffered",
    "buffered": "`print(i, file=out)`, the script's own 64 KiB buffer",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(__doc__, "100,000 lines, 1 round (smoke)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines each run prints")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant")
    parser.add_argument("--variants", default="print,wide,buffered", help="comma-separated")
    args = parser.parse_args(argv)
    if args.quick:
        # more than a pipe holds (64 KiB): the supervisor reads it in several chunks, so a rate
        # can be told even when the run writes everything before the supervisor is scheduled
        args.lines, args.rounds = 100_000, 1
    args.variants = [v for v in args.variants.split(",") if v]
    if args.lines < 2 or args.rounds < 1 or not set(args.variants) <= set(SCRIPTS):
        parser.error(f"--lines >= 2, --rounds >= 1, --variants among {', '.join(SCRIPTS)}")
    return args


def script(variant: str, lines: int) -> str:
    """The user code of a variant."""
    return SCRIPTS[variant].format(n=lines, pad=WIDE - 9)


def expected_text(variant: str, index: int) -> bytes:
    """The text of line `index` of a variant."""
    if variant == "wide":
        return f"{index:08d} {'x' * (WIDE - 9)}".encode()
    return str(index).encode()


# -- process CPU ------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuWatch:
    """Samples the CPU time of a run's supervisor and user process until told to stop (the
    last sample before each exits is kept: a lower bound, short by at most one interval)."""

    def __init__(self, run_dir: Callable[[], Path | None], interval: float = 0.05) -> None:
        self.run_dir = run_dir
        self.interval = interval
        self.seconds = {"supervisor": 0.0, "user": 0.0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> CpuWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            folder = self.run_dir()
            if folder is None:
                continue
            for name, record in (("supervisor", "supervisor.json"), ("user", "child.json")):
                pid = _record_pid(folder / record)
                used = None if pid is None else _cpu_seconds(pid)
                if used is not None:
                    self.seconds[name] = max(self.seconds[name], used)


def _record_pid(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError):
        return None
    return pid if isinstance(pid, int) else None


# -- one run ----------------------------------------------------------------------------------


def run_one(client: Client, orch_id: str, variant: str, lines: int) -> dict[str, Any]:
    """Run the variant's orchestration once; its figures after checking its log."""
    run_dir: list[Path] = []
    sent = time.time()
    # Every line is checked: the log's cap (64 MiB by default; 230 MiB of wide lines) is
    # lifted for this task.
    task_id = client.run_once(orch_id, max_log_bytes=1 << 40)
    with CpuWatch(lambda: run_dir[0] if run_dir else None) as cpu:
        task = client.get_task(task_id)
        while not task["last_runs"]:
            task = client.get_task(task_id)
        run_dir.append(client.data_dir / "runs" / task["last_runs"][0]["run_id"])
        task = client.wait_task(task_id, timeout=600, interval=0.05)
    if task["status"] != "success":
        raise BenchError(f"the {variant} run did not succeed: {task}")
    run = client.run_details(task_id, task["last_runs"][0]["run_id"])
    ended = datetime.fromisoformat(run["ended_at"]).timestamp()
    check = check_log(run_dir[0] / "log", variant, lines)
    span = (check["last_ns"] - check["first_ns"]) / 1e9
    return {
        **check,
        # Lines all read in one chunk share one time stamp: no rate can be told then.
        "lines_per_s": lines / span if span > 0 else None,
        "capture_span_s": span,
        "wall_s": ended - sent,
        "cpu_s": dict(cpu.seconds),
    }


def check_log(path: Path, variant: str, lines: int) -> dict[str, Any]:
    """Every line a full stdout line with the expected text, in order; first and last stamps."""
    first = last = ""
    count = bad = 0
    size = path.stat().st_size
    with open(path, "rb") as fh:
        for count, line in enumerate(fh):
            stamp, stream, flag, text = line.rstrip(b"\n").split(b" ", 3)
            if stream != b"stdout" or flag != b"F" or text != expected_text(variant, count):
                bad += 1
            if not first:
                first = stamp.decode()
            last = stamp.decode()
    found = count + 1 if first else 0
    if found != lines or bad:
        raise BenchError(f"{variant}: {found} lines in the log, {bad} wrong, {lines} expected")
    return {
        "lines_found": found,
        "lines_wrong": bad,
        "log_bytes": size,
        "first_ns": parse_rfc3339_ns(first),
        "last_ns": parse_rfc3339_ns(last),
    }


def floor_one(variant: str, lines: int, tmp: Path) -> float:
    """Seconds for the same script outside the server: its stdout piped into a file."""
    code = script(variant, lines)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    with open(tmp / "floor.log", "wb") as out:
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            out.write(chunk)
    proc.stdout.close()
    if proc.wait() != 0:
        raise BenchError(f"the {variant} floor script failed")
    return time.perf_counter() - start


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every variant's rounds on one server, each followed by a floor run."""
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
    floors: dict[str, list[float]] = {v: [] for v in args.variants}
    with jupyter_server() as client, tempfile.TemporaryDirectory() as tmp:
        orchs = {v: upload_ready(client, script(v, args.lines), f"log-{v}") for v in args.variants}
        for _ in range(args.rounds):
            for variant in args.variants:
                runs[variant].append(run_one(client, orchs[variant], variant, args.lines))
                floors[variant].append(floor_one(variant, args.lines, Path(tmp)))
    return {"runs": runs, "floors": floors}


# -- the result -------------------------------------------------------------------------------


def summary(runs: list[dict[str, Any]], floors: list[float], lines: int) -> dict[str, Any]:
    """Medians of one variant."""

    def med(values: list[float]) -> float:
        return percentile(values, 50)

    return {
        "lines": lines,
        "lines_per_s": med(rated)
        if (rated := [r["lines_per_s"] for r in runs if r["lines_per_s"]])
        else None,
        "lines_per_s_each": [r["lines_per_s"] for r in runs],
        "wall_s": med([r["wall_s"] for r in runs]),
        "floor_s": med(floors),
        "floor_lines_per_s": lines / med(floors),
        "supervisor_cpu_s": med([r["cpu_s"]["supervisor"] for r in runs]),
        "user_cpu_s": med([r["cpu_s"]["user"] for r in runs]),
        "log_mib": runs[0]["log_bytes"] / 2**20,
        "complete": all(r["lines_found"] == lines and r["lines_wrong"] == 0 for r in runs),
    }


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    """Tables and the verdict: judged on the first variant (a plain `print` loop)."""
    stats = {v: summary(raw["runs"][v], raw["floors"][v], args.lines) for v in args.variants}
    judged = stats[args.variants[0]]
    rate = judged["lines_per_s"] or 0.0
    met = rate >= GOAL_LINES_PER_S and all(s["complete"] for s in stats.values())
    return {
        "name": "log_capture",
        "title": "Log capture",
        "description": _description(args),
        "params": {
            "lines": args.lines,
            "rounds": args.rounds,
            "variants": args.variants,
            "recordable": not args.quick and args.lines >= RECORDABLE_LINES,
        },
        "figures": {"by_variant": stats, "raw": raw},
        "table": _table(stats, args),
        "extra_tables": [("CPU of the run's processes (median seconds)", _cpu_table(stats))],
        "goal": f">= {GOAL_LINES_PER_S:,.0f} lines/s captured; every line present, in order",
        "goal_met": met,
        "notes": [
            f"{LABELS[args.variants[0]]}: {rate:,.0f} lines/s -> goal "
            f"{'met' if met else 'NOT met'}",
            "every line of every run present, in order, as a full stdout line: "
            f"{'yes' if all(s['complete'] for s in stats.values()) else 'NO'}",
        ],
    }


def _description(args: argparse.Namespace) -> str:
    return (
        f"One run-once task printing {args.lines:,} lines, in {len(args.variants)} variants, "
        f"{args.rounds} runs of each on one server (medians shown). Lines/s = lines / (time "
        "stamp of the last log line - that of the first; the supervisor stamps lines as it "
        "reads them from the pipe). Wall = from just before the `run_once` POST to the run's "
        "`ended_at`. The log file (`runs/<id>/log`) is read directly from the data directory "
        "and every line checked (stream, full-line flag, text, order). Floor: the same script "
        f"run by `{Path(sys.executable).name} -u -c` outside the server, its stdout piped to this "
        "process, which writes it to a file."
    )


def _table(stats: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[list[str]]:
    rows = [
        [
            "variant",
            "lines/s captured",
            "per run",
            "wall (s)",
            "floor (s)",
            "floor lines/s",
            "log (MiB)",
            "all lines, in order",
        ]
    ]
    for variant, s in stats.items():
        rows.append(
            [
                LABELS[variant],
                _rate(s["lines_per_s"]),
                ", ".join(_rate(v) for v in s["lines_per_s_each"]),
                f"{s['wall_s']:.2f}",
                f"{s['floor_s']:.2f}",
                f"{s['floor_lines_per_s']:,.0f}",
                f"{s['log_mib']:.1f}",
                "yes" if s["complete"] else "NO",
            ]
        )
    return rows


def _rate(value: float | None) -> str:
    return "(one read)" if value is None else f"{value:,.0f}"


def _cpu_table(stats: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = [["variant", "supervisor (s)", "user process (s)", "supervisor µs per line"]]
    for variant, s in stats.items():
        per_line = s["supervisor_cpu_s"] / s["lines"] * 1e6
        rows.append(
            [
                LABELS[variant],
                f"{s['supervisor_cpu_s']:.2f}",
                f"{s['user_cpu_s']:.2f}",
                f"{per_line:.2f}",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the tables; write JSON if asked; return the result."""
    return bench_main(argv, parse_args, measure, build_result)


if __name__ == "__main__":
    main()
