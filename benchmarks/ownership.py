"""What ownership checks cost: the same requests to a single-user server and to a multi-user one.

Usage: python benchmarks/ownership.py [--runs 300] [--tasks 1000] [--json PATH] [--quick]

Two servers are seeded alike: `--tasks` scheduled tasks (far-off schedules, so nothing runs)
of one orchestration. On the multi-user server (`OrchApp.multi_user`, users named by their
token) half are alice's, half bob's; on the single-user one all are its user's. Requests are
timed on the client (`time.perf_counter_ns` around the HTTP round trip, after 10 untimed ones),
one server then the other in turn, so the machine's noise hits both alike: `task/get_by_id`
of one's own task, a page of `task/list` (`limit` 20, newest first), and, as alice, a
`task/get_by_id` of bob's task (a 404).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

from benchmarks.common import (
    BenchResult,
    Client,
    bench_parser,
    distribution,
    jupyter_server,
    print_tables,
)

NEVER = "0 0 1 1 *"
MIN_RECORDED_RUNS = 300
REPO = Path(__file__).resolve().parent.parent


class NamedTokens(IdentityProvider):
    """`Authorization: token <name>:<the server's token>` is the user <name> (the server's
    token alone logs in as the default provider does)."""

    def get_user(self, handler: web.RequestHandler) -> Any:
        """The user the token names, if its secret is the server's token."""
        token = self.get_token(handler) or ""
        if ":" not in token:
            return super().get_user(handler)
        name, _, secret = token.partition(":")
        if not name or not hmac.compare_digest(secret.encode(), str(self.token).encode()):
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]  # no XSRF for tokens
        return User(name)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(
        __doc__, "tiny sizes (smoke test)", "samples per request", runs_default=MIN_RECORDED_RUNS
    )
    parser.add_argument("--tasks", type=int, default=1000, help="tasks stored on each server")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.tasks = min(args.runs, 5), min(args.tasks, 4)
    if args.runs < 1 or args.tasks < 2:
        parser.error("--runs must be >= 1 and --tasks >= 2")
    return args


def as_user(client: Client, name: str, secret: str) -> Client:
    """A client of the same server, as the user `name`."""
    return Client(client.base_url, f"{name}:{secret}", client.data_dir, client.pid)


def seed(client: Client, count: int) -> list[str]:
    """`count` scheduled tasks of one orchestration; their ids."""
    orch_id = client.upload({"main.py": "print(1)\n"})
    client.wait_orch(orch_id)
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {}, "schedule": NEVER}
    return [client.post("task/run_scheduled", body, status=201)["id"] for _ in range(count)]


def timed(call: Callable[[], Any]) -> float:
    """One call's round trip, in milliseconds."""
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1e6


def main(argv: list[str]) -> BenchResult:
    """Measure, and return the result."""
    args = parse_args(argv)
    # The multi-user server imports its identity provider from this module.
    path = [str(REPO), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    multi_args = [
        "--OrchApp.multi_user=True",
        "--ServerApp.identity_provider_class=benchmarks.ownership.NamedTokens",
    ]
    with ExitStack() as stack:
        single = stack.enter_context(jupyter_server())
        multi = stack.enter_context(jupyter_server(extra_args=multi_args))
        secret = str(multi.session.headers["Authorization"]).split(" ", 1)[1]
        alice, bob = as_user(multi, "alice", secret), as_user(multi, "bob", secret)
        stack.callback(alice.close)
        stack.callback(bob.close)
        own = seed(single, args.tasks)
        mine, theirs = seed(alice, args.tasks // 2), seed(bob, args.tasks - args.tasks // 2)
        requests: dict[str, tuple[Callable[[], Any] | None, Callable[[], Any]]] = {
            "task/get_by_id, own task": (
                lambda: single.post("task/get_by_id", {"id": own[0]}),
                lambda: alice.post("task/get_by_id", {"id": mine[0]}),
            ),
            "task/list, limit 20": (
                lambda: single.post("task/list", {"limit": 20}),
                lambda: alice.post("task/list", {"limit": 20}),
            ),
            "task/get_by_id, another user's task (404)": (
                None,
                lambda: alice.post("task/get_by_id", {"id": theirs[0]}, status=404),
            ),
        }
        samples: dict[str, dict[str, list[float]]] = {}
        for label, pair in requests.items():
            for call in pair:
                if call is None:
                    continue
                for _ in range(10):
                    call()
            found = samples[label] = {"single": [], "multi": []}
            for _ in range(args.runs):
                for side, call in zip(("single", "multi"), pair, strict=True):
                    if call is not None:
                        found[side].append(timed(call))
    figures = {
        label: {side: distribution(values) for side, values in sides.items() if values}
        for label, sides in samples.items()
    }
    table = [["request", "single-user p50 ms", "p99 ms", "multi-user p50 ms", "p99 ms"]]
    for label, sides in figures.items():
        cells = []
        for side in ("single", "multi"):
            stats = sides.get(side)
            cells += [f"{stats['p50']:.2f}", f"{stats['p99']:.2f}"] if stats else ["-", "-"]
        table.append([label, *cells])
    result: BenchResult = {
        "name": "ownership",
        "title": "Ownership checks",
        "description": __doc__.split("\n\n", 2)[2].strip(),
        "params": {
            "runs": args.runs,
            "tasks": args.tasks,
            "recordable": not args.quick and args.runs >= MIN_RECORDED_RUNS,
        },
        "figures": figures,
        "table": table,
        "goal_met": None,
        "notes": [
            "Both servers answer in turn on one machine: compare the columns with each other; "
            "their absolute values follow the machine's load (the load average above).",
            "On the multi-user server every request also reads the caller's default workspace "
            "and memberships (one store call), and a listing reads the caller's own tasks and "
            "each member workspace's through their indexes (`task_queries.task_select`).",
        ],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    print_tables(main(sys.argv[1:]))
