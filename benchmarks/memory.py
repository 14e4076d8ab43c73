"""Memory: the server's resident size when idle, and each running run's supervisor.

Usage: python benchmarks/memory.py [--concurrent 20] [--warm-runs 5] [--rounds 3]
       [--json PATH] [--quick]

Each round starts a fresh server and reads its memory from /proc: RSS (`VmRSS` of
/proc/PID/status), PSS and USS (`Pss`, and `Private_Clean` + `Private_Dirty`, of
/proc/PID/smaps_rollup). PSS divides each shared page among the processes that map it; USS is
what the process alone holds, what one more of it costs. The server, and its fork server (part
of its footprint), are read 2 s after it answers, then 2 s after a few runs. Then N runs that
sleep are started at once; once each has its user process (`child.json`), every supervisor (pid
from `supervisor.json`) and user process is read. The user process's memory is the user code's,
not the supervisor's overhead; it is shown apart. For reference: a bare `python -I -S` sleeping,
and the same Jupyter server with the extension disabled.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
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
    fork_servers,
    jupyter_server,
    percentile,
    upload_ready,
)

GOAL_SERVER_MIB = 150.0
GOAL_SUPERVISOR_MIB = 15.0
SETTLE_S = 2.0
SLEEP_S = 120
KINDS = ("rss", "pss", "uss")


PHASES = ("idle", "after_runs", "loaded")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(__doc__, "3 runs, 1 round (smoke test)")
    parser.add_argument("--concurrent", type=int, default=20, help="runs sleeping at once")
    parser.add_argument("--warm-runs", type=int, default=5, help="runs before the idle reading")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each on a fresh server")
    args = parser.parse_args(argv)
    if args.quick:
        args.concurrent, args.warm_runs, args.rounds = 3, 1, 1
    if min(args.concurrent, args.rounds) < 1 or args.warm_runs < 0:
        parser.error("--concurrent and --rounds must be positive, --warm-runs >= 0")
    return args


# -- /proc ------------------------------------------------------------------------------------


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of a process, in MiB (BenchError if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except OSError as exc:
        raise BenchError(f"process {pid} is gone: {exc}") from exc
    fields = _kib_fields(status) | _kib_fields(rollup)
    return {
        "rss": fields["VmRSS"] / 1024,
        "pss": fields["Pss"] / 1024,
        "uss": (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024,
    }


def _kib_fields(text: str) -> dict[str, int]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key.strip()] = int(parts[0])
    return fields


def record_pid(path: Path) -> int | None:
    """The `pid` of a supervisor's record, if it is written yet."""
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError):
        return None
    return pid if isinstance(pid, int) else None


# -- a round ----------------------------------------------------------------------------------


def warm_up(client: Client, runs: int) -> None:
    """A few runs of `pass`, one after another."""
    orch_id = upload_ready(client, "pass\n", "memory-warm")
    for _ in range(runs):
        task = client.wait_task(client.run_once(orch_id))
        if task["status"] != "success":
            raise BenchError(f"a warm-up run failed: {task}")


def start_sleepers(client: Client, count: int) -> list[str]:
    """`count` runs that sleep; their task ids once each user process is up."""
    code = f"import time\nprint('up', flush=True)\ntime.sleep({SLEEP_S})\n"
    orch_id = upload_ready(client, code, "memory-sleep")
    ids = [client.run_once(orch_id) for _ in range(count)]
    deadline = time.monotonic() + 60
    while len(run_dirs(client, ids)) < count or not all(
        (d / "log").exists() for d in run_dirs(client, ids)
    ):
        if time.monotonic() > deadline:
            raise BenchError("the sleeping runs did not all start within 60 s")
        time.sleep(0.1)
    time.sleep(SETTLE_S)
    return ids


def run_dirs(client: Client, task_ids: list[str]) -> list[Path]:
    """The folders of the tasks' runs that have both a supervisor and a user process."""
    folders = []
    for task_id in task_ids:
        for run in client.get_task(task_id)["last_runs"]:
            folder = client.data_dir / "runs" / run["run_id"]
            if record_pid(folder / "supervisor.json") and record_pid(folder / "child.json"):
                folders.append(folder)
    return folders


