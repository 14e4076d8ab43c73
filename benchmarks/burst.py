"""Burst: many `task/run_once` requests at once on a trivial script, until every run succeeds.

Usage: python benchmarks/burst.py [--runs-per-burst 500] [--clients 32] [--rounds 3]
       [--variants server,env] [--alone-samples 20] [--json PATH] [--quick]

Each round starts a fresh server, uploads `main.py` = `pass` (with an empty `requirements.txt`
for the `env` variant), then fires N `task/run_once`
requests from a bounded pool of client threads (one HTTP session each). Throughput is
N / (the latest run's `ended_at` - the moment just before the first request), both on this
machine's wall clock; the acceptance rate is N / (the last 201 received - that moment). After
the burst the server's database is read (read-only) to check that every task has exactly one
run and every run succeeded, and `task/list` of the orchestration is checked the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
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
    distribution,
    jupyter_server,
    percentile,
    process_cpu,
    read_only_db,
)

GOAL_RUNS_PER_S = 50.0
RECORDABLE_RUNS = 500
SETTLE_TIMEOUT = 300.0
USER_CODE = "pass\n"
VARIANTS = {
    "server": "server's Python",
    "env": "own environment",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(__doc__, "20 runs, 1 round (smoke test)")
    parser.add_argument("--runs-per-burst", type=int, default=500, help="run_once requests")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, each on a fresh server")
    parser.add_argument("--alone-samples", type=int, default=20, help="runs timed alone for CPU")
    parser.add_argument(
        "--variants",
        default="server,env",
        help="comma-separated: server (the server's Python), env (an environment of its own)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs_per_burst, args.clients, args.rounds, args.alone_samples = 20, 8, 1, 3
    args.variants = [v for v in args.variants.split(",") if v]
    if min(args.runs_per_burst, args.clients, args.rounds) < 1:
        parser.error("--runs-per-burst, --clients and --rounds must be positive")
    if not args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants: choose among {', '.join(VARIANTS)}")
    return args


# -- the burst -------------------------------------------------------------------------------


class Firing:
    """Sends `run_once` requests from many threads, one HTTP session per thread."""

    def __init__(self, client: Client, orch_id: str) -> None:
        self.client = client
        self.body = {"orch_id": orch_id, "workspace_id": 1, "json": {}}
        self.local = threading.local()

    def session(self) -> requests.Session:
        """This thread's session (with the server's token)."""
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers.update(self.client.session.headers)
        session: requests.Session = self.local.session
        return session

    def fire(self, _: int) -> dict[str, Any]:
        """One request: when it was answered, how long it took, its status and task id."""
        start = time.time()
        try:
            response = self.session().post(self.client.url("task/run_once"), json=self.body)
        except requests.RequestException as exc:
            return {"answered": time.time(), "ms": None, "status": type(exc).__name__}
        answered = time.time()
        task_id = response.json().get("id") if response.status_code == 201 else None
        return {
            "answered": answered,
            "ms": (answered - start) * 1000,
            "status": response.status_code,
            "task_id": task_id,
        }


def burst(client: Client, orch_id: str, runs: int, clients: int) -> dict[str, Any]:
    """Fire the requests; wait until every task has ended; the raw figures of one round."""
    firing = Firing(client, orch_id)
    cpu_before = cpu_sample(client.pid)
    start = time.time()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(firing.fire, range(runs)))
    accepted = [a["task_id"] for a in answers if a["status"] == 201]
    seen_done = wait_all_ended(client, orch_id, len(accepted))
    cpu_after = cpu_sample(client.pid)
    return {
        "start": start,
        "answers": answers,
        "task_ids": accepted,
        "seen_done": seen_done,
        "cpu": cpu_use(cpu_before, cpu_after),
        "records": records(client, orch_id),
        "api_check": api_check(client, orch_id),
    }


def wait_all_ended(client: Client, orch_id: str, expected: int) -> float:
    """Poll the database until `expected` tasks of the orchestration have ended; when."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    sql = (
        "SELECT COUNT(*) FROM tasks WHERE orch_id = ?"
        " AND status IN ('success', 'failed', 'timed_out', 'killed')"
    )
    while True:
        with read_only_db(client.data_dir) as db:
            ended = int(db.execute(sql, (orch_id,)).fetchone()[0])
        if ended >= expected:
            return time.time()
        if time.monotonic() > deadline:
            raise BenchError(f"only {ended} of {expected} tasks ended after {SETTLE_TIMEOUT} s")
        time.sleep(0.02)


