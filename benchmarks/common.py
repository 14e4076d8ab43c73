"""Shared pieces of the benchmarks: a real Jupyter server, a client of its API, statistics.

Every benchmark module in this folder exposes `main(argv) -> dict` returning a `BenchResult`;
`benchmarks/run.py` runs them all and writes `docs/performance.md`. Each `main` accepts at
least `--quick` (tiny sizes, for the smoke test), `--runs N` (repetitions) and `--json PATH`.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import io
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import requests

API = "orch/v1/api"
TASK_END = frozenset({"success", "failed", "timed_out", "killed"})
LOG_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d{1,9}))?"
    r"(?P<tz>Z|[+-]\d\d:\d\d) (?P<stream>stdout|stderr) (?P<flag>[FP]) (?P<text>.*)$",
    re.DOTALL,
)


class BenchResult(TypedDict, total=False):
    """What a benchmark's `main` returns (`run.py` renders it as a section)."""

    name: str  # module name, e.g. "dispatch_latency"
    title: str  # section heading
    description: str  # what is measured, how (markdown)
    params: dict[str, Any]  # sizes used
    figures: dict[str, Any]  # the raw numbers (JSON)
    table: list[list[str]]  # first row is the header
    extra_tables: list[tuple[str, list[list[str]]]]  # (caption, rows)
    goal: str  # the project's goal, in words
    goal_met: bool | None  # None when there is no goal
    notes: list[str]


class BenchError(RuntimeError):
    """The server or a run did not behave as a benchmark needs."""


# -- statistics ------------------------------------------------------------------------------


RUNS_IGNORED = "ignored (run.py passes it to every benchmark)"


def bench_parser(
    doc: str, quick: str, runs: str = RUNS_IGNORED, runs_default: int | None = None
) -> argparse.ArgumentParser:
    """A benchmark's command line with the options `run.py` passes to every benchmark
    (`--runs`, `--quick`) and `--json`; described by the first paragraph of `doc`."""
    parser = argparse.ArgumentParser(description=" ".join(doc.split("\n\n", maxsplit=1)[0].split()))
    parser.add_argument("--runs", type=int, default=runs_default, help=runs)
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Count, min, median, p95 and max of some measurements."""
    return {
        "n": len(values),
        "min": min(values),
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values),
    }


def distribution(values: Sequence[float]) -> dict[str, float]:
    """Count, min, p50, p95, p99 and max of some measurements."""
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def ms(ns: float) -> float:
    """Nanoseconds to milliseconds."""
    return ns / 1e6


# -- log lines -------------------------------------------------------------------------------


@dataclass
class LogLine:
    """One parsed `<RFC 3339 time> <stream> <F|P> <text>` log line."""

    ns: int
    stream: str
    full: bool
    text: str


def parse_rfc3339_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with up to 9 fraction digits."""
    match = LOG_LINE.match(f"{stamp} stdout F ")
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {stamp!r}")
    return _match_ns(match)


def _match_ns(match: re.Match[str]) -> int:
    seconds = calendar.timegm(time.strptime(match["time"], "%Y-%m-%dT%H:%M:%S"))
    frac = int((match["frac"] or "").ljust(9, "0"))
    tz = match["tz"]
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        seconds -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return seconds * 1_000_000_000 + frac


def parse_log_line(line: str) -> LogLine:
    """Split a log line of the API into its time (ns), stream, full flag and text."""
    match = LOG_LINE.match(line)
    if match is None:
        raise ValueError(f"not a log line: {line!r}")
    return LogLine(_match_ns(match), match["stream"], match["flag"] == "F", match["text"])


