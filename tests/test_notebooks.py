"""Every example notebook runs end to end against the live test server, so none can rot.

nbclient starts each notebook's kernel from this process, which is the test server: the kernel
finds it as any kernel finds the server that started it. Only loopback is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

#: Text each notebook's outputs must hold once executed.
EXPECTED = {
    "01-hello-world": ["hello, Jupyter", "ended: success (exit 0)", "run id", "stdout"],
    "02-rest-api": ["rows to score: 1000", "'status': 'success'", "'ids': [", "killed"],
    "03-scheduled-job": ["tick 20", "paused", "'killed'"],
    "04-continuous-job": ["item 3 of 3\nbatch done", "'killed'"],
    "05-task-args": [
        "workspace: dev-workspace",
        "workspace: forecasts",
        "workspace id: 2",
        "pipeline: daily-forecast",
        "forecasts",
        "(False, {})",
    ],
    "06-panels": [
        "report line 1\nreport line 2\nreport line 3",
        "Started run ",
        "Paused report-nightly: ",
        "'report', 'ready'",
        "<TasksPanel: ",
        "'killed'",
    ],
    "07-notebook-task": [
        "('daily_report.zip', 'main.ipynb')",
        "'success'",
        '[cell 1/4] region = "us"',
        "[end] success: ran 4 of 4 cells",
        "report for eu over 30 days\n<IPython.core.display.HTML object>",
        "success 0\n# Parameters: the task's arguments\nregion = 'eu'\ndays = 30",
    ],
    "08-coming-from-wallaroo": [
        "external_inference_connection",
        "'ready'",
        "'success'",
        "connection external_inference_connection of type HTTP",
        "inference request: POST https://inference.example.com/v1/score with 5 rows",
        "with 2 rows",
        "with 1 rows",
        "remote-inference-scheduled",
        "('remote-inference-once', 'Temporary Run', 'success')",
        "('remote-inference-scheduled', 'Scheduled Run', 'killed')",
        "('remote-inference-continuous', 'Continuous Run', 'killed')",
        "[]",
    ],
}
#: Text no notebook's outputs may hold (a connection's secret details).
NEVER_SHOWN = ["tutorial-token-not-shown"]


def output_text(notebook: Any) -> str:
    """The text of every output: streams, and the plain text of results and displays."""
    parts: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                parts.append(output["text"])
            elif "data" in output:
                parts.append(output["data"].get("text/plain", "") + "\n")
    return "".join(parts)


def test_the_examples_are_all_there_and_stored_without_outputs() -> None:
    assert [path.stem for path in NOTEBOOKS] == sorted(EXPECTED)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
async def test_notebook_runs_end_to_end(
    path: Path, tmp_path: Path, jp_serverapp: Any, jp_fetch: Any
) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    # The async API keeps this event loop free, so the test server answers the kernel.
    await client.async_execute()
    text = output_text(notebook)
    for expected in EXPECTED[path.stem]:
        assert expected in text, f"{path.name}: {expected!r} not in the outputs:\n{text}"
    for secret in NEVER_SHOWN:
        assert secret not in text, f"{path.name}: {secret!r} shown"