def records(client: Client, orch_id: str) -> dict[str, Any]:
    """Tasks and runs of the orchestration, from the server's database."""
    with read_only_db(client.data_dir) as db:
        tasks = db.execute("SELECT id, status FROM tasks WHERE orch_id = ?", (orch_id,)).fetchall()
        runs = db.execute(
            "SELECT runs.task_id, runs.status, runs.created_at, runs.ended_at FROM runs"
            " JOIN tasks ON tasks.id = runs.task_id WHERE tasks.orch_id = ?",
            (orch_id,),
        ).fetchall()
    return {"tasks": tasks, "runs": runs}


def api_check(client: Client, orch_id: str) -> dict[str, int]:
    """What `task/list` of the orchestration says: tasks, and those with one successful run."""
    tasks = client.post("task/list", {"orch_id": orch_id, "run_limit": 5})
    good = [
        t
        for t in tasks
        if t["status"] == "success"
        and len(t["last_runs"]) == 1
        and t["last_runs"][0]["status"] == "success"
    ]
    return {"tasks": len(tasks), "one_successful_run": len(good)}


def upload_variant(client: Client, variant: str) -> str:
    """The orchestration of a variant: on the server's Python, or in an environment of its own
    (an empty `requirements.txt`: a virtual environment with nothing installed)."""
    files: dict[str, str | bytes] = {"main.py": USER_CODE}
    if variant == "env":
        files["requirements.txt"] = "# nothing to install\n"
    orch_id = client.upload(files, name=f"burst-{variant}")
    client.wait_orch(orch_id)
    return orch_id


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every round of every variant, each on a fresh server; then one run's CPU alone."""
    rounds = []
    for variant in args.variants:
        for _ in range(args.rounds):
            with jupyter_server() as client:
                orch_id = upload_variant(client, variant)
                raw = burst(client, orch_id, args.runs_per_burst, args.clients)
                rounds.append({**raw, "variant": variant})
    return {"rounds": rounds, "cpu_alone": cpu_alone(args.alone_samples)}


# -- the CPU of one run, without the server ---------------------------------------------------


