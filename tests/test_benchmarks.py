"""Smoke test of the benchmarks: they run at tiny size and produce figures of the right shape.

No timing is asserted: machines are shared and noisy; only the shape of the output is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


#: The benchmarks `test_run_quick_writes_figures` runs through `run.py`; each other one has a
#: `*_quick` test of its own (the Hub's runs only when asked).
WITHOUT_OWN_TEST = ("dispatch_latency", "executors", "chatty_run", "env_build", "schedule_fields")


def test_every_benchmark_is_run_by_one_test() -> None:
    own = {path.stem for path in (ROOT / "benchmarks").glob("*.py")} - set(WITHOUT_OWN_TEST)
    own -= {"__init__", "common", "run", "hub_service"}
    source = Path(__file__).read_text(encoding="utf-8")
    assert all(f'"{name}"' in source or f"benchmarks/{name}.py" in source for name in own), own


@pytest.mark.timeout(600)
def test_run_quick_writes_figures(tmp_path: Path) -> None:
    """`run.py --quick` runs the benchmarks that have no test of their own below and writes
    their sections and JSON (the others are each run once, by their own test)."""
    out, data = tmp_path / "performance.md", tmp_path / "results.json"
    command = [sys.executable, "benchmarks/run.py", "--quick", "--out", str(out)]
    for name in WITHOUT_OWN_TEST:
        command += ["--only", name]
    command += ["--json", str(data)]
    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=580
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["name"]: r for r in json.loads(data.read_text(encoding="utf-8"))}
    executors = results["executors"]["figures"]  # the Dask executor beside the local one
    for executor in ("local", "dask"):
        assert executors["dispatch"][executor]["n"] == 2
        assert executors["lag"][executor]["n"] == 10
        assert _positive(executors["raw"]["burst"][executor]["runs_per_second"])
    figures = results["dispatch_latency"]["figures"]
    for key in ("dispatch_ms", "floor_ms", "run_once_answer_ms"):
        assert figures[key]["n"] == 3
        assert all(_positive(figures[key][s]) for s in ("median", "p95", "min", "max"))
    assert _positive(figures["ratio_median"])
    assert len(figures["raw_dispatch_ms"]) == len(figures["raw_floor_ms"]) == 3
    assert isinstance(results["dispatch_latency"]["goal_met"], bool)
    assert set(results) == set(WITHOUT_OWN_TEST)
    text = out.read_text(encoding="utf-8")
    assert "## Dispatch latency" in text
    assert "Command: `python benchmarks/run.py --quick" in text
    assert "median dispatch latency <= 2 x median floor" in text


def test_percentile_and_log_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The statistics and the log-line parser the benchmarks rely on."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.common import parse_log_line, parse_rfc3339_ns, percentile

    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(101)), 95) == 95
    line = parse_log_line("2023-05-22T21:09:17.683428502Z stdout F some printed text")
    assert (line.ns, line.stream, line.full, line.text) == (
        1684789757_683428502,
        "stdout",
        True,
        "some printed text",
    )
    assert parse_rfc3339_ns("2023-05-22T23:09:17.5+02:00") == 1684789757_500000000


@pytest.mark.timeout(120)
def test_schedule_precision_quick(tmp_path: Path) -> None:
    """`schedule_precision.py --quick`: runs counted, lateness and API latency measured."""
    data = tmp_path / "schedule.json"
    command = [sys.executable, "benchmarks/schedule_precision.py", "--quick", "--json", str(data)]
    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(data.read_text(encoding="utf-8"))
    runs, api = result["figures"]["runs"], result["figures"]["api_ms"]
    assert runs["expected"] > 0 and runs["observed_rows"] > 0
    assert (runs["missing"], runs["doubled"], runs["off_schedule"]) == (0, 0, 0)
    assert isinstance(runs["late_over_100ms"], int)
    assert runs["lateness_ms"]["n"] == runs["observed_rows"]
    assert all(isinstance(runs["lateness_ms"][k], float) for k in ("p50", "p99", "max"))
    for name in ("get_by_id", "list_task_runs"):
        for phase in ("baseline", "loaded"):
            assert api[name][phase]["n"] > 0
            assert _positive(api[name][phase]["p50"]) and _positive(api[name][phase]["p99"])
        assert _positive(api[name]["p99_ratio"])
    assert isinstance(result["goal_met"], bool) and not result["params"]["recordable"]


def test_schedule_precision_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing, doubled and off-schedule instants are counted from the run records."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.schedule_precision import analyse_runs, spread_seconds

    assert spread_seconds(4) == [0, 15, 30, 45]
    assert len(spread_seconds(1000)) == 1000 and max(spread_seconds(1000)) == 59
    start = 1_700_000_040  # a whole minute
    stamp = "2023-11-14T22:{}+00:00".format
    runs = [
        ("a", stamp("14:00"), stamp("14:00.010000"), stamp("14:00.050000"), "success"),
        ("a", stamp("14:00"), stamp("14:00.020000"), None, "running"),  # doubled
        ("b", stamp("14:07"), stamp("14:07.030000"), stamp("14:07.080000"), "success"),
    ]
    raw = {"window": (start, start + 60), "seconds": {"a": 0, "b": 5}, "runs": runs, "skipped": 0}
    counts = analyse_runs(raw)
    assert (counts["expected"], counts["observed_rows"], counts["observed_distinct"]) == (2, 3, 2)
    assert (counts["missing"], counts["doubled"], counts["off_schedule"]) == (1, 1, 1)
    assert counts["lateness_ms"]["max"] == pytest.approx(30.0)
    assert counts["late_over_100ms"] == 0
    assert counts["run_status"] == {"success": 2, "running": 1}


def test_run_only_keeps_other_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    """With `--only`, sections not re-run are kept, marked with the run that measured them."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.common import BenchResult
    from benchmarks.run import NOTES_MARKER, document

    def result(title: str, text: str) -> BenchResult:
        return {"name": title, "title": title, "description": text, "table": [["a"], ["1"]]}

    first = document([result("One", "old one"), result("Two", "old two")], "cmd1", ("1", "2"), "")
    second = document([result("Two", "new two")], "cmd2", ("3", "4"), "notes", first)
    generated = second.partition(NOTES_MARKER)[0]
    assert "old one" in generated and "new two" in generated and "old two" not in generated
    assert generated.index("## One") < generated.index("## Two")
    assert "_Kept from an earlier run: `cmd1`," in generated and "Command: `cmd2`" in generated
    third = document([result("Two", "newer two")], "cmd3", ("5", "6"), "", second)
    assert third.count("_Kept from an earlier run: `cmd1`,") == 1


