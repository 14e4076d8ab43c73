"""The JupyterLab extension in a real browser: Debian's Chromium driven by playwright-core.

A `jupyter lab` subprocess on 127.0.0.1 with a token and a data directory of its own; the
browser steps are in `ui-tests/sidebar.mjs`: the sidebar, then the ipywidgets panels in a
notebook of the same page (its kernel finds the server through the runtime folder the test
gives both). A screenshot of every step goes to `test-output/browser/` (kept by CI as
artifacts). Skipped only where Chromium is not installed (`apt-get install chromium`; `.ci/run`
installs it).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import CHROMIUM, NO_CHROMIUM, ROOT, Lab, ensure_playwright

OUTPUT = ROOT / "test-output" / "browser"
MANY_TASKS = 1000
NOTEBOOK = "widgets.ipynb"
WIDGET_TASK = "widget-task"
NOTEBOOK_TASK = "notebook-task"
NOTEBOOK_TEXT = "hello from the notebook orchestration"
NOTEBOOK_CELL = "Lyon"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

LONG_RUN = """\
import time
print("hello from the browser test", flush=True)
for i in range(1, 600):
    time.sleep(0.5)
    print(f"tick {i}", flush=True)
"""

FAILING = """\
print("about to fail", flush=True)
raise SystemExit(3)
"""

HELLO = """\
import jupyter_orch
args = jupyter_orch.task_args()
print(f"hello, {args.get('name', 'world')}", flush=True)
"""

# main.ipynb of a notebook orchestration: one cell printing text and displaying an HTML table
OUTPUT_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "a1b2c3d4",
            "metadata": {},
            "outputs": [],
            "source": [
                "from IPython.display import HTML, display\n",
                f"print({NOTEBOOK_TEXT!r})\n",
                "display(HTML(\n",
                '    "<table><tr><th>city</th><th>runs</th></tr>"\n',
                f'    "<tr><td>{NOTEBOOK_CELL}</td><td>3</td></tr></table>"\n',
                "))",
            ],
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A started `jupyter lab`, stopped after the test."""
    server = Lab(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(600)
def test_sidebar_in_chromium(lab: Lab) -> None:
    """Open the sidebar, read a task's live log, kill it through the dialog, create an
    orchestration from a folder through the context menu, open a failed run from its
    notification, open a notebook run's executed copy ("Open output") read-only, and stay
    responsive with a thousand tasks; then, in a notebook of the same page, run a cell that
    displays `TasksPanel()` and see it list a task made through the API."""
    ensure_playwright()
    page = lab.session.get(f"{lab.url}lab", timeout=30).text
    assert '"jupyter_orch"' in page, (
        "the labextension is not installed in this environment: `pip install -e .` builds it"
    )
    folder = lab.root / "hello_folder"
    folder.mkdir()
    (folder / "main.py").write_text(HELLO)

    orch_id = lab.upload("browser", LONG_RUN)
    task = lab.run_once(orch_id, "browser-task", "running")
    failing = lab.upload("failing", FAILING)
    lab.new_notebook(NOTEBOOK)

    # a notebook orchestration, run once: its executed copy is what "Open output" shows
    notebook_orch = lab.upload("notebook", json.dumps(OUTPUT_NOTEBOOK), "main.ipynb")
    notebook_task = lab.run_once(notebook_orch, NOTEBOOK_TASK, "success")
    notebook_run = lab.post("task/get_by_id", {"id": notebook_task["id"]})["last_runs"][0]
    output = lab.session.get(
        f"{lab.api}/task/get_run_output", params={"id": notebook_run["run_id"]}, timeout=30
    )
    assert output.status_code == 200, (output.status_code, output.text[:500])
    assert NOTEBOOK_TEXT in output.text, output.text[:2000]

    config = {
        "task": {"id": task["id"], "name": "browser-task"},
        "failingOrch": failing,
        "folder": "hello_folder",
        "manyTasks": MANY_TASKS,
        "notebook": NOTEBOOK,
        "widgetTask": WIDGET_TASK,
        "notebookTask": {
            "id": notebook_task["id"],
            "name": NOTEBOOK_TASK,
            "runId": notebook_run["run_id"],
            "text": NOTEBOOK_TEXT,
            "cell": NOTEBOOK_CELL,
        },
    }
    lab.steps("sidebar.mjs", OUTPUT, config)

    assert lab.post("task/get_by_id", {"id": task["id"]})["status"] == "killed"
    orchs = lab.post("orchestration/list", {"workspace_id": 1})
    created = [o for o in orchs if o["name"] == "hello_folder"]
    assert len(created) == 1, orchs
    tasks = lab.post("task/list", {"orch_id": created[0]["id"]})
    assert [(t["run_type"], t["schedule"], t["input_data"], t["timeout"]) for t in tasks] == [
        ("CronJob", "*/2 * * * * *", {"name": "browser"}, 60)
    ]
    lab.post("task/kill", {"id": tasks[0]["id"]}, status=202)

    # the panel's kernel ran in the notebook the page opened, and its task is still there
    sessions = lab.session.get(f"{lab.url}api/sessions", timeout=30).json()
    assert [s["path"] for s in sessions] == [NOTEBOOK], sessions
    listed = lab.post("task/list", {"orch_id": failing})
    assert [t["name"] for t in listed if t["name"] == WIDGET_TASK] == [WIDGET_TASK]
    shots = sorted(p.name for p in OUTPUT.glob("*.png"))
    assert len(shots) >= 10 and not any("FAILED" in s for s in shots), shots
    assert any(s.endswith("-tasks-panel-rendered.png") for s in shots), shots
    assert any(s.endswith("-notebook-output-opened.png") for s in shots), shots
    assert any(s.endswith("-notebook-output-dark-theme.png") for s in shots), shots


TASK_VIEW_OUTPUT = ROOT / "test-output" / "task-view"
DOCS_SHOT = ROOT / "docs" / "images" / "task-view.png"

# a scheduled run: lines on stdout and one on stderr; every third run fails
SCHEDULED = """\
import sys, time
import jupyter_orch
args = jupyter_orch.task_args()
for i in range(args.get("lines", 5)):
    print(f"line {i} of the scheduled run", flush=True)
print("a warning on stderr", file=sys.stderr, flush=True)
time.sleep(0.5)
if int(time.time()) % 3 == 0:
    raise SystemExit(2)
"""


@pytest.mark.timeout(600)
def test_task_view_in_chromium(lab: Lab) -> None:
    """The main-area view of a task in the light and the dark theme: opened from the
    sidebar (which shows a sparkline per task), its header with the schedule in words,
    the run-history chart (hover, click to show an older run's log), the log's search,
    wrap, stderr jump and download; the badges' contrast; the create form's presets, cron
    checks and time zone; where the server has
    them, editing in place (next fire times and history follow) and running a run again
    with other arguments; a kernel's `%orch_open` output opening the view."""
    ensure_playwright()
    orch_id = lab.upload("scheduled", SCHEDULED)
    task = lab.post(
        "task/run_scheduled",
        {
            "orch_id": orch_id,
            "workspace_id": 1,
            "name": "nightly-report",
            "schedule": "0 6 * * 1-5",
            "timezone": "Europe/Paris",
            "json": {"lines": 40},
            "timeout": 600,
        },
        status=201,
    )
    # a few runs for the chart, each its own length
    for _ in range(4):
        lab.post("task/run_now", {"id": task["id"]}, status=201)
        lab.wait_run(task["id"], "running")
        deadline = time.monotonic() + 60
        while lab.post("task/get_by_id", {"id": task["id"]})["last_runs"][0]["status"] == "running":
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.2)
    once = lab.post(
        "task/run_once",
        {"orch_id": orch_id, "workspace_id": 1, "name": "once-again", "json": {"lines": 1}},
        status=201,
    )
    deadline = time.monotonic() + 60
    while lab.post("task/get_by_id", {"id": once["id"]})["status"] in ("pending", "started"):
        assert time.monotonic() < deadline, "the run-once task did not end"
        time.sleep(0.2)
    long_orch = lab.upload("long", LONG_RUN)
    long_task = lab.run_once(long_orch, "long-run", "running")

    config = {
        "task": {"id": task["id"], "name": "nightly-report", "orchId": orch_id},
        "longTask": {"id": long_task["id"], "name": "long-run"},
        "onceTask": {"id": once["id"], "name": "once-again", "orchId": orch_id},
        "docsShot": str(DOCS_SHOT),
        "notebook": "open-task.ipynb",
    }
    lab.new_notebook("open-task.ipynb")
    lab.steps("taskview.mjs", TASK_VIEW_OUTPUT, config)
    shots = sorted(p.name for p in TASK_VIEW_OUTPUT.glob("*.png"))
    assert not any("FAILED" in s for s in shots), shots
    for theme in ("light", "dark"):
        assert any(s.endswith(f"-task-view-{theme}.png") for s in shots), shots


