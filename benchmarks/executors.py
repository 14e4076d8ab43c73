"""The Dask executor beside the local one, on one server, in one run.

Usage: python benchmarks/executors.py [--runs 20] [--burst 24] [--lines 100] [--json PATH] [--quick]

A `dask scheduler` and two `dask worker` processes (4 threads and `orch_runs=4` each) run on
127.0.0.1 beside a Jupyter server whose `dask` executor points at them; every measure is taken
for both executors, alternating, on the same server:

- dispatch: from just before `POST task/run_once` to the time stamp of the run's first log
  line, and to the moment that line is readable through `get_logs_for_run`; split into stages
  from the server's records (task recorded, run recorded, supervisor up, first line);
- burst: `--burst` run_once requests sent back to back; runs per second from the first request
  to the last task's end;
- log lag: a run prints `--lines` lines 20 ms apart, each holding `time.time_ns()`; the lag of a
  line is the moment `task/follow_logs` delivers it minus the moment it was printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    BenchError,
    BenchResult,
    Client,
    bench_parser,
    free_port,
    jupyter_server,
    ms,
    parse_log_line,
    parse_rfc3339_ns,
    summarize,
    upload_ready,
)

ROOT = Path(__file__).resolve().parent.parent
EXECUTORS = ("local", "dask")
FIRST = 'print("first", flush=True)\n'
LAGGED = (
    "import time, jupyter_orch\n"
    "for i in range(jupyter_orch.task_args()['lines']):\n"
    "    print(i, time.time_ns(), flush=True)\n"
    "    time.sleep(0.02)\n"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = bench_parser(
        __doc__, "tiny sizes (smoke test)", "dispatches per executor", runs_default=20
    )
    parser.add_argument("--burst", type=int, default=24, help="run_once requests in the burst")
    parser.add_argument("--lines", type=int, default=100, help="lines of the log-lag run")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.burst, args.lines = 2, 4, 10
    return args


class Cluster:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        port = self.address.rsplit(":", 1)[1]
        self._spawn("scheduler", ["--host", "127.0.0.1", "--port", port, "--no-dashboard"], env)
        for name in ("a", "b"):
            worker_env = dict(env, JUPYTER_ORCH_WORKER_DIR=str(self.workdir / f"cache-{name}"))
            argv = [self.address, "--name", name, "--host", "127.0.0.1", "--nthreads", "4"]
            argv += ["--no-nanny", "--no-dashboard", "--resources", "orch_runs=4"]
            argv += ["--local-directory", str(self.workdir / f"dask-{name}")]
            self._spawn("worker", argv, worker_env)
        self._wait_workers(2)

    def _spawn(self, kind: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{kind}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        command = [sys.executable, "-m", f"distributed.cli.dask_{kind}", *argv]
        self.procs.append(subprocess.Popen(command, stdout=log, stderr=log, env=env))

    def _wait_workers(self, count: int, timeout: float = 60.0) -> None:
        from distributed import Client as DaskClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with DaskClient(  # type: ignore[no-untyped-call]
                    self.address, timeout=2, set_as_default=False
                ) as client:
                    if len(client.scheduler_info()["workers"]) >= count:
                        return
            except (OSError, TimeoutError):
                pass
            time.sleep(0.2)
        raise BenchError("the Dask cluster did not start")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


# -- measures ----------------------------------------------------------------------------------


def first_visible(client: Client, task_id: str, timeout: float = 60.0) -> tuple[str, str, int]:
    """Poll until the task's run has a log line: run id, the line, when it was read (ns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.get_task(task_id, 1)["last_runs"]
        if runs:
            lines = client.logs(runs[0]["run_id"])
            if lines:
                return runs[0]["run_id"], lines[0], time.time_ns()
        time.sleep(0.002)
    raise BenchError(f"task {task_id} printed nothing in {timeout} s")


def dispatch(client: Client, orch_id: str, executor: str) -> dict[str, float]:
    """One dispatch: its stages in ms."""
    sent = time.time_ns()
    task_id = client.run_once(orch_id, executor=executor)
    run_id, line, seen = first_visible(client, task_id)
    printed = parse_log_line(line).ns
    task = client.wait_task(task_id)
    run = client.run_details(task_id, run_id)
    exit_record = json.loads((client.data_dir / "runs" / run_id / "exit.json").read_text())
    recorded = parse_rfc3339_ns(task["created_at"])
    started = parse_rfc3339_ns(run["started_at"])
    return {
        "dispatch": ms(printed - sent),
        "visible": ms(seen - sent),
        "task_recorded": ms(recorded - sent),
        "run_recorded": ms(started - recorded),
        "supervisor_up": ms(exit_record["started_ns"] - started),
        "first_line": ms(printed - exit_record["started_ns"]),
        "readable": ms(seen - printed),
    }


def burst(client: Client, orch_id: str, executor: str, count: int) -> dict[str, float]:
    """`count` run_once requests back to back; runs per second to the last end."""
    start = time.monotonic()
    tasks = [client.run_once(orch_id, executor=executor) for _ in range(count)]
    for task_id in tasks:
        if client.wait_task(task_id, timeout=300)["status"] != "success":
            raise BenchError(f"a burst run of {executor} failed")
    seconds = time.monotonic() - start
    return {"seconds": seconds, "runs_per_second": count / seconds}