def _quick(tmp_path: Path, module: str, *extra: str, timeout: int = 200) -> dict[str, Any]:
    """Run `benchmarks/<module>.py --quick` and return its JSON result."""
    data = tmp_path / f"{module}.json"
    command = [sys.executable, f"benchmarks/{module}.py", "--quick", "--json", str(data), *extra]
    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(data.read_text(encoding="utf-8"))
    assert result["name"] == module and result["table"] and not result["params"]["recordable"]
    return result


@pytest.mark.timeout(240)
def test_burst_quick(tmp_path: Path) -> None:
    """`burst.py --quick`: every run counted once, rates and CPU figures measured."""
    result = _quick(tmp_path, "burst")
    figures = result["figures"]
    assert figures["complete"] is True
    assert {r["variant"] for r in figures["rounds"]} == {"server", "env"}
    for round_ in figures["rounds"]:
        assert round_["runs_recorded"] == round_["requested"] == 20
        assert round_["tasks_with_several_runs"] == round_["tasks_without_run"] == 0
        assert _positive(round_["runs_per_s"]) and _positive(round_["accepted_per_s"])
        assert round_["request_ms"]["n"] == 20
    assert all(_positive(v) for v in figures["cpu_alone_ms"].values())
    assert isinstance(result["goal_met"], bool)


@pytest.mark.timeout(240)
def test_api_scale_quick(tmp_path: Path) -> None:
    """`api_scale.py --quick`: both sizes seeded and every endpoint timed, paging checked."""
    result = _quick(tmp_path, "api_scale")
    figures = result["figures"]
    for size, tasks in (("full", 1000), ("tenth", 100)):
        assert figures[size]["seeded"]["tasks"] == tasks
        assert figures[size]["seeded"]["runs"] == tasks * 10
        endpoints = figures[size]["endpoints"]
        assert (
            "task/get_by_id (10 runs)" in endpoints
            and "task/list {} (every task, 5 runs each)" in endpoints
            and "task/activity {since: half-way through the runs}" in endpoints
        )
        assert all(_positive(e["p50"]) and _positive(e["p99"]) for e in endpoints.values())
        assert figures[size]["paging"]["tasks"] is True  # keyset pages are the newest first
        assert figures[size]["paging"]["runs"] is True
    assert set(figures["verdicts"]) <= set(figures["full"]["endpoints"])
    assert "task/activity {} (running count, newest 20 failures)" in figures["verdicts"]
    assert isinstance(result["goal_met"], bool)


