"""Peer: jupyter-scheduler running a one-cell notebook, and this server running the same
notebook and the same code as a script.

Usage: python benchmarks/peer_scheduler.py [--sequential 10] [--concurrent 20] [--venv PATH]
       [--json PATH] [--quick]

The benchmark makes a virtual environment in a temporary folder (`python -m venv`) and installs
`jupyter_scheduler jupyter_server ipykernel` into it with pip (from the package index the pip
configuration names; ipykernel because a notebook job needs a kernel). It starts that
environment's `jupyter server` (token, 127.0.0.1, its own root, data, config and runtime
folders), writes `hello.ipynb` (one code cell, `print("hello")`, kernel `python3`) to its root
and drives jupyter-scheduler's REST API: `POST /scheduler/jobs` (`input_uri`,
`runtime_environment_name`, `name`, `output_formats: ["ipynb"]`), then `GET
/scheduler/jobs/<id>` (every 20 ms; 100 ms when 20 jobs run at once) until `COMPLETED` or
`FAILED`. Our server runs the same `hello.ipynb`, uploaded as it is (a notebook orchestration,
executed by `jupyter_orch.nbrun`), and `main.py` = `print("hello")`, each through
`task/run_once`, polled the same way. Create-to-complete is from just before the POST to the
end time the server records (`end_time` of the job, `ended_at` of the run), on this machine's
clock. Each output is checked for `hello` (our notebook's executed copy too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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
    free_port,
    jupyter_server,
    percentile,
    upload_ready,
)

GOAL_RATIO = 50.0
GOAL_NOTEBOOK_MS = 500.0  # our notebook run, sequential median
PACKAGES = ("jupyter_scheduler", "jupyter_server", "ipykernel")
# Status polls: every 20 ms one job at a time; every 100 ms when 20 jobs poll at once, so the
# polling (200 requests a second) does not take the CPU the jobs need.
POLL_SEQUENTIAL_S, POLL_CONCURRENT_S = 0.02, 0.1
Job = Callable[[int, float], dict[str, Any]]  # (index, poll interval) -> times and outcome
JOB_TIMEOUT_S = 600.0
# A new job reads STOPPED (the ORM's default) until its process starts: not an end here.
PEER_DONE = frozenset({"COMPLETED", "FAILED"})
USER_CODE = 'print("hello")\n'
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "hello",
            "metadata": {},
            "outputs": [],
            "source": ['print("hello")'],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(__doc__, "1 sequential, 2 at once (smoke)")
    parser.add_argument("--sequential", type=int, default=10, help="jobs one after another")
    parser.add_argument("--concurrent", type=int, default=20, help="jobs created at once")
    parser.add_argument("--venv", type=Path, help="reuse this venv (else a new one is made)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sequential, args.concurrent = 1, 2
    if min(args.sequential, args.concurrent) < 1:
        parser.error("--sequential and --concurrent must be positive")
    return args


class PeerUnavailable(BenchError):
    """jupyter-scheduler could not be installed or started here (the message says why)."""


# -- the peer's environment and server --------------------------------------------------------


def make_venv(folder: Path) -> dict[str, Any]:
    """A new venv with the peer's packages; its python, install time and package versions."""
    start = time.perf_counter()
    _run_or_raise([sys.executable, "-m", "venv", str(folder)], "python -m venv")
    python = folder / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PACKAGES]
    _run_or_raise(pip, "pip install " + " ".join(PACKAGES))
    return {"python": str(python), "install_s": time.perf_counter() - start, **versions(python)}


def versions(python: Path) -> dict[str, Any]:
    """The versions of the peer's packages in its venv."""
    code = (
        "import json, importlib.metadata as m, sys; "
        f"print(json.dumps({{p: m.version(p) for p in {list(PACKAGES)!r}}}))"
    )
    done = _run_or_raise([str(python), "-c", code], "reading package versions")
    return {"versions": json.loads(done.stdout)}