# -- archives --------------------------------------------------------------------------------


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    """A zip archive, built in memory, holding `files` (name -> content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


# -- the client ------------------------------------------------------------------------------


class Client:
    """A `requests.Session` talking to one server's orchestration API with its token."""

    def __init__(self, base_url: str, token: str, data_dir: Path, pid: int) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.data_dir = data_dir  # the server's OrchApp.data_dir (for internal records)
        self.pid = pid  # the server's process id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def url(self, path: str) -> str:
        """The absolute URL of a path of the orchestration API."""
        return f"{self.base_url}{API}/{path}"

    def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        """POST JSON to the API and expect `status`; the decoded answer."""
        response = self.session.post(self.url(path), json=body or {}, timeout=60)
        return _expect(response, status)

    def upload(self, files: Mapping[str, str | bytes], workspace_id: int = 1, **meta: Any) -> str:
        """Upload a zip of `files` (parts `file` and `metadata`); the orchestration id."""
        return self.upload_file(make_zip(files), "orch.zip", workspace_id, **meta)

    def upload_file(self, data: bytes, file_name: str, workspace_id: int = 1, **meta: Any) -> str:
        """Upload `data` as the `file` part (a zip, or a notebook as it is); the orchestration
        id."""
        metadata = json.dumps({"workspace_id": workspace_id, **meta})
        parts = {
            "file": (file_name, data, "application/octet-stream"),
            "metadata": ("metadata", metadata.encode(), "application/json"),
        }
        response = self.session.post(self.url("orchestration/upload"), files=parts, timeout=120)
        orch_id: str = _expect(response, 202)["id"]
        return orch_id

    def wait_orch(self, orch_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """Poll until the orchestration is `ready`; BenchError on `error` or the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            orch: dict[str, Any] = self.post("orchestration/get_by_id", {"id": orch_id})
            if orch["status"] == "ready":
                return orch
            if orch["status"] == "error" or time.monotonic() > deadline:
                raise BenchError(f"orchestration {orch_id} is {orch['status']}: {orch}")
            time.sleep(0.1)

    def run_once(self, orch_id: str, args: Any = None, workspace_id: int = 1, **extra: Any) -> str:
        """Start a run-once task; its id."""
        body = {"orch_id": orch_id, "workspace_id": workspace_id, "json": args or {}, **extra}
        task_id: str = self.post("task/run_once", body, status=201)["id"]
        return task_id

    def get_task(self, task_id: str, run_limit: int = 5) -> dict[str, Any]:
        """One task object with its newest runs."""
        task: dict[str, Any] = self.post("task/get_by_id", {"id": task_id, "run_limit": run_limit})
        return task

    def wait_task(
        self,
        task_id: str,
        statuses: frozenset[str] = TASK_END,
        timeout: float = 60.0,
        interval: float = 0.05,
    ) -> dict[str, Any]:
        """Poll a task until its status is one of `statuses` (BenchError at the deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(interval)
            task = self.get_task(task_id)
            if task["status"] in statuses:
                return task
            if time.monotonic() > deadline:
                raise BenchError(f"task {task_id} still {task['status']} after {timeout} s")

    def run_details(self, task_id: str, run_id: str) -> dict[str, Any]:
        """One task run (status, times, exit code)."""
        run: dict[str, Any] = self.post("task/get_run_details", {"task": task_id, "pod_id": run_id})
        return run

    def logs(self, run_id: str, lines: int | None = None) -> list[str]:
        """A run's log lines (the last `lines` when given)."""
        body: dict[str, Any] = {"id": run_id}
        if lines is not None:
            body["lines"] = lines
        logs: list[str] = self.post("task/get_logs_for_run", body)["logs"]
        return logs


def _expect(response: requests.Response, status: int) -> Any:
    if response.status_code != status:
        raise BenchError(
            f"{response.request.method} {response.url}: {response.status_code} "
            f"(wanted {status}): {response.text[:500]}"
        )
    return response.json()


@contextmanager
def read_only_db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A server's database (`data_dir/orch.db`), opened read-only."""
    uri = f"{(data_dir / 'orch.db').as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        yield db
    finally:
        db.close()


def upload_ready(client: Client, code: str, name: str) -> str:
    """Upload a one-file orchestration (`main.py` = `code`) and wait until it is ready."""
    orch_id = client.upload({"main.py": code}, name=name)
    client.wait_orch(orch_id)
    return orch_id


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(port: int, token: str, root: Path, data_dir: Path) -> list[str]:
    """The command line of a Jupyter server with the extension, on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions=jupyter_orch=True",
        f"--OrchApp.data_dir={data_dir}",
    ]


def _server_env(tmp: Path) -> dict[str, str]:
    """The server's environment: runtime files in the temp dir, no inherited token."""
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_TOKEN", "JPY_API_TOKEN")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    return env


@contextmanager
def jupyter_server(
    start_timeout: float = 90.0,
    stop_timeout: float = 15.0,
    extra_args: Sequence[str] = (),
    prepare: Callable[[Path], None] | None = None,
) -> Iterator[Client]:
    """Start a real `jupyter server` with the extension; yield a client; stop it; clean up.

    `extra_args` are appended to its command line; `prepare(data_dir)` runs before it starts
    (to seed the data directory)."""
    tmp = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    root, data_dir = tmp / "root", tmp / "data"
    root.mkdir()
    if prepare is not None:
        try:
            prepare(data_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    token, port = secrets.token_hex(16), free_port()
    log_path = tmp / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [*server_command(port, token, root, data_dir), *extra_args],
            cwd=root,
            env=_server_env(tmp),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    client = Client(f"http://127.0.0.1:{port}/", token, data_dir, proc.pid)
    try:
        _wait_ready(client, proc, start_timeout, log_path)
        yield client
    finally:
        client.close()
        stop_process(proc, stop_timeout)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(client: Client, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Poll `GET /api/status` until it answers 200 (BenchError at the deadline or exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"jupyter server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            response = client.session.get(f"{client.base_url}api/status", timeout=5)
            if response.status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise BenchError(f"jupyter server not ready after {timeout} s:\n{_tail(log)}")


def _tail(path: Path, size: int = 4000) -> str:
    return path.read_text("utf-8", "replace")[-size:] if path.exists() else ""


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


# -- process start ---------------------------------------------------------------------------


def first_line_ns(argv: Sequence[str], timeout: float = 60.0) -> int:
    """Nanoseconds from just before `Popen(argv)` to reading its first stdout line."""
    start = time.time_ns()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        elapsed = time.time_ns() - start
    finally:
        proc.stdout.close()
        proc.wait(timeout)
    if not line:
        raise BenchError(f"{list(argv)} printed nothing")
    return elapsed


def run_ns(argv: Sequence[str]) -> int:
    """Nanoseconds from just before starting `argv` to its exit (BenchError if it fails)."""
    start = time.time_ns()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    # A blocking wait: `wait(timeout)` polls with growing sleeps and would round times up.
    code = proc.wait()
    elapsed = time.time_ns() - start
    if code != 0:
        raise BenchError(f"{list(argv)} exited with {code}")
    return elapsed


# -- the machine -----------------------------------------------------------------------------


def machine_description() -> dict[str, str]:
    """CPU model, cores, RAM, Python and platform of this machine."""
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "cores_usable": str(len(os.sched_getaffinity(0))),
        "ram": _ram(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


# -- CPU use ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by one process, by its reaped children, and by the machine."""

    wall: float  # time.monotonic() when sampled
    process: float  # user + system of the process (all its threads)
    # user + system of its children it has waited for (and theirs), and of its fork servers
    # (with the supervisors and runs they have waited for)
    children: float
    machine_busy: float  # every core, all but idle and iowait
    machine_total: float  # every core


def process_cpu(pid: int) -> tuple[float, float, int]:
    """CPU seconds of a process itself and of its reaped children, and its parent's pid."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is the state (field 3)
    utime, stime, cutime, cstime = (int(v) / tick for v in fields[11:15])
    return utime + stime, cutime + cstime, int(fields[1])


def fork_servers(pid: int) -> list[int]:
    """The live fork servers started by the server `pid` (its children running forkserver)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if process_cpu(int(entry.name))[2] != pid:
                continue
            if b"import forkserver" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return found


def cpu_sample(pid: int) -> CpuSample:
    """Read /proc for the CPU use of `pid` and of the whole machine (Linux only)."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    own, children, _ = process_cpu(pid)
    for fork_server in fork_servers(pid):
        with contextlib.suppress(OSError):
            fork_own, fork_children, _ = process_cpu(fork_server)
            children += fork_own + fork_children
    cpu = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:9]
    values = [int(v) / tick for v in cpu]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return CpuSample(time.monotonic(), own, children, sum(values) - idle, sum(values))


def cpu_use(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Cores used in between (1.0 = one core busy) and the machine's busy share (0-1)."""
    wall = max(after.wall - before.wall, 1e-9)
    total = max(after.machine_total - before.machine_total, 1e-9)
    return {
        "seconds": wall,
        "process_cores": (after.process - before.process) / wall,
        "children_cores": (after.children - before.children) / wall,
        "machine_busy": (after.machine_busy - before.machine_busy) / total,
    }


def print_tables(result: BenchResult) -> None:
    """A result's tables, goal and notes on stdout (for benchmarks run alone)."""
    print(f"\n{result['title']}")
    for caption, rows in [("", result["table"]), *result.get("extra_tables", [])]:
        if caption:
            print(f"\n{caption}")
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if result.get("goal"):
        met = result.get("goal_met")
        print(f"\ngoal: {result['goal']}: {'MET' if met else 'NOT MET'}")
    for note in result.get("notes", []):
        print(f"- {note}")


def bench_main(
    argv: list[str] | None,
    parse_args: Callable[[list[str]], Any],
    measure: Callable[[Any], Any],
    build_result: Callable[[Any, Any], BenchResult],
) -> BenchResult:
    """The shared `main` of a benchmark module: parse, measure, print, write JSON if asked."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = build_result(measure(args), args)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