@pytest.mark.timeout(240)
def test_log_capture_quick(tmp_path: Path) -> None:
    """`log_capture.py --quick`: every variant's lines found in order, rates measured."""
    result = _quick(tmp_path, "log_capture")
    by_variant = result["figures"]["by_variant"]
    assert _positive(by_variant["print"]["lines_per_s"])
    for stats in by_variant.values():
        assert stats["complete"] is True and stats["lines"] == 100_000
        assert stats["lines_per_s"] is None or _positive(stats["lines_per_s"])  # one read: None
        assert _positive(stats["wall_s"])
        assert _positive(stats["floor_s"])


def test_log_capture_check_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing, doubled or reordered line fails the check; a complete log passes."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.common import BenchError
    from benchmarks.log_capture import check_log

    def write(texts: list[str]) -> Path:
        path = tmp_path / "log"
        stamp = "2023-05-22T21:09:17.{:09d}Z"
        lines = [f"{stamp.format(i)} stdout F {t}\n" for i, t in enumerate(texts)]
        path.write_text("".join(lines), encoding="utf-8")
        return path

    good = check_log(write(["0", "1", "2"]), "print", 3)
    assert good["lines_found"] == 3 and good["last_ns"] - good["first_ns"] == 2
    for texts in (["0", "2"], ["0", "1", "1"], ["0", "2", "1"]):
        with pytest.raises(BenchError):
            check_log(write(texts), "print", 3)


@pytest.mark.timeout(240)
def test_memory_quick(tmp_path: Path) -> None:
    """`memory.py --quick`: server and per-run memory read from /proc."""
    result = _quick(tmp_path, "memory")
    figures = result["figures"]
    for phase in ("idle", "after_runs", "loaded"):
        assert all(_positive(figures["server"][phase][k]) for k in ("rss", "pss", "uss"))
    for name in ("supervisor", "user"):
        assert figures["processes"][name]["n"] == 3
        assert _positive(figures["processes"][name]["rss"]["max"])
    assert _positive(figures["jupyter_alone"]["rss"]) and _positive(figures["bare_python"]["rss"])
    assert isinstance(result["goal_met"], bool)


@pytest.mark.network
@pytest.mark.timeout(600)
def test_peer_scheduler_quick(tmp_path: Path) -> None:
    """`peer_scheduler.py --quick`: jupyter-scheduler installed from the index and measured
    against our server, the same notebook and a script (skipped only when it cannot be
    installed here)."""
    result = _quick(tmp_path, "peer_scheduler", timeout=580)
    figures = result["figures"]
    error = figures.get("peer_error", "")
    if "pip install" in error or "python -m venv" in error:
        pytest.skip(f"jupyter-scheduler could not be installed: {error[:300]}")
    assert not error, error
    for side in ("peer", "ours", "ours_notebook"):
        for series, n in (("sequential", 1), ("concurrent", 2)):
            stats = figures[side][series]
            assert stats["n"] == stats["ok"] == n
            assert _positive(stats["median_ms"]) and _positive(stats["makespan_ms"])
    assert all(_positive(v) for v in figures["ratios"].values())
    assert isinstance(result["goal_met"], bool)


def test_ownership_quick(tmp_path: Path) -> None:
    """`ownership.py --quick`: the same requests timed on a single-user and a multi-user server."""
    result = _quick(tmp_path, "ownership")
    figures = result["figures"]
    for sides in figures.values():
        assert all(_positive(stats["p50"]) and stats["n"] == 5 for stats in sides.values())
    assert set(figures["task/get_by_id, own task"]) == {"single", "multi"}
    assert set(figures["task/get_by_id, another user's task (404)"]) == {"multi"}


def test_benchmarks_that_need_a_hub_run_only_when_asked() -> None:
    from benchmarks.run import discover

    assert "hub_service" not in discover()
    assert list(discover(["hub_service"])) == ["hub_service"]