def _run_or_raise(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise PeerUnavailable(f"{what} failed (exit {done.returncode}): {tail}")
    return done


@dataclass
class Peer:
    """A running jupyter-scheduler server."""

    base_url: str
    session: requests.Session
    root: Path
    data: Path

    def url(self, path: str) -> str:
        """An absolute URL on the peer server."""
        return f"{self.base_url}{path}"


@contextmanager
def peer_server(python: str, tmp: Path, timeout: float = 120.0) -> Iterator[Peer]:
    """Start the venv's `jupyter server` (jupyter-scheduler enabled by its own config)."""
    root, data = tmp / "root", tmp / "data"
    for folder in (root, data, tmp / "config", tmp / "runtime"):
        folder.mkdir(parents=True, exist_ok=True)
    token, port = secrets.token_hex(16), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_TOKEN", "JPY_API_TOKEN")}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        PATH=f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    argv = [
        python,
        "-m",
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--SchedulerApp.db_url=sqlite:///{tmp / 'scheduler.sqlite'}",
    ]
    log_path = tmp / "peer-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    peer = Peer(f"http://127.0.0.1:{port}/", session, root, data)
    try:
        _wait_peer(peer, proc, timeout, log_path)
        yield peer
    finally:
        session.close()
        _stop_group(proc)


def _wait_peer(peer: Peer, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerUnavailable(f"the peer server exited: {log.read_text()[-2000:]}")
        try:
            if peer.session.get(peer.url("scheduler/runtime_environments"), timeout=5).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise PeerUnavailable(
        f"the peer server did not answer in {timeout} s: {log.read_text()[-2000:]}"
    )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the peer server's process group (it and its job processes), then SIGKILL."""
    for signum, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # what its job processes left in the group
        os.killpg(proc.pid, signal.SIGKILL)


# -- one job on each side ----------------------------------------------------------------------


def peer_job(peer: Peer, environment: str, name: str, poll: float) -> dict[str, Any]:
    """Create one job, poll it to its end; the times (ns since the epoch) and its outcome."""
    body = {
        "input_uri": "hello.ipynb",
        "runtime_environment_name": environment,
        "name": name,
        "output_formats": ["ipynb"],
    }
    sent = time.time_ns()
    response = peer.session.post(peer.url("scheduler/jobs"), json=body, timeout=120)
    if response.status_code != 200:
        raise BenchError(f"POST scheduler/jobs: {response.status_code} {response.text[:500]}")
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        job = peer.session.get(peer.url(f"scheduler/jobs/{job_id}"), timeout=120).json()
        if job["status"] in PEER_DONE:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"peer job {job_id} still {job['status']}")
        time.sleep(poll)
    seen = time.time_ns()
    return {
        "sent_ns": sent,
        "seen_ns": seen,
        "ended_ns": (job.get("end_time") or 0) * 1_000_000,
        "status": job["status"],
        "message": job.get("status_message"),
        "printed_hello": peer_output_has_hello(peer, job_id),
    }


def peer_output_has_hello(peer: Peer, job_id: str) -> bool:
    """Whether the job's output notebook holds the line the cell printed."""
    for path in (peer.data / "scheduler_staging_area" / job_id).glob("*.ipynb"):
        if path.name == "hello.ipynb":
            continue
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        texts = ["".join(o.get("text", "")) for c in cells for o in c.get("outputs", [])]
        if "hello\n" in texts:
            return True
    return False


def our_job(
    client: Client, orch_id: str, session: requests.Session, poll: float, notebook: bool = False
) -> dict[str, Any]:
    """Run the same code (or the same notebook) once on our server, polled the same way; times
    and outcome."""
    sent = time.time_ns()
    response = session.post(
        client.url("task/run_once"),
        json={"orch_id": orch_id, "workspace_id": 1, "json": {}},
        timeout=120,
    )
    if response.status_code != 201:
        raise BenchError(f"task/run_once: {response.status_code} {response.text[:500]}")
    task_id = response.json()["id"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        task = session.post(client.url("task/get_by_id"), json={"id": task_id}, timeout=120).json()
        if task["status"] in ("success", "failed", "timed_out", "killed"):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"task {task_id} still {task['status']}")
        time.sleep(poll)
    seen = time.time_ns()
    run_id = task["last_runs"][0]["run_id"]
    run = client.run_details(task_id, run_id)
    logs = client.logs(run_id)
    printed = any(line.endswith(" stdout F hello") for line in logs)
    if notebook:  # and the executed copy holds it as the cell's output
        printed = printed and our_output_has_hello(session, client, run_id)
    return {
        "sent_ns": sent,
        "seen_ns": seen,
        "ended_ns": _iso_ns(run["ended_at"]),
        "status": task["status"],
        "printed_hello": printed,
    }