def log_lag(client: Client, orch_id: str, executor: str, lines: int) -> list[float]:
    """Printed -> delivered by follow_logs, per line (ms)."""
    task_id = client.run_once(orch_id, {"lines": lines}, executor=executor)
    deadline = time.monotonic() + 60
    while not client.get_task(task_id, 1)["last_runs"]:
        if time.monotonic() > deadline:
            raise BenchError("no run")
        time.sleep(0.005)
    run_id = client.get_task(task_id, 1)["last_runs"][0]["run_id"]
    lags: list[float] = []
    with requests.get(
        client.url("task/follow_logs"),
        params={"id": run_id, "from": "0"},
        headers=client.session.headers,
        stream=True,
        timeout=60,
    ) as answer:
        for raw in answer.iter_lines():
            arrived = time.time_ns()
            message = json.loads(raw) if raw else {}
            if "line" in message:
                _, printed = parse_log_line(message["line"]).text.split()
                lags.append(ms(arrived - int(printed)))
    return lags


def measure(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="orch-bench-dask-"))
    cluster = Cluster(workdir)
    cluster.start()
    extra = [
        f"--OrchApp.dask_scheduler_address={cluster.address}",
        "--OrchApp.dask_run_resources={'orch_runs': 1}",
        "--OrchApp.keep_runs=1000",
    ]
    try:
        with jupyter_server(extra_args=extra) as client:
            first = upload_ready(client, FIRST, "first")
            lagged = upload_ready(client, LAGGED, "lagged")
            for executor in EXECUTORS:  # warm: environments, archives cached on workers
                for _ in range(2):
                    dispatch(client, first, executor)
            samples: dict[str, list[dict[str, float]]] = {e: [] for e in EXECUTORS}
            for _ in range(args.runs):
                for executor in EXECUTORS:
                    samples[executor].append(dispatch(client, first, executor))
            bursts = {e: burst(client, first, e, args.burst) for e in EXECUTORS}
            lags = {e: log_lag(client, lagged, e, args.lines) for e in EXECUTORS}
    finally:
        cluster.stop()
    return {"dispatch": samples, "burst": bursts, "lag": lags}


# -- the result --------------------------------------------------------------------------------

DESCRIPTION = (
    "One Jupyter server with both executors; a `dask scheduler` and two `dask worker` "
    "processes (4 threads, `orch_runs=4` each) on 127.0.0.1. Dispatch: from just before "
    "`POST task/run_once` to the first log line's time stamp, and to the moment that line is "
    "readable through `get_logs_for_run`, the executors alternating, 2 warm-up runs each not "
    "counted. Burst: run_once requests sent back to back, runs per second from the first "
    "request to the last end. Log lag: lines printed 20 ms apart holding `time.time_ns()`, "
    "each one's lag the moment `task/follow_logs` delivers it minus the moment it was printed."
)
STAGES = (
    ("task_recorded", "POST sent -> task recorded"),
    ("run_recorded", "task recorded -> run recorded"),
    ("supervisor_up", "run recorded -> supervisor up (dask: submit, claim, fetch, spawn)"),
    ("first_line", "supervisor up -> first line printed"),
    ("readable", "first line printed -> readable through the API"),
)


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    figures: dict[str, Any] = {"raw": raw}
    table = [["measure", *EXECUTORS, "dask - local"]]

    def row(label: str, values: dict[str, float], unit: str = "ms") -> None:
        cells = [f"{values[e]:.1f}" for e in EXECUTORS]
        table.append([f"{label} ({unit})", *cells, f"{values['dask'] - values['local']:+.1f}"])

    for key, label in (
        ("dispatch", "dispatch, median"),
        ("visible", "first line readable, median"),
    ):
        stats = {e: summarize([s[key] for s in raw["dispatch"][e]]) for e in EXECUTORS}
        figures[key] = stats
        row(label, {e: stats[e]["median"] for e in EXECUTORS})
        row(label.replace("median", "p95"), {e: stats[e]["p95"] for e in EXECUTORS})
    rates = {e: raw["burst"][e]["runs_per_second"] for e in EXECUTORS}
    row(f"burst of {args.burst}", rates, "runs/s")
    lag = {e: summarize(raw["lag"][e]) for e in EXECUTORS}
    figures["lag"] = lag
    row("log lag, median", {e: lag[e]["median"] for e in EXECUTORS})
    row("log lag, p95", {e: lag[e]["p95"] for e in EXECUTORS})
    stages = [["stage (median ms)", *EXECUTORS]]
    for key, label in STAGES:
        medians = [summarize([s[key] for s in raw["dispatch"][e]])["median"] for e in EXECUTORS]
        stages.append([label, *(f"{m:.1f}" for m in medians)])
    lag_goal = lag["dask"]["p95"] <= 100.0
    return BenchResult(
        name="executors",
        title="Executors: Dask beside local",
        description=DESCRIPTION,
        params={
            "runs": args.runs,
            "burst": args.burst,
            "lines": args.lines,
            "recordable": not args.quick,
        },
        figures=figures,
        table=table,
        extra_tables=[("Where a dispatch's time goes", stages)],
        goal="Dask runs' log lines readable within 100 ms of being printed (p95)",
        goal_met=lag_goal,
        notes=[],
    )


def main(argv: list[str] | None = None) -> BenchResult:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = build_result(measure(args), args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    out = main()
    print(json.dumps([out["table"], out["extra_tables"]], indent=1))