def children_cpu_ms() -> float:
    """User + system CPU milliseconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def cpu_of(start: Callable[[], subprocess.Popen[bytes]], samples: int) -> float:
    """Median CPU milliseconds (user + system, with its children) of one process started by
    `start`, over `samples` started one after another."""
    values = []
    for _ in range(samples):
        before = children_cpu_ms()
        if start().wait() != 0:
            raise BenchError("a process measured for its CPU time failed")
        values.append(children_cpu_ms() - before)
    return percentile(values, 50)


def cpu_alone(samples: int) -> dict[str, float]:
    """CPU of the pieces of one run of `pass`, each started alone (nothing else running)."""
    from jupyter_orch._proc import runfiles, supervise

    with tempfile.TemporaryDirectory(prefix="burst-cpu-") as tmp:
        source = Path(tmp) / "orch"
        source.mkdir()
        (source / "main.py").write_text(USER_CODE, encoding="utf-8")
        user = [sys.executable, "-u", "main.py"]
        counter = iter(range(1 << 30))

        def supervised() -> subprocess.Popen[bytes]:
            run_dir = Path(tmp) / f"run-{next(counter)}"
            run_dir.mkdir()
            spec = {"argv": user, "env": dict(os.environ), "source": str(source), "cwd": ""}
            runfiles.write_spec(str(run_dir), {**spec, "grace": 10.0, "max_line": 16384})
            return subprocess.Popen(supervise.command(sys.executable, str(run_dir)))

        # Ten times the samples: a cheap run, and a mean of coarse (clock tick) counts.
        forked_ms = asyncio.run(forked_cpu(source, Path(tmp) / "forked", samples * 10))
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        plain = [str(venv / "bin" / "python"), "-u", "main.py"]
        return {
            "user_python_ms": cpu_of(lambda: subprocess.Popen(user, cwd=source), samples),
            "venv_python_ms": cpu_of(lambda: subprocess.Popen(plain, cwd=source), samples),
            "bare_python_ms": cpu_of(
                lambda: subprocess.Popen([sys.executable, "-I", "-S", "-c", "pass"]), samples
            ),
            "supervised_run_ms": cpu_of(supervised, samples),
            "forked_run_ms": forked_ms,
        }


async def forked_cpu(source: Path, runs: Path, samples: int) -> float:
    """Mean CPU milliseconds of one run started through the fork server (its supervisor and
    `main.py` forked from it), runs one after another, as the server's executor starts them.

    A mean over all the runs, not a median: /proc counts CPU in clock ticks (10 ms here),
    coarser than one such run, so each run's own figure is 0, 10 or 20 ms."""
    from jupyter_orch.server.executors.base import RunSpec, base_env
    from jupyter_orch.server.executors.local import LocalExecutor

    executor = LocalExecutor()
    await executor.start()
    try:
        if executor._fork is None or executor._fork.proc is None:
            raise BenchError("the fork server did not start")
        pid = executor._fork.proc.pid
        before = sum(process_cpu(pid)[:2])
        for index in range(samples):
            spec = RunSpec(
                run_id=str(index),
                run_dir=runs / str(index),
                argv=[sys.executable, "-u", "main.py"],
                env={**base_env(), "PYTHONUNBUFFERED": "1"},
                source=source,
                cwd="",
            )
            if not executor.inline(spec):
                raise BenchError("the run would not be forked from the fork server")
            record = await (await executor.launch(spec))
            if record.status.value != "success":
                raise BenchError(f"a forked run failed: {record.reason}")
            for _ in range(5000):  # until the fork server has reaped it (at most 5 s)
                if not _alive(spec.run_dir):
                    break
                await asyncio.sleep(0.001)
        return (sum(process_cpu(pid)[:2]) - before) * 1000 / max(samples, 1)
    finally:
        await executor.stop()


def _alive(run_dir: Path) -> bool:
    """Whether the run's supervisor is still a process (a zombie counts: not yet reaped)."""
    from jupyter_orch._proc import supervise

    info: dict[str, int] = json.loads((run_dir / "supervisor.json").read_text(encoding="utf-8"))
    return supervise.process_start_ticks(info["pid"]) == info["start"]


# -- the analysis ----------------------------------------------------------------------------


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def analyse_round(raw: dict[str, Any], requested: int) -> dict[str, Any]:
    """Rates, request latency and the completeness checks of one round."""
    start, answers = raw["start"], raw["answers"]
    tasks, runs = raw["records"]["tasks"], raw["records"]["runs"]
    accepted = raw["task_ids"]
    runs_per_task = Counter(task_id for task_id, *_ in runs)
    last_end = max((_ts(r[3]) for r in runs if r[3]), default=start)
    last_201 = max((a["answered"] for a in answers if a["status"] == 201), default=start)
    latency = [a["ms"] for a in answers if a["ms"] is not None]
    run_ms = [(_ts(r[3]) - _ts(r[2])) * 1000 for r in runs if r[3]]
    return {
        "variant": raw["variant"],
        "requested": requested,
        "accepted": len(accepted),
        "refused": dict(Counter(str(a["status"]) for a in answers if a["status"] != 201)),
        "distinct_task_ids": len(set(accepted)),
        "tasks_recorded": len(tasks),
        "runs_recorded": len(runs),
        "tasks_without_run": sum(1 for t, _ in tasks if runs_per_task[t] == 0),
        "tasks_with_several_runs": sum(1 for n in runs_per_task.values() if n > 1),
        "run_status": dict(Counter(r[1] for r in runs)),
        "task_status": dict(Counter(s for _, s in tasks)),
        "api_check": raw["api_check"],
        "seconds_to_last_success": last_end - start,
        "runs_per_s": len(runs) / max(last_end - start, 1e-9),
        "seconds_to_last_201": last_201 - start,
        "accepted_per_s": len(accepted) / max(last_201 - start, 1e-9),
        "client_saw_all_done_s": raw["seen_done"] - start,
        "request_ms": distribution(latency) if latency else {},
        "run_duration_ms": distribution(run_ms) if run_ms else {},
        "cpu": raw["cpu"],
    }