def our_output_has_hello(session: requests.Session, client: Client, run_id: str) -> bool:
    """Whether our run's executed notebook (`task/get_run_output`) holds the printed line."""
    response = session.get(client.url("task/get_run_output"), params={"id": run_id}, timeout=120)
    if response.status_code != 200:
        return False
    cells = response.json().get("cells", [])
    return any(o.get("text") == "hello\n" for c in cells for o in c.get("outputs", []))


def _iso_ns(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1_000_000) * 1000


# -- series -----------------------------------------------------------------------------------


def sequential(job: Job, count: int) -> list[dict[str, Any]]:
    """`count` jobs, one after another."""
    return [job(i, POLL_SEQUENTIAL_S) for i in range(count)]


def at_once(job: Job, count: int) -> list[dict[str, Any]]:
    """`count` jobs created at the same time, one client thread each."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda i: job(i, POLL_CONCURRENT_S), range(count)))


def measure_peer(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Install (or reuse) the venv, start the peer, run its series."""
    if args.venv is not None:
        python = args.venv / "bin" / "python"
        venv = {"python": str(python), "install_s": None, **versions(python)}
    else:
        venv = make_venv(tmp / "venv")
    with peer_server(venv["python"], tmp / "peer") as peer:
        (peer.root / "hello.ipynb").write_text(json.dumps(NOTEBOOK), encoding="utf-8")
        environments = peer.session.get(peer.url("scheduler/runtime_environments")).json()
        environment = environments[0]["name"]

        def job(i: int, poll: float) -> dict[str, Any]:
            return peer_job(peer, environment, f"bench-{i}", poll)

        job(-1, POLL_SEQUENTIAL_S)  # warm-up, not counted
        return {
            "venv": venv,
            "environment": environment,
            "sequential": sequential(job, args.sequential),
            "concurrent": at_once(job, args.concurrent),
        }


