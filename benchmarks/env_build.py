"""Environment build time: from upload to `ready` for a small requirements file, uv vs pip.

Usage: python benchmarks/env_build.py [--runs 5] [--index-url URL] [--json PATH] [--quick]

Through the real API of a real server: the time from just before `POST orchestration/upload`
to the first `orchestration/get_by_id` answer saying `ready` (polled every 10 ms), for
  - uv cold: no environment and an empty uv cache (both deleted before each sample);
  - uv warm: the environment exists (another upload with the same requirements);
  - uv, new environment from a warm cache (the environment deleted, the cache kept).
Baseline, in the same run, alternating with the above: `python -m venv DIR` then
`DIR/bin/python -m pip install --no-cache-dir -r requirements.txt`, timed from start to end
(no upload, no polling: the baseline carries none of the API's overhead).
Both installers read one index (`--index-url`, default the local mirror under /opt/pypi when
there is one, else the public registry) and no pip configuration file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    BenchError,
    BenchResult,
    Client,
    bench_parser,
    jupyter_server,
    print_tables,
    summarize,
)

REQUIREMENTS = "requests\nattrs\nclick\nsix\n"  # 8 packages once resolved, all pure Python
USER_CODE = "import attrs, click, requests, six, jupyter_orch\nprint('ok')\n"
LOCAL_INDEX = Path("/opt/pypi/simple")
PUBLIC_INDEX = "https://pypi.org/simple"
MAX_RUNS = 10  # a pip build takes seconds: run.py's --runs 60 is capped here
GOAL_WARM_S = 1.0
GOAL_RATIO = 5.0
# Variables that would point either installer somewhere else than the chosen index.
CLEARED = (
    "PIP_FIND_LINKS",
    "PIP_EXTRA_INDEX_URL",
    "PIP_NO_INDEX",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
)
MEASURES = (
    ("uv_cold", "uv, cold (empty cache, no environment)"),
    ("uv_warm", "uv, warm (environment exists)"),
    ("uv_new_env", "uv, new environment from a warm cache"),
    ("pip_cold", "pip, cold (`python -m venv` + `pip install --no-cache-dir`)"),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = bench_parser(
        __doc__,
        "one sample of each (smoke test)",
        f"samples of each (max {MAX_RUNS})",
        runs_default=5,
    )
    parser.add_argument("--index-url", help="the one index both installers use")
    args = parser.parse_args(argv)
    args.runs = 1 if args.quick else min(args.runs, MAX_RUNS)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if args.index_url is None:
        local = (LOCAL_INDEX / "index.html").is_file()
        args.index_url = LOCAL_INDEX.as_uri() if local else PUBLIC_INDEX
    return args


@contextmanager
def one_index(index_url: str) -> Iterator[None]:
    """This process's environment (inherited by the server) names only `index_url`."""
    saved = dict(os.environ)
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update({"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index_url})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def time_to_ready(client: Client) -> tuple[float, dict[str, Any]]:
    """Seconds from just before the upload to `ready` seen by the client, and the record."""
    files = {"main.py": USER_CODE, "requirements.txt": REQUIREMENTS}
    start = time.perf_counter()
    orch_id = client.upload(files)
    deadline = start + 600
    while True:
        orch: dict[str, Any] = client.post("orchestration/get_by_id", {"id": orch_id})
        if orch["status"] == "ready":
            return time.perf_counter() - start, orch
        if orch["status"] == "error" or time.perf_counter() > deadline:
            raise BenchError(f"orchestration {orch_id} is {orch['status']}: {orch.get('error')}")
        time.sleep(0.01)


def forget(client: Client, key: str | None, cache: bool) -> None:
    """Delete the environment (and the uv cache when `cache`) so the next upload builds."""
    envs = client.data_dir / "envs"
    if key:
        shutil.rmtree(envs / key, ignore_errors=True)
    if cache:
        shutil.rmtree(envs / ".uv-cache", ignore_errors=True)


def pip_cold(tmp: Path) -> float:
    """Seconds for `python -m venv` + `pip install --no-cache-dir` of the requirements."""
    env, reqs = tmp / "pip-env", tmp / "requirements.txt"
    shutil.rmtree(env, ignore_errors=True)
    reqs.write_text(REQUIREMENTS, encoding="utf-8")
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "-q"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([*pip, "--disable-pip-version-check", "-r", str(reqs)], check=True)
    return time.perf_counter() - start


def sample(client: Client, tmp: Path, key: str | None) -> dict[str, Any]:
    """One sample of each measure, in a fixed order."""
    forget(client, key, cache=True)
    cold, orch = time_to_ready(client)
    warm, reused = time_to_ready(client)
    if reused["build_seconds"] != 0:
        raise BenchError(f"the warm upload built again: {reused}")
    key = orch["image_path"].removeprefix("env:")
    forget(client, key, cache=False)
    new_env, rebuilt = time_to_ready(client)
    return {
        "key": key,
        "uv_cold": cold,
        "uv_warm": warm,
        "uv_new_env": new_env,
        "pip_cold": pip_cold(tmp),
        "server_cold": orch["build_seconds"],
        "server_new_env": rebuilt["build_seconds"],
    }


def check_environment(client: Client) -> None:
    """A run in the environment imports the requirements and the SDK."""
    orch_id = client.upload({"main.py": USER_CODE, "requirements.txt": REQUIREMENTS})
    client.wait_orch(orch_id)
    task = client.wait_task(client.run_once(orch_id))
    if task["status"] != "success":
        raise BenchError(f"a run in the environment failed: {task}")


def measure(runs: int, index_url: str) -> list[dict[str, Any]]:
    """`runs` samples of every measure against one server."""
    samples: list[dict[str, Any]] = []
    with one_index(index_url), tempfile.TemporaryDirectory() as tmp, jupyter_server() as client:
        key = None
        for _ in range(runs):
            samples.append(sample(client, Path(tmp), key))
            key = samples[-1]["key"]
        check_environment(client)
    return samples


def build_result(samples: list[dict[str, Any]], runs: int, index_url: str) -> BenchResult:
    """Summaries, the table and the verdict on the goals."""
    stats = {name: summarize([s[name] for s in samples]) for name, _ in MEASURES}
    server = {n: summarize([s[n] for s in samples]) for n in ("server_cold", "server_new_env")}
    ratio = stats["pip_cold"]["median"] / stats["uv_cold"]["median"]
    warm = stats["uv_warm"]["median"]
    met = warm <= GOAL_WARM_S and ratio >= GOAL_RATIO
    table = [["measure", "n", "median (s)", "min (s)", "max (s)"]]
    table += [_row(label, stats[name]) for name, label in MEASURES]
    table.append(["ratio: pip cold / uv cold (medians)", "", f"{ratio:.1f}x", "", ""])
    server_rows = [["build measured by the server (`build_seconds`)", "median (s)", "max (s)"]]
    server_rows += [
        [label, f"{server[n]['median']:.3f}", f"{server[n]['max']:.3f}"]
        for n, label in (("server_cold", "uv, cold"), ("server_new_env", "uv, new env, warm cache"))
    ]
    return {
        "name": "env_build",
        "title": "Environment build",
        "description": _description(runs, index_url),
        "params": {"runs": runs, "index_url": index_url, "recordable": runs >= 5},
        "figures": {
            **{f"{name}_s": stats[name] for name, _ in MEASURES},
            **{f"{name}_s": server[name] for name in server},
            "ratio_pip_over_uv_cold": ratio,
            "raw": samples,
        },
        "table": table,
        "extra_tables": [("Build time as the server records it", server_rows)],
        "goal": f"warm median <= {GOAL_WARM_S:g} s; cold pip / cold uv >= {GOAL_RATIO:g}x",
        "goal_met": met,
        "notes": [
            f"warm {warm:.3f} s, ratio {ratio:.1f}x -> goals {'met' if met else 'NOT met'}",
        ],
    }


def _description(runs: int, index_url: str) -> str:
    return (
        f"Time from just before `POST orchestration/upload` to the first `get_by_id` saying "
        f"`ready` (polled every 10 ms), for `requirements.txt` = `{REQUIREMENTS.split()}` "
        "(8 pure-Python packages once resolved). uv cold: environment and uv cache deleted "
        "first; warm: the environment exists; new environment: environment deleted, cache kept. "
        "pip baseline: `python -m venv` + `pip install --no-cache-dir`, timed alone (no API "
        f"overhead). Index for both: `{index_url}`, no pip configuration file. {runs} samples "
        "of each, alternating."
    )


def _row(label: str, stats: dict[str, float]) -> list[str]:
    return [label, str(int(stats["n"]))] + [f"{stats[k]:.3f}" for k in ("median", "min", "max")]


def main(argv: list[str] | None = None) -> BenchResult:
    """Run the benchmark; print the table; write JSON if asked; return the result."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = build_result(measure(args.runs, args.index_url), args.runs, args.index_url)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
