"""A chatty run: what its log costs (bytes on disk, server memory to read it), and get_by_id
latency while 50 clients page task/list, with and without a chatty run going.

Usage: python benchmarks/chatty_run.py [--seconds 20] [--clients 50] [--tasks 2000]
       [--samples 200] [--json PATH] [--quick]

One server (`--OrchApp.max_log_bytes` at its default, 64 MiB), its database seeded with
`--tasks` tasks. The chatty run prints 100-character lines as fast as it can for `--seconds`,
then the number of bytes it printed. Its log's size on disk is sampled every 0.2 s. Then the
whole log is read through `get_logs_for_run` (streamed to this process, which keeps nothing):
the server's peak RSS (VmHWM) before and after says what reading it cost. Latency: while
`--clients` threads page `task/list` (`limit` 100, `after` the last id) without a pause, this
process times `--samples` `task/get_by_id` calls, first with no run going, then while a chatty
run prints.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.api_scale import Seed, seed_data_dir
from benchmarks.common import (
    BenchError,
    BenchResult,
    Client,
    bench_main,
    bench_parser,
    jupyter_server,
    percentile,
)

CHATTY = """
import sys, time
end = time.monotonic() + {seconds}
line = "x" * 99 + "\\n"
count = 0
while time.monotonic() < end:
    for _ in range(100):
        sys.stdout.write(line)
    count += 100
print(f"printed {{count * 100}} bytes", flush=True)
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(__doc__, "tiny sizes (smoke test)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the run prints")
    parser.add_argument("--clients", type=int, default=50, help="threads paging task/list")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks in the database")
    parser.add_argument("--samples", type=int, default=200, help="get_by_id calls timed")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.clients, args.tasks, args.samples = 2.0, 4, 100, 30
    return args


def peak_rss(pid: int) -> int:
    """A process's resident memory high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def start_chatty(client: Client, seconds: float) -> tuple[str, str]:
    """Start a chatty run; its task and run ids once it runs."""
    orch_id = client.upload({"main.py": CHATTY.format(seconds=seconds)})
    client.wait_orch(orch_id)
    task_id = client.run_once(orch_id)
    task = client.get_task(task_id)
    while not task["last_runs"]:
        task = client.get_task(task_id)
    return task_id, task["last_runs"][0]["run_id"]


def log_cost(client: Client, seconds: float) -> dict[str, Any]:
    """Run a chatty run to its end; bytes printed, on disk, and the cost of reading them."""
    task_id, run_id = start_chatty(client, seconds)
    log = client.data_dir / "runs" / run_id / "log"
    largest = 0
    while client.get_task(task_id)["status"] == "started":
        largest = max(largest, log.stat().st_size if log.exists() else 0)
        time.sleep(0.2)
    lines = client.logs(run_id, lines=1)
    printed = int(lines[-1].split()[-2])
    before = peak_rss(client.pid)
    started, received = time.perf_counter(), 0
    with requests.post(
        client.url("task/get_logs_for_run"),
        json={"id": run_id},
        headers=dict(client.session.headers),
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    return {
        "printed_bytes": printed,
        "disk_bytes_max": max(largest, log.stat().st_size),
        "disk_bytes_end": log.stat().st_size,
        "answer_bytes": received,
        "read_seconds": time.perf_counter() - started,
        "peak_rss_before": before,
        "peak_rss_after": peak_rss(client.pid),
    }


def get_by_id_latency(
    client: Client, task_ids: list[str], clients: int, samples: int
) -> dict[str, Any]:
    """get_by_id latency (ms) while `clients` threads page task/list without a pause."""
    stop = threading.Event()
    pages = [0]

    def pager() -> None:
        session = requests.Session()
        session.headers.update(client.session.headers)
        after = None
        while not stop.is_set():
            body: dict[str, Any] = {"limit": 100}
            if after:
                body["after"] = after
            page = session.post(client.url("task/list"), json=body, timeout=60).json()
            after = page[-1]["id"] if page else None
            pages[0] += 1

    threads = [threading.Thread(target=pager, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the pagers are going
    times = []
    session = requests.Session()
    session.headers.update(client.session.headers)
    try:
        for n in range(samples):
            started = time.perf_counter()
            response = session.post(
                client.url("task/get_by_id"),
                json={"id": task_ids[n % len(task_ids)]},
                timeout=60,
            )
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "max_ms": max(times),
        "pages": pages[0],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both measurements on one seeded server."""
    seed = Seed(args.tasks, args.tasks * 5)

    def prepare(data_dir: Path) -> None:
        seed_data_dir(data_dir, seed)

    with jupyter_server(prepare=prepare) as client:
        task_ids = seed.newest_first()[:200]
        quiet = get_by_id_latency(client, task_ids, args.clients, args.samples)
        # Printing all along the measure (killed after it): an hour at most.
        task_id, run_id = start_chatty(client, 3600.0)
        chatty = get_by_id_latency(client, task_ids, args.clients, args.samples)
        still = client.get_task(task_id)["status"] == "started"
        client.post("task/kill", {"id": task_id}, status=202)
        if not still:
            raise BenchError(f"the chatty run {run_id} ended before the latency was measured")
        client.wait_task(task_id, timeout=120)
        cost = log_cost(client, args.seconds)
    return {"quiet": quiet, "chatty": chatty, "log": cost}


def build_result(raw: dict[str, Any], args: argparse.Namespace) -> BenchResult:
    """Two tables: the log's cost, and get_by_id latency with and without a chatty run."""
    log, mib = raw["log"], 1 << 20
    grown = log["peak_rss_after"] - log["peak_rss_before"]
    rate = log["printed_bytes"] / args.seconds / mib
    return {
        "name": "chatty_run",
        "title": "A chatty run",
        "description": __doc__.split("\n\n", 2)[2].replace("\n", " ").strip(),
        "params": vars(args) | {"json": None},
        "figures": raw,
        "table": [
            [
                "printed (MiB)",
                "MiB/s",
                "log on disk, largest (MiB)",
                "at the end (MiB)",
                "answer (MiB)",
                "read (s)",
                "server peak RSS before -> after (MiB)",
            ],
            [
                f"{log['printed_bytes'] / mib:,.0f}",
                f"{rate:,.0f}",
                f"{log['disk_bytes_max'] / mib:.1f}",
                f"{log['disk_bytes_end'] / mib:.1f}",
                f"{log['answer_bytes'] / mib:.1f}",
                f"{log['read_seconds']:.2f}",
                f"{log['peak_rss_before'] / mib:.0f} -> {log['peak_rss_after'] / mib:.0f}",
            ],
        ],
        "extra_tables": [
            (
                f"`task/get_by_id` while {args.clients} clients page `task/list` "
                f"({args.tasks} tasks, {args.samples} calls timed)",
                [
                    ["", "p50 (ms)", "p99 (ms)", "max (ms)", "task/list pages served"],
                    *(
                        [
                            label,
                            f"{f['p50_ms']:.1f}",
                            f"{f['p99_ms']:.1f}",
                            f"{f['max_ms']:.1f}",
                            str(f["pages"]),
                        ]
                        for label, f in (
                            ("no run going", raw["quiet"]),
                            ("a chatty run going", raw["chatty"]),
                        )
                    ),
                ],
            )
        ],
        "goal": "the log stays under its cap (64 MiB, and one write past it before a cut); "
        "reading it grows the server's peak RSS by under 32 MiB",
        "goal_met": log["disk_bytes_max"] <= (65 << 20) and grown < (32 << 20),
        "notes": [],
    }


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark."""
    return bench_main(argv, parse_args, measure, build_result)


if __name__ == "__main__":
    main()