def measure_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Our server: the same notebook, and the same code as a script; the same series each."""
    with jupyter_server() as client:
        orchs = {
            "script": upload_ready(client, USER_CODE, "peer-hello"),
            "notebook": client.upload_file(json.dumps(NOTEBOOK).encode(), "hello.ipynb"),
        }
        client.wait_orch(orchs["notebook"])
        sessions: dict[tuple[str, int], requests.Session] = {}

        def series(kind: str) -> dict[str, Any]:
            def job(i: int, poll: float) -> dict[str, Any]:
                session = sessions.setdefault((kind, i), requests.Session())
                session.headers.update(client.session.headers)
                return our_job(client, orchs[kind], session, poll, kind == "notebook")

            job(-1, POLL_SEQUENTIAL_S)  # warm-up, not counted
            return {
                "sequential": sequential(job, args.sequential),
                "concurrent": at_once(job, args.concurrent),
            }

        try:
            return {"script": series("script"), "notebook": series("notebook")}
        finally:
            for session in sessions.values():
                session.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both sides; the peer's failure to install or start is recorded, not raised."""
    tmp = Path(tempfile.mkdtemp(prefix="peer-scheduler-"))
    try:
        try:
            peer: dict[str, Any] = measure_peer(args, tmp)
        except PeerUnavailable as exc:
            peer = {"error": str(exc)}
        return {"peer": peer, "ours": measure_ours(args)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the result -------------------------------------------------------------------------------


def series_stats(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Create-to-complete (record, and as the client saw it), makespan, outcomes; in ms."""
    # A failed job may have no recorded end: the moment the client saw it end stands in.
    recorded = [((j["ended_ns"] or j["seen_ns"]) - j["sent_ns"]) / 1e6 for j in jobs]
    seen = [(j["seen_ns"] - j["sent_ns"]) / 1e6 for j in jobs]
    span = (
        max(j["ended_ns"] or j["seen_ns"] for j in jobs) - min(j["sent_ns"] for j in jobs)
    ) / 1e6
    return {
        "n": len(jobs),
        "median_ms": percentile(recorded, 50),
        "p95_ms": percentile(recorded, 95),
        "max_ms": max(recorded),
        "seen_median_ms": percentile(seen, 50),
        "makespan_ms": span,
        "ok": sum(
            1 for j in jobs if j["status"] in ("COMPLETED", "success") and j["printed_hello"]
        ),
    }


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    """Tables, ratios and the verdict (None when the peer could not run here)."""
    ours = {s: series_stats(raw["ours"]["script"][s]) for s in ("sequential", "concurrent")}
    notebook = {s: series_stats(raw["ours"]["notebook"][s]) for s in ("sequential", "concurrent")}
    base: BenchResult = {
        "name": "peer_scheduler",
        "title": "Peer: jupyter-scheduler",
        "description": _description(args),
        "params": {
            "sequential": args.sequential,
            "concurrent": args.concurrent,
            "recordable": not args.quick and args.sequential >= 5 and args.concurrent >= 20,
        },
        "goal": f"our create-to-complete >= {GOAL_RATIO:g}x faster (main.py), sequential and "
        f"{args.concurrent} at once; our run of the same notebook <= {GOAL_NOTEBOOK_MS:g} ms "
        "(sequential median)",
    }
    notebook_met = notebook["sequential"]["median_ms"] <= GOAL_NOTEBOOK_MS
    if "error" in raw["peer"]:
        return {
            **base,
            "figures": {
                "ours": ours,
                "ours_notebook": notebook,
                "peer_error": raw["peer"]["error"],
            },
            "table": [["measure", "value"], ["jupyter-scheduler", "could not run here"]]
            + [[f"ours, main.py, {s} median (ms)", f"{ours[s]['median_ms']:.1f}"] for s in ours]
            + [
                [f"ours, notebook, {s} median (ms)", f"{notebook[s]['median_ms']:.1f}"]
                for s in ours
            ],
            "goal_met": None,
            "notes": [f"jupyter-scheduler could not run here: {raw['peer']['error']}"],
        }
    peer = {s: series_stats(raw["peer"][s]) for s in ("sequential", "concurrent")}
    ratios = {s: peer[s]["median_ms"] / ours[s]["median_ms"] for s in ours}
    ratios["makespan"] = peer["concurrent"]["makespan_ms"] / ours["concurrent"]["makespan_ms"]
    for s in ("sequential", "concurrent"):
        ratios[f"notebook_{s}"] = peer[s]["median_ms"] / notebook[s]["median_ms"]
    sides = (peer, ours, notebook)
    all_ok = all(x[s]["ok"] == x[s]["n"] for x in sides for s in x)
    met = all_ok and min(ratios["sequential"], ratios["concurrent"]) >= GOAL_RATIO and notebook_met
    return {
        **base,
        "figures": {
            "peer": peer,
            "ours": ours,
            "ours_notebook": notebook,
            "ratios": ratios,
            "venv": raw["peer"]["venv"],
        },
        "table": _table(peer, ours, notebook, ratios, args),
        "goal_met": met,
        "notes": _notes(raw["peer"], ratios, notebook, all_ok, met),
    }


def _description(args: argparse.Namespace) -> str:
    return (
        "jupyter-scheduler, installed by the benchmark from the package index into a new "
        "virtual environment (`pip install jupyter_scheduler jupyter_server ipykernel`), runs "
        '`hello.ipynb` (one code cell, `print("hello")`) through its REST API (`POST '
        '/scheduler/jobs` with `output_formats: ["ipynb"]`); our server runs the same '
        "notebook, uploaded as it is (a notebook orchestration, run by `jupyter_orch.nbrun`), "
        'and `main.py` = `print("hello")`, each through `task/run_once`. Create-to-complete = '
        "from just before the POST to the end time the server records (`end_time` of the job, "
        "`ended_at` of the run). Both sides are polled the same way: every "
        f"{POLL_SEQUENTIAL_S * 1000:g} ms one job at a time, every "
        f"{POLL_CONCURRENT_S * 1000:g} ms per job when they run at once; one warm-up job "
        "each, not counted. "
        f"Sequential: {args.sequential} jobs one after another; at once: {args.concurrent} "
        "jobs created together by as many client threads (makespan = first POST to last end). "
        "Every output is checked for `hello` (our notebook's executed copy, from "
        "`task/get_run_output`, too)."
    )


def _table(
    peer: dict[str, Any],
    ours: dict[str, Any],
    notebook: dict[str, Any],
    ratios: dict[str, float],
    args: argparse.Namespace,
) -> list[list[str]]:
    head = ["measure", "jupyter-scheduler", "ours, the same notebook", "ours, main.py"]
    rows = [[*head, "ratio (peer / our notebook; / main.py)"]]
    for series, label in (
        ("sequential", "sequential"),
        ("concurrent", f"{args.concurrent} at once"),
    ):
        sides = (peer[series], notebook[series], ours[series])
        ratio = f"{ratios[f'notebook_{series}']:.1f}x; {ratios[series]:.0f}x"
        rows += [
            [
                f"{label}: create-to-complete median (ms)",
                *_cells(sides, "{median_ms:.{d}f}"),
                ratio,
            ],
            [f"{label}: p95 / max (ms)", *_cells(sides, "{p95_ms:.{d}f} / {max_ms:.{d}f}"), ""],
            [
                f"{label}: as the client saw it, median (ms)",
                *_cells(sides, "{seen_median_ms:.{d}f}"),
                "",
            ],
            [f"{label}: succeeded and printed hello", *_cells(sides, "{ok} of {n}"), ""],
        ]
    span = peer["concurrent"]["makespan_ms"] / notebook["concurrent"]["makespan_ms"]
    sides = (peer["concurrent"], notebook["concurrent"], ours["concurrent"])
    makespan = f"{args.concurrent} at once: makespan (ms)"
    rows.append(
        [makespan, *_cells(sides, "{makespan_ms:.{d}f}"), f"{span:.1f}x; {ratios['makespan']:.0f}x"]
    )
    return rows


def _cells(sides: tuple[dict[str, Any], ...], form: str) -> list[str]:
    """One row's cells: the peer's to the millisecond, ours to a tenth."""
    return [form.format(**side, d=0 if i == 0 else 1) for i, side in enumerate(sides)]


def _notes(
    peer: dict[str, Any],
    ratios: dict[str, float],
    notebook: dict[str, Any],
    all_ok: bool,
    met: bool,
) -> list[str]:
    venv = peer["venv"]
    installed = ", ".join(f"{k} {v}" for k, v in venv["versions"].items())
    took = f"made in {venv['install_s']:.0f} s" if venv["install_s"] is not None else "reused"
    return [
        f"ratios, main.py: sequential {ratios['sequential']:.0f}x, at once "
        f"{ratios['concurrent']:.0f}x (makespan {ratios['makespan']:.0f}x); the same notebook: "
        f"sequential {ratios['notebook_sequential']:.1f}x, at once "
        f"{ratios['notebook_concurrent']:.1f}x -> goal {'met' if met else 'NOT met'}",
        f"our notebook run, sequential median {notebook['sequential']['median_ms']:.0f} ms "
        f"(goal <= {GOAL_NOTEBOOK_MS:g} ms)",
        f"every job of every side succeeded and printed hello: {'yes' if all_ok else 'NO'}",
        f"peer venv: {installed}, {took}; runtime environment `{peer['environment']}`",
    ]


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the tables; write JSON if asked; return the result."""
    return bench_main(argv, parse_args, measure, build_result)


if __name__ == "__main__":
    main()