def read_runs(folders: list[Path]) -> dict[str, list[dict[str, float]]]:
    """Memory of every supervisor and every user process."""
    found: dict[str, list[dict[str, float]]] = {"supervisor": [], "user": []}
    for folder in folders:
        for name, record in (("supervisor", "supervisor.json"), ("user", "child.json")):
            pid = record_pid(folder / record)
            assert pid is not None
            found[name].append(memory_mib(pid))
    return found


def stop_all(client: Client, task_ids: list[str]) -> None:
    """Kill the sleeping tasks and wait until they have ended."""
    for task_id in task_ids:
        client.post("task/kill", {"id": task_id}, status=202)
    for task_id in task_ids:
        client.wait_task(task_id, timeout=60)


def one_round(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh server: idle, after runs, with N runs sleeping."""
    with jupyter_server(extra_args=["--OrchApp.stop_runs_on_shutdown=True"]) as client:
        time.sleep(SETTLE_S)
        idle, fork_idle = memory_mib(client.pid), fork_server_mib(client.pid)
        warm_up(client, args.warm_runs)
        time.sleep(SETTLE_S)
        after_runs, fork_after_runs = memory_mib(client.pid), fork_server_mib(client.pid)
        ids = start_sleepers(client, args.concurrent)
        try:
            runs = read_runs(run_dirs(client, ids))
            loaded, fork_loaded = memory_mib(client.pid), fork_server_mib(client.pid)
        finally:
            stop_all(client, ids)
    return {
        "idle": idle,
        "after_runs": after_runs,
        "loaded": loaded,
        "fork_idle": fork_idle,
        "fork_after_runs": fork_after_runs,
        "fork_loaded": fork_loaded,
        **runs,
    }


def fork_server_mib(server_pid: int) -> dict[str, float]:
    """Memory of the server's fork server (part of its footprint while idle)."""
    found = fork_servers(server_pid)
    if len(found) != 1:
        raise BenchError(f"expected one fork server of the server, found {len(found)}")
    return memory_mib(found[0])


def bare_python() -> dict[str, float]:
    """Memory of a bare `python -I -S` sleeping (what a supervisor's interpreter costs)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys, time; print(1, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.5)
        return memory_mib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def jupyter_alone() -> dict[str, float]:
    """The same Jupyter server with jupyter_orch disabled, read 2 s after it answers."""
    with jupyter_server(extra_args=["--ServerApp.jpserver_extensions=jupyter_orch=False"]) as c:
        time.sleep(SETTLE_S)
        return memory_mib(c.pid)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every round, then the two references."""
    rounds = [one_round(args) for _ in range(args.rounds)]
    return {"rounds": rounds, "bare_python": bare_python(), "jupyter_alone": jupyter_alone()}


# -- the result -------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    """The median."""
    return percentile(values, 50)


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians over rounds (server) and over every process of every round (runs)."""
    rounds = raw["rounds"]
    server = {
        phase: {k: med([r[phase][k] for r in rounds]) for k in KINDS}
        for phase in (*PHASES, *(f"fork_{p}" for p in PHASES))
    }
    processes: dict[str, dict[str, Any]] = {}
    for name in ("supervisor", "user"):
        every = [m for r in rounds for m in r[name]]
        processes[name] = {
            k: {"median": med([m[k] for m in every]), "max": max(m[k] for m in every)}
            for k in KINDS
        }
        processes[name]["n"] = len(every)
    return {"server": server, "processes": processes}


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    """Tables and the verdict: server idle RSS, supervisor PSS (median and max)."""
    stats = summarise(raw)
    server, sup = stats["server"], stats["processes"]["supervisor"]
    idle_rss = max(
        server["idle"]["rss"] + server["fork_idle"]["rss"],
        server["after_runs"]["rss"] + server["fork_after_runs"]["rss"],
    )
    server_met = idle_rss <= GOAL_SERVER_MIB
    sup_met = sup["pss"]["max"] <= GOAL_SUPERVISOR_MIB
    return {
        "name": "memory",
        "title": "Memory",
        "description": _description(args),
        "params": {
            "concurrent": args.concurrent,
            "warm_runs": args.warm_runs,
            "rounds": args.rounds,
            "recordable": not args.quick and args.concurrent >= 20,
        },
        "figures": {
            **stats,
            "bare_python": raw["bare_python"],
            "jupyter_alone": raw["jupyter_alone"],
            "raw": raw,
        },
        "table": _server_table(stats, raw, args),
        "extra_tables": [(f"Each running run ({args.concurrent} at once)", _run_table(stats, raw))],
        "goal": f"idle server RSS <= {GOAL_SERVER_MIB:g} MiB; supervisor overhead <= "
        f"{GOAL_SUPERVISOR_MIB:g} MiB per run (PSS, the largest)",
        "goal_met": server_met and sup_met,
        "notes": [
            f"idle server RSS, with its fork server's, {idle_rss:.1f} MiB -> "
            f"{'met' if server_met else 'NOT met'}",
            f"supervisor PSS max {sup['pss']['max']:.1f} MiB (RSS max {sup['rss']['max']:.1f}, "
            f"USS max {sup['uss']['max']:.1f}) -> {'met' if sup_met else 'NOT met'}",
        ],
    }


def _description(args: argparse.Namespace) -> str:
    return (
        f"{args.rounds} rounds, each on a fresh server. RSS from `VmRSS` (/proc/PID/status); PSS "
        "and USS (`Private_Clean` + `Private_Dirty`) from /proc/PID/smaps_rollup; PSS shares "
        "each shared page among the processes mapping it, USS is what the process alone "
        f"holds. Server: {SETTLE_S:g} s after it answers, {SETTLE_S:g} s after "
        f"{args.warm_runs} runs of `pass`, and while {args.concurrent} runs sleep (medians "
        f"over rounds). Runs: {args.concurrent} run-once tasks that print a line and sleep, "
        f"read {SETTLE_S:g} s after every user process is up; median and largest over every "
        "process of every round. The supervisor's figures are the overhead per run; the user "
        "process's are the user code's own (a Python interpreter here). MiB = 2^20 bytes."
    )


def _server_table(
    stats: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace
) -> list[list[str]]:
    rows = [["server", "RSS (MiB)", "PSS (MiB)", "USS (MiB)"]]
    for phase, label in (
        ("idle", "idle, just started"),
        ("after_runs", f"idle, after {args.warm_runs} runs"),
        ("loaded", f"while {args.concurrent} runs sleep"),
    ):
        values, fork = stats["server"][phase], stats["server"][f"fork_{phase}"]
        rows.append([label, *(f"{values[k]:.1f}" for k in KINDS)])
        rows.append([f"{label}: its fork server", *(f"{fork[k]:.1f}" for k in KINDS)])
        rows.append([f"{label}: the two together", *(f"{values[k] + fork[k]:.1f}" for k in KINDS)])
    alone = raw["jupyter_alone"]
    rows.append(
        [
            "the same Jupyter server, jupyter_orch disabled (idle)",
            *(f"{alone[k]:.1f}" for k in KINDS),
        ]
    )
    return rows


def _run_table(stats: dict[str, Any], raw: dict[str, Any]) -> list[list[str]]:
    rows = [["process", "n", "RSS median / max", "PSS median / max", "USS median / max"]]
    for name, label in (
        ("supervisor", "supervisor (the overhead)"),
        ("user", "user process (`python -u main.py`)"),
    ):
        values = stats["processes"][name]
        cells = [f"{values[k]['median']:.1f} / {values[k]['max']:.1f}" for k in KINDS]
        rows.append([label, str(values["n"]), *cells])
    bare = raw["bare_python"]
    rows.append(
        ["reference: a bare `python -I -S` sleeping", "1", *(f"{bare[k]:.1f}" for k in KINDS)]
    )
    return rows


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the tables; write JSON if asked; return the result."""
    return bench_main(argv, parse_args, measure, build_result)


if __name__ == "__main__":
    main()