def complete(round_: dict[str, Any]) -> bool:
    """Every request accepted, one run per task, every run and task a success."""
    n = round_["requested"]
    return bool(
        round_["accepted"] == round_["distinct_task_ids"] == round_["tasks_recorded"] == n
        and round_["runs_recorded"] == n
        and round_["tasks_without_run"] == 0
        and round_["tasks_with_several_runs"] == 0
        and round_["run_status"] == {"success": n}
        and round_["api_check"] == {"tasks": n, "one_successful_run": n}
    )


def rates(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Median runs/s of each variant measured."""
    variants = dict.fromkeys(r["variant"] for r in rounds)
    return {
        v: percentile([r["runs_per_s"] for r in rounds if r["variant"] == v], 50) for v in variants
    }


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    """Figures, tables and the verdict on the goal (judged on the first variant)."""
    rounds = [analyse_round(r, args.runs_per_burst) for r in raw["rounds"]]
    alone = raw["cpu_alone"]
    by_variant = rates(rounds)
    rate = by_variant[args.variants[0]]
    all_complete = all(complete(r) for r in rounds)
    met = rate >= GOAL_RUNS_PER_S and all_complete
    return {
        "name": "burst",
        "title": "Burst of run_once requests",
        "description": _description(args),
        "params": {
            "runs_per_burst": args.runs_per_burst,
            "clients": args.clients,
            "rounds": args.rounds,
            "variants": args.variants,
            "cores": len(os.sched_getaffinity(0)),
            "recordable": not args.quick and args.runs_per_burst >= RECORDABLE_RUNS,
        },
        "figures": {
            "runs_per_s_median": rate,
            "runs_per_s_by_variant": by_variant,
            "complete": all_complete,
            "rounds": rounds,
            "cpu_alone_ms": alone,
        },
        "table": _main_table(rounds, args.variants),
        "extra_tables": [
            ("Completeness (every round)", _count_table(rounds)),
            ("CPU during each burst (first request -> last success seen)", _cpu(rounds)),
            ("CPU of one run's processes (user + system)", _cpu_per_run(rounds, alone)),
        ],
        "goal": f">= {GOAL_RUNS_PER_S:g} runs/s on 2 cores; no run lost or doubled",
        "goal_met": met,
        "notes": _notes(rounds, by_variant, args.variants[0], all_complete),
    }


def _description(args: argparse.Namespace) -> str:
    return (
        f"{args.runs_per_burst} `POST task/run_once` on one orchestration whose `main.py` is "
        f"`pass`, sent by {args.clients} client threads (one HTTP session each) as fast as "
        "the server answers. Runs/s = runs / (latest `ended_at` of the runs, from the server's "
        "database - the moment just before the first request); accepted/s = 201 answers / (the "
        "last 201 received - that moment). Every run and task is then checked in the database "
        f"(read-only) and through `task/list`. {args.rounds} rounds of each variant, each on a "
        "fresh server. `server's Python`: no `requirements.txt`, the runs use the server's "
        "interpreter. `own environment`: an empty `requirements.txt`, so the runs use a virtual "
        "environment with nothing installed (built once, before the burst). The goal is judged "
        "on the first variant listed. The figures in the first table are medians over "
        "the rounds of a variant, the rounds' own values in brackets."
    )


def _main_table(rounds: list[dict[str, Any]], variants: list[str]) -> list[list[str]]:
    rows = [["measure", *(VARIANTS[v] for v in variants)]]
    for label, key, sub, fmt in (
        ("runs/s (first request -> last run ended)", "runs_per_s", None, "{:.1f}"),
        ("seconds to the last success", "seconds_to_last_success", None, "{:.2f}"),
        ("requests accepted/s (first request -> last 201)", "accepted_per_s", None, "{:.1f}"),
        ("seconds to the last 201", "seconds_to_last_201", None, "{:.2f}"),
        ("run_once answer p50 (ms)", "request_ms", "p50", "{:.1f}"),
        ("run_once answer p99 (ms)", "request_ms", "p99", "{:.1f}"),
        ("run duration p50 (`created_at` -> `ended_at`, ms)", "run_duration_ms", "p50", "{:.0f}"),
        ("run duration max (ms)", "run_duration_ms", "max", "{:.0f}"),
    ):
        row = [label]
        for variant in variants:
            values = [r[key][sub] if sub else r[key] for r in rounds if r["variant"] == variant]
            each = ", ".join(fmt.format(v) for v in values)
            row.append(f"{fmt.format(percentile(values, 50))} ({each})")
        rows.append(row)
    return rows


def _count_table(rounds: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["round", "requested", "201", "tasks", "runs", "tasks w/o run", "doubled", "outcomes"]]
    for i, r in enumerate(rounds, 1):
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["run_status"].items()))
        rows.append(
            [
                f"{i} ({r['variant']})",
                str(r["requested"]),
                str(r["accepted"]),
                str(r["tasks_recorded"]),
                str(r["runs_recorded"]),
                str(r["tasks_without_run"]),
                str(r["tasks_with_several_runs"]),
                outcomes,
            ]
        )
    return rows


def _cpu(rounds: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["round", "seconds", "server (cores)", "runs' processes (cores)", "machine busy"]]
    for i, r in enumerate(rounds, 1):
        cpu = r["cpu"]
        rows.append(
            [
                f"{i} ({r['variant']})",
                f"{cpu['seconds']:.2f}",
                f"{cpu['process_cores']:.2f}",
                f"{cpu['children_cores']:.2f}",
                f"{cpu['machine_busy']:.0%}",
            ]
        )
    return rows


def cpu_per_run(rounds: list[dict[str, Any]], variant: str, key: str) -> float:
    """Median CPU ms per run in the bursts of a variant: `children_cores` (the runs' processes,
    reaped) or `process_cores` (the server)."""
    values = [
        r["cpu"][key] * r["cpu"]["seconds"] * 1000 / max(r["runs_recorded"], 1)
        for r in rounds
        if r["variant"] == variant
    ]
    return percentile(values, 50)


def _cpu_per_run(rounds: list[dict[str, Any]], alone: dict[str, float]) -> list[list[str]]:
    rows = [["measure", "CPU ms per run (median)"]]
    for variant in dict.fromkeys(r["variant"] for r in rounds):
        runs = cpu_per_run(rounds, variant, "children_cores")
        server = cpu_per_run(rounds, variant, "process_cores")
        rows += [
            [f"burst, {VARIANTS[variant]}: the runs' processes (and fork server)", f"{runs:.1f}"],
            [f"burst, {VARIANTS[variant]}: the server process", f"{server:.1f}"],
            [
                f"ceiling, {VARIANTS[variant]}: 2 cores / (runs + server), runs/s",
                _ceiling(runs, server),
            ],
        ]
    alone_rows = [
        ("alone: a run from the fork server (supervisor + `main.py`; mean)", "forked_run_ms"),
        ("alone: supervisor started anew running `python -u main.py`", "supervised_run_ms"),
        ("alone: `python -u main.py` (the server's Python)", "user_python_ms"),
        ("alone: `python -u main.py` (a plain venv's Python)", "venv_python_ms"),
        ("alone: `python -I -S -c pass` (as the supervisor's)", "bare_python_ms"),
    ]
    return [*rows, *([label, f"{alone[key]:.1f}"] for label, key in alone_rows)]


def _ceiling(runs_ms: float, server_ms: float) -> str:
    return f"{2000 / max(runs_ms + server_ms, 1e-9):.1f}"


def _notes(
    rounds: list[dict[str, Any]], by_variant: dict[str, float], judged: str, all_complete: bool
) -> list[str]:
    rate = by_variant[judged]
    notes = [
        f"median {rate:.1f} runs/s ({VARIANTS[judged]}) -> goal "
        f"{'met' if rate >= GOAL_RUNS_PER_S and all_complete else 'NOT met'}",
        "every request accepted, one run per task, every run a success, in every round: "
        f"{'yes' if all_complete else 'NO'}",
    ]
    notes += [f"{VARIANTS[v]}: median {r:.1f} runs/s" for v, r in by_variant.items() if v != judged]
    return notes


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the tables; write JSON if asked; return the result."""
    return bench_main(argv, parse_args, measure, build_result)


if __name__ == "__main__":
    main()