DELETING_OUTPUT = ROOT / "test-output" / "deleting"
DELETE_SHOT = ROOT / "docs" / "images" / "delete-task.png"


@pytest.mark.timeout(600)
def test_deleting_in_chromium(lab: Lab) -> None:
    """Delete a finished task from the sidebar's context menu (its open view closes) and a
    running one from its view, each through a dialog built from the server's preview;
    delete an orchestration with the counts its dialog shows; in the light and the dark
    theme. And the Connections section lists a connection made through the API, never
    holding its details."""
    ensure_playwright()
    hello = lab.upload("hello", HELLO)
    done = lab.run_once(hello, "delete-me", "success")
    long_orch = lab.upload("long", LONG_RUN)
    going = lab.run_once(long_orch, "delete-running", "running")
    doomed = lab.upload("to-delete", HELLO)
    for name in ("doomed-1", "doomed-2"):
        lab.run_once(doomed, name, "success")
    secret = secrets.token_hex(16)

    config = {
        "doneTask": {"id": done["id"], "name": "delete-me", "runs": 1},
        "runningTask": {"id": going["id"], "name": "delete-running"},
        "deleteOrch": {
            "id": doomed,
            "name": "to-delete",
            "tasks": 2,
            "runs": 2,
            "taskName": "doomed-1",
        },
        "connection": {"name": "warehouse", "type": "ODBC", "secret": secret},
        "docsShot": str(DELETE_SHOT),
    }
    lab.steps("deleting.mjs", DELETING_OUTPUT, config)

    orchs = [o["id"] for o in lab.post("orchestration/list", {"workspace_id": 1})]
    assert doomed not in orchs and hello in orchs and long_orch in orchs, orchs
    shots = sorted(p.name for p in DELETING_OUTPUT.glob("*.png"))
    assert not any("FAILED" in s for s in shots), shots
    assert any(s.endswith("-orchestration-deleted.png") for s in shots), shots
    assert secret not in lab.log()
    for task in (done, going):
        lab.post("task/get_by_id", {"id": task["id"]}, status=404)
    assert any(s.endswith("-running-task-deleted-dark.png") for s in shots), shots
