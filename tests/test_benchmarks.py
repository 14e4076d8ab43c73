"""Smoke test of the benchmarks: they run at tiny size and produce figures of the right shape.

No timing is asserted: machines are shared and noisy; only the shape of the output is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.mark.timeout(300)
def test_run_quick_writes_figures(tmp_path: Path) -> None:
    """`run.py --quick` measures dispatch latency and writes its section and JSON."""
    out, data = tmp_path / "performance.md", tmp_path / "results.json"
    command = [sys.executable, "benchmarks/run.py", "--quick", "--out", str(out)]
    command += ["--json", str(data)]
    done = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["name"]: r for r in json.loads(data.read_text(encoding="utf-8"))}
    figures = results["dispatch_latency"]["figures"]
    for key in ("dispatch_ms", "floor_ms", "run_once_answer_ms"):
        assert figures[key]["n"] == 3
        assert all(_positive(figures[key][s]) for s in ("median", "p95", "min", "max"))
    assert _positive(figures["ratio_median"])
    assert len(figures["raw_dispatch_ms"]) == len(figures["raw_floor_ms"]) == 3
    assert isinstance(results["dispatch_latency"]["goal_met"], bool)
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
