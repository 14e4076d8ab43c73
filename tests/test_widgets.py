"""The panels, driven as a user would: in a kernel the test server started, and in this process.

In a kernel, the panel is built and displayed, a task is selected, its log read (live while it
runs), Kill clicked and confirmed, and the status is seen to change; closing stops every thread.
In this process the server shares the event loop, so panels are waited on from worker threads.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from jupyter_orch.sdk.client import Client
from jupyter_orch.sdk.logs import LogLine
from jupyter_orch.widgets import OrchestrationsPanel, TasksPanel, render, threads

from .conftest import Api
from .kernels import Kernel, StartKernel, server_url

HELLO = "import jupyter_orch\nprint('hello,', jupyter_orch.task_args().get('name', 'panel'))\n"
TICKER = (
    "import time\n"
    "n = 0\n"
    "while True:\n"
    "    n += 1\n"
    "    print('tick', n, flush=True)\n"
    "    time.sleep(0.1)\n"
)
FAR = "0 0 1 1 *"  # a schedule that does not fire during a test
#: Runs outlive the test server: a ticker left by a failed test ends by this timeout (s).
TICKER_TIMEOUT = 120
T = TypeVar("T")


# -- rendering ---------------------------------------------------------------------------------


AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def iso(**delta: float) -> str:
    """A server time `delta` before AT (after it when negative)."""
    return (AT - timedelta(**delta)).isoformat()


def test_times_are_relative_and_durations_short() -> None:
    assert render.relative(iso(seconds=2), AT) == "just now"
    assert render.relative(iso(seconds=42), AT) == "42 s ago"
    assert render.relative(iso(minutes=3, seconds=20), AT) == "3 min ago"
    assert render.relative(iso(hours=5), AT) == "5 h ago"
    assert render.relative(iso(days=1), AT) == "1 day ago"
    assert render.relative(iso(minutes=-4), AT) == "in 4 min"
    assert render.relative(iso(days=-300), AT) == "on 2026-12-26"
    assert render.relative(None, AT) == render.relative("not a time", AT) == ""
    assert [render.span(s) for s in (0.42, 12, 184, 7500, 90000)] == [
        "0.4 s",
        "12 s",
        "3 min 4 s",
        "2 h 5 min",
        "1 day 1 h",
    ]
    run = {"status": "running", "started_at": iso(seconds=75)}
    assert render.duration(run, AT) == "1 min 15 s"
    ended = {"status": "success", "started_at": iso(seconds=10), "ended_at": iso(seconds=7)}
    assert render.duration(ended, AT) == "3.0 s"
    assert "title=" in render.when(iso(minutes=3), AT)


def test_statuses_show_a_word_and_a_mark_not_colour_alone() -> None:
    for status, mark in [("success", "✔"), ("failure", "✖"), ("paused", "❚❚"), ("killed", "■")]:
        html = render.badge(status)
        assert status in html and mark in html and "var(--jp-" in html
    assert "timed out" in render.badge("timed_out")
    assert render.badge(None) == ""


def test_everything_shown_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    assert "<script>" not in render.badge(evil)
    assert "<script>" not in render.log_box(
        [LogLine(f"2026-01-01T00:00:00Z stdout F {evil}")], "empty"
    )
    assert "<script>" not in render.message(evil, ok=False)
    assert "<script>" not in render.table(["a"], [], None, evil)
    table = render.table(["<b>"], [[render.esc(evil)]], 0, "none")
    assert "<script>" not in table and "&lt;b&gt;" in table and "background" in table
    clickable = render.table(["a"], [["x"]], None, "none", ['"><script>'])
    assert "<script>" not in clickable and 'data-id="&quot;&gt;&lt;script&gt;"' in clickable


def test_importing_the_package_leaves_ipywidgets_alone() -> None:
    code = (
        "import sys, jupyter_orch, jupyter_orch.widgets\n"
        "print('ipywidgets' in sys.modules)\n"
        "jupyter_orch.widgets.TasksPanel\n"
        "print('ipywidgets' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


# -- in this process ---------------------------------------------------------------------------


@pytest.fixture
def client(jp_serverapp: Any, jp_fetch: Any) -> Iterator[Client]:
    """A client of the test server (`jp_fetch` starts its HTTP listener)."""
    found = Client(url=server_url(jp_serverapp), token=jp_serverapp.identity_provider.token)
    yield found
    found.close()


async def until(check: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """Poll `check` (run in a thread) until it gives a truthy value; fail at the deadline."""
    return await until_async(lambda: asyncio.to_thread(check), what, timeout)


async def until_async(check: Callable[[], Awaitable[T | None]], what: str, timeout: float) -> T:
    """Await `check()` until it gives a truthy value; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.05)


async def idle(panel: Any) -> None:
    """Wait, without blocking the server, until the panel's queued work is done."""
    assert await asyncio.to_thread(panel.wait_idle, 60)


def panel_threads() -> list[str]:
    """The names of the panels' threads still running in this process."""
    return [t.name for t in threading.enumerate() if t.name.startswith("jupyter_orch-")]


@pytest.mark.timeout(180)
async def test_orchestrations_panel_shows_packaging_build_logs_and_runs_once(
    local_wheels: None, api: Api, client: Client
) -> None:
    good = await api.upload({"main.py": HELLO}, name="good")
    bad = await api.upload({"main.py": HELLO, "requirements.txt": "orchdemo==9.9\n"}, name="bad")
    await api.wait_orch(good, {"ready"})
    await api.wait_orch(bad, {"error"})
    panel = OrchestrationsPanel(client=client, refresh_seconds=0.2)
    try:
        await idle(panel)
        assert [row[:2] for row in panel.rows] == [["bad", "error"], ["good", "ready"]]
        assert panel.rows[0][3] == "yes" and "bytes" in panel.rows[0][2]
        assert panel.page_text == "1-2 of 2 orchestrations"

        panel.select_orchestration(bad)
        await idle(panel)
        assert "orchdemo==9.9" in panel.build_log_text
        assert "orchdemo==9.9" in panel._title.value  # the packaging error, shown
        panel.click("run_once")
        await idle(panel)
        assert panel.status_text == "Run once is not available: its packaging failed"

        panel.select_orchestration(good)
        await idle(panel)
        assert "nothing to build" in panel._log_box.value.lower()
        panel.set_run("from-panel", "[1]")
        panel.click("run_once")
        await idle(panel)
        assert panel.status_text.startswith("Arguments must be a JSON object")
        panel.set_run(args={"name": "orchestrations"})
        panel.click("run_once")
        await idle(panel)
        assert panel.status_text.startswith("Started task from-panel (")
        assert panel.last_task_id is not None
        task = await api.wait_task(panel.last_task_id, {"success", "failed"})
        assert task["status"] == "success" and task["input_data"] == {"name": "orchestrations"}
    finally:
        await asyncio.to_thread(panel.close)
    assert panel_threads() == []


async def test_empty_states_and_refresh_errors_are_said(api: Api, client: Client) -> None:
    panel = TasksPanel(client=client, refresh_seconds=0.2)
    await idle(panel)
    assert panel.rows == [] and panel.page_text == "0 tasks"
    assert "No tasks in this workspace yet" in panel._table.value
    panel.set_filters(status="failed", include_killed=True)
    await idle(panel)
    orch = await api.upload({"main.py": HELLO})
    await api.wait_task(await api.run_once(orch), {"success"})
    await until(lambda: "No task matches these filters" in panel._table.value, "filtered out")
    panel.set_filters(status="")
    await until(lambda: panel.rows, "the task")
    panel.click("kill")
    await idle(panel)
    assert panel.status_text == "Kill is not available: select a task first"
    await asyncio.to_thread(panel.close)
    assert not panel.threads_alive


async def test_open_in_jupyterlab_displays_the_tasks_open_link(api: Api, client: Client) -> None:
    panel = TasksPanel(client=client, refresh_seconds=3600)
    await idle(panel)
    panel.click("open_view")
    await idle(panel)
    assert panel.open_link is None
    assert panel.status_text == "Open in JupyterLab is not available: select a task first"
    orch = await api.upload({"main.py": HELLO})
    task_id = await api.run_once(orch)
    panel.refresh()
    panel.select_task(task_id)
    await idle(panel)
    panel.click("open_view")
    await idle(panel)
    first = panel.open_link
    assert first is not None
    link = first["application/vnd.jupyter-orch.open+json"]
    assert link["task_id"] == task_id and link["request"]
    panel.click("open_view")
    await idle(panel)
    again = panel.open_link
    assert again is not None
    # each press is a new request, which JupyterLab opens again
    assert again["application/vnd.jupyter-orch.open+json"]["request"] != link["request"]
    await asyncio.to_thread(panel.close)


async def far_task(api: Api, orch: str, name: str) -> str:
    """A scheduled task that does not run during the test; its id."""
    body = {"workspace_id": 1, "orch_id": orch, "json": {}, "name": name, "schedule": FAR}
    task_id: str = (await api.ok("task/run_scheduled", body, status=201))["id"]
    return task_id


async def five_tasks(api: Api) -> tuple[str, list[str]]:
    """An orchestration and its tasks p0 to p4 (p4 the newest), p1 and p3 killed."""
    orch = await api.upload({"main.py": HELLO}, name="paged")
    await api.wait_orch(orch, {"ready"})
    ids = [await far_task(api, orch, f"p{n}") for n in range(5)]
    for killed in (ids[1], ids[3]):
        await api.ok("task/kill", {"id": killed}, status=202)
    return orch, ids


def record_lists(panel: TasksPanel, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The bodies of the panel's `task/list` requests, as they are made."""
    calls: list[dict[str, Any]] = []
    post = panel.client._post

    def recorded(path: str, body: dict[str, Any] | None = None) -> Any:
        if path == "task/list":
            calls.append(dict(body or {}))
        return post(path, body)

    monkeypatch.setattr(panel.client, "_post", recorded)
    return calls


def names(panel: TasksPanel) -> list[str]:
    """The names of the tasks of the page shown."""
    return [row[0] for row in panel.rows]


async def test_tasks_come_a_page_at_a_time_by_keyset(
    api: Api, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    orch, ids = await five_tasks(api)
    panel = TasksPanel(client=client, page_size=2, refresh_seconds=3600)
    calls = record_lists(panel, monkeypatch)
    try:
        await idle(panel)
        assert (names(panel), panel.page_text) == (["p4", "p2"], "1-2 of more than 2 tasks")
        panel.next_page()
        await idle(panel)
        assert (names(panel), panel.page_text) == (["p0"], "3-3 of 3 tasks")
        assert calls[-1] == {
            "workspace_id": 1,
            "run_limit": 1,
            "killed": False,
            "limit": 3,
            "after": ids[2],
        }
        panel.click("next")
        await idle(panel)
        assert panel.status_text == "Next is not available: this is the last page"

        # a newer task goes to the first page; the second stays as it was
        ids.append(await far_task(api, orch, "new"))
        panel.refresh()
        await idle(panel)
        assert names(panel) == ["p0"]
        panel.prev_page()
        await idle(panel)
        assert (names(panel), panel.page_text) == (["new", "p4"], "1-2 of more than 2 tasks")
        panel.next_page()
        await idle(panel)
        assert names(panel) == ["p2", "p0"]
    finally:
        await asyncio.to_thread(panel.close)
        for task_id in (ids[0], ids[2], ids[4], ids[5]):
            await api.ok("task/kill", {"id": task_id}, status=202)


async def test_by_status_a_page_looks_through_a_bounded_number_of_tasks(
    api: Api, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids = await five_tasks(api)
    monkeypatch.setattr(TasksPanel, "scan_chunk", 2)
    monkeypatch.setattr(TasksPanel, "scan_limit", 3)
    panel = TasksPanel(client=client, page_size=2, refresh_seconds=3600, status="killed")
    calls = record_lists(panel, monkeypatch)
    try:
        await idle(panel)
        assert names(panel) == ["p3"]
        assert panel.page_text == "1-1 matching among 3 tasks looked at; Next looks further"
        del calls[:]
        panel.refresh()
        await idle(panel)
        assert [(c.get("after"), c["limit"]) for c in calls] == [(None, 3)]
        panel.next_page()
        await idle(panel)
        # it looks on after the last task looked at (p2), to the end
        assert (names(panel), panel.page_text) == (["p1"], "2-2 of 2 tasks")
        assert calls[-1]["after"] == ids[2]
        panel.set_filters(status="")
        await idle(panel)
        assert names(panel) == ["p4", "p2"]
    finally:
        await asyncio.to_thread(panel.close)
        for task_id in (ids[0], ids[2], ids[4]):
            await api.ok("task/kill", {"id": task_id}, status=202)


async def test_a_panel_rests_while_no_view_shows_it(api: Api, client: Client) -> None:
    orch = await api.upload({"main.py": TICKER})
    task_id = await api.run_once(orch, timeout=TICKER_TIMEOUT)
    panel = TasksPanel(client=client, refresh_seconds=0.2)
    try:
        panel.select_task(task_id)
        await until(lambda: panel.following and "tick 2" in panel.log_text, "the live log")
        panel._view_count = 1  # as the frontend reports a view, then its removal
        panel._view_count = 0
        await until(lambda: not panel.following, "the follower to stop")
        assert panel._worker.alive  # the worker stays, idle, to come back
        panel._view_count = 1
        await until(lambda: panel.following, "following again")
    finally:
        await asyncio.to_thread(panel.close)
        await api.ok("task/kill", {"id": task_id}, status=202)
        await api.wait_task(task_id, {"killed"})
    assert panel_threads() == []


async def test_long_logs_keep_their_end_and_exit_stops_every_thread(
    api: Api, client: Client
) -> None:
    orch = await api.upload({"main.py": "for i in range(1500):\n    print('line', i)\n"})
    task_id = await api.run_once(orch)
    await api.wait_task(task_id, {"success"})
    ticker = await api.run_once(await api.upload({"main.py": TICKER}), timeout=TICKER_TIMEOUT)
    panel = TasksPanel(client=client)
    other = TasksPanel(client=client)
    try:
        panel.select_task(task_id)
        await idle(panel)
        lines = panel.log_text.splitlines()
        assert len(lines) == 1000 and lines[-1] == "line 1499"
        assert "the last 1,000 lines" in panel._log.heading.value
        panel.select_task(ticker)
        await until(lambda: panel.following, "the live log")
        assert len(panel_threads()) == 3  # two workers, one follower
        threads.stop_all()  # what happens at kernel shutdown
        await until(lambda: not panel_threads(), "every thread to end")
    finally:
        await asyncio.to_thread(panel.close)
        await asyncio.to_thread(other.close)
        await api.ok("task/kill", {"id": ticker}, status=202)
        await api.wait_task(ticker, {"killed"})


# -- in a kernel the server started ------------------------------------------------------------


async def kernel_panel(start_kernel: StartKernel, code: str) -> Kernel:
    """A kernel holding a displayed panel `p` made by `code`."""
    kernel = await start_kernel()
    await kernel.ok(
        "import threading, time\n"
        "from jupyter_orch.widgets import TasksPanel, OrchestrationsPanel\n"
        f"p = {code}\n"
        "display(p)\n"
        "assert p.wait_idle()\n"
        "def orch_threads():\n"
        "    return [t.name for t in threading.enumerate() if t.name.startswith('jupyter_orch-')]\n"
    )
    return kernel


async def poll(kernel: Kernel, expression: str, what: str, timeout: float = 30) -> Any:
    """Evaluate `expression` in the kernel until it is truthy; its value."""
    return await until_async(lambda: kernel.value(expression), what, timeout)


async def widget_update(kernel: Kernel, model_id: str, needle: str, timeout: float = 30) -> None:
    """Read IOPub until the frontend is sent an update of `model_id` holding `needle`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = await kernel.client.get_iopub_msg(timeout=1)
        except Exception:  # queue.Empty: nothing yet
            continue
        content = msg["content"]
        if msg["msg_type"] != "comm_msg" or content.get("comm_id") != model_id:
            continue
        if needle in json.dumps(content["data"].get("state", {})):
            return
    raise AssertionError(f"no update of widget {model_id} with {needle!r}")


async def click_row(kernel: Kernel, model_id: str, row_id: str) -> None:
    """Send what the table's JavaScript sends when a row is clicked: a custom comm message."""
    content = {"comm_id": model_id, "data": {"method": "custom", "content": {"select": row_id}}}
    kernel.client.shell_channel.send(kernel.client.session.msg("comm_msg", content))


@pytest.mark.timeout(180)
async def test_tasks_panel_select_follow_kill_and_close(
    start_kernel: StartKernel, api: Api
) -> None:
    hello = await api.upload({"main.py": HELLO}, name="hello")
    done_id = await api.run_once(hello, {"name": "panel"}, name="greeter")
    await api.wait_task(done_id, {"success"})
    ticker = await api.upload({"main.py": TICKER}, name="ticker")
    tick_id = await api.run_once(ticker, name="ticker", timeout=TICKER_TIMEOUT)

    kernel = await kernel_panel(start_kernel, "TasksPanel(refresh_seconds=0.5)")
    rows = await kernel.value("p.rows")
    assert [row[0] for row in rows] == ["ticker", "greeter"]
    assert rows[1][1:4] == ["run once", "", "success"]
    assert rows[1][6] == "just now" or rows[1][6].endswith(" s ago")
    assert await kernel.value("repr(p)") == "<TasksPanel: workspace 1, 2 tasks>"

    # Choosing a task shows its runs and, at once, the newest run's log.
    await kernel.ok(f"p.select_task({done_id!r}); assert p.wait_idle()")
    runs = await kernel.value("p.runs")
    assert len(runs) == 1 and runs[0][1:3] == ["success", "once"] and runs[0][5] == "0"
    assert await kernel.value("p.selected_run") == runs[0][0]
    assert await kernel.value("p.log_text") == "hello, panel\n"
    assert "hello, panel" in await kernel.value("p._log.box.value")

    # A click on a row selects its task (the table's rows carry their ids).
    table_id = await kernel.value("p._table.model_id")
    assert f'data-id="{tick_id}"' in await kernel.value("p._table.value")
    await click_row(kernel, table_id, tick_id)
    await poll(kernel, f"p.selected_task == {tick_id!r}", "the clicked row selected")
    await click_row(kernel, table_id, "not-a-row")  # what no row says changes nothing
    await kernel.ok("assert p.wait_idle()")
    assert await kernel.value("p.selected_task") == tick_id

    # A running run's log is followed live, and the frontend is sent each update.
    await kernel.ok(f"p.select_task({tick_id!r}); assert p.wait_idle()")
    await poll(kernel, "p.following and 'tick 3' in p.log_text", "the live log")
    model_id = await kernel.value("p._log.box.model_id")
    await widget_update(kernel, model_id, "tick ")
    seen = await kernel.value("len(p.log_text.splitlines())")
    await poll(kernel, f"len(p.log_text.splitlines()) > {seen}", "more lines")

    # Kill asks first, then says what the server answered; the status changes to killed.
    await kernel.ok("p.click('kill'); assert p.wait_idle()")
    assert await kernel.value("p.confirming") is True
    await kernel.ok("p.confirm(); assert p.wait_idle()")
    said = await kernel.value("p.status_text")
    assert said in (
        "Kill requested for ticker: pending kill.",
        "Kill requested for ticker: killed.",
    )
    await poll(kernel, "p.task_status == 'killed'", "the task killed")
    await poll(kernel, "p.runs[0][1] == 'killed' and not p.following", "the run killed")
    assert "killed" in await kernel.value("p._title.value")
    await poll(kernel, "[r[0] for r in p.rows] == ['greeter']", "killed tasks hidden")
    await kernel.ok("p.set_filters(include_killed=True)")
    await poll(kernel, "[r[3] for r in p.rows] == ['killed', 'success']", "killed shown")

    # Closing stops the refresh and every thread of the panel.
    assert await kernel.value("len(orch_threads())") == 1
    await kernel.ok("p.close()")
    assert await kernel.value("orch_threads()") == []
    await kernel.ok("p.refresh(); p.select_task('x')")  # after close: no thread comes back
    assert await kernel.value("orch_threads()") == []


@pytest.mark.timeout(180)
async def test_actions_show_results_and_the_servers_refusals(
    start_kernel: StartKernel, api: Api
) -> None:
    orch = await api.upload({"main.py": HELLO}, name="hello")
    await api.wait_orch(orch, {"ready"})
    body = {"workspace_id": 1, "orch_id": orch, "json": {}, "name": "yearly", "schedule": FAR}
    task_id = (await api.ok("task/run_scheduled", body, status=201))["id"]
    once_id = await api.run_once(orch, name="once")
    await api.wait_task(once_id, {"success"})

    # A long refresh period: the panel does not learn by itself what happens behind its back.
    kernel = await kernel_panel(start_kernel, "TasksPanel(refresh_seconds=3600)")
    await kernel.ok(f"p.select_task({once_id!r}); assert p.wait_idle()")
    await kernel.ok("p.click('pause'); assert p.wait_idle()")
    assert await kernel.value("p.status_text") == (
        "Pause is not available: a run-once task cannot be paused"
    )

    await kernel.ok(f"p.select_task({task_id!r}); assert p.wait_idle()")
    assert await kernel.value("p.runs") == []
    assert "No runs yet. The next one is due in " in await kernel.value("p._runs_table.value")
    await kernel.ok("p.click('pause'); assert p.wait_idle()")
    assert await kernel.value("p.status_text, p.task_status") == [
        "Paused yearly: paused.",
        "paused",
    ]
    await kernel.ok("p.click('resume'); assert p.wait_idle()")
    assert await kernel.value("p.status_text") == "Resumed yearly: pending resume."

    await kernel.ok("p.click('run_now'); assert p.wait_idle()")
    assert (await kernel.value("p.status_text")).startswith("Started run ")
    await poll(kernel, "p.runs and p.runs[0][1] == 'success'", "the manual run", timeout=60)
    await kernel.ok("p.refresh(); assert p.wait_idle()")
    await poll(kernel, "p.log_text == 'hello, panel\\n'", "the manual run's log")
    assert await kernel.value("p.runs[0][2]") == "manual"

    # Killed behind the panel's back: the server's refusal is shown, not a traceback.
    await api.ok("task/kill", {"id": task_id}, status=202)
    await kernel.ok("p.click('pause'); assert p.wait_idle()")
    said = await kernel.value("p.status_text")
    assert said.startswith("Pause failed: task ") and "cannot be paused" in said
    await kernel.ok("p.close()")


@pytest.mark.timeout(300)
async def test_a_thousand_tasks_render_a_page_at_a_time(
    start_kernel: StartKernel, api: Api
) -> None:
    orch = await api.upload({"main.py": HELLO}, name="many")
    await api.wait_orch(orch, {"ready"})
    for n in range(1000):
        body = {"workspace_id": 1, "orch_id": orch, "json": {}, "name": f"t{n:04}", "schedule": FAR}
        await api.ok("task/run_scheduled", body, status=201)

    kernel = await start_kernel()
    result = await kernel.ok(
        "import time\n"
        "from jupyter_orch.widgets import TasksPanel\n"
        "start = time.perf_counter()\n"
        "p = TasksPanel()\n"
        "display(p)\n"
        "assert p.wait_idle()\n"
        "print(f'first page of 1,000 tasks in {time.perf_counter() - start:.2f} s')\n"
        "start = time.perf_counter()\n"
        "p.refresh(); assert p.wait_idle()\n"
        "print(f'one refresh of 1,000 tasks in {time.perf_counter() - start:.2f} s')\n",
        timeout=120,
    )
    print(result.stdout, end="")  # a figure for docs/widgets.md, never asserted
    assert await kernel.value("len(p.rows), p.page_text") == [50, "1-50 of more than 50 tasks"]
    assert await kernel.value("p.rows[0][0], p.rows[49][0]") == ["t0999", "t0950"]
    assert await kernel.value("len(p._table.value) < 60_000")  # one page, not a thousand rows

    # a refresh asks for the page and one task more, not for the thousand
    await kernel.ok(
        "calls = []\n"
        "post = p.client._post\n"
        "p.client._post = lambda path, body=None: calls.append((path, body)) or post(path, body)\n"
        "p.refresh(); assert p.wait_idle()\n"
    )
    listed = await kernel.value("[body for path, body in calls if path == 'task/list']")
    assert listed == [{"workspace_id": 1, "run_limit": 1, "killed": False, "limit": 51}]
    await kernel.ok("del calls[:]; p.next_page(); assert p.wait_idle()")
    assert await kernel.value("p.page_text, p.rows[0][0]") == [
        "51-100 of more than 100 tasks",
        "t0949",
    ]
    after = await kernel.value("calls[-1][1]['after'] == p._starts[1] and len(calls)")
    assert after == 1  # the next page, by keyset: one request
    await kernel.ok("p.close()")


async def test_the_orch_panel_magic(start_kernel: StartKernel, api: Api) -> None:
    orch = await api.upload({"main.py": HELLO}, name="hello")
    await api.wait_task(await api.run_once(orch, name="magic"), {"success"})
    kernel = await start_kernel()
    await kernel.ok("%load_ext jupyter_orch")
    shown = await kernel.ok("%orch_panel --killed")
    [bundle] = shown.data
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("<TasksPanel: ")
    await kernel.ok("first = _panel; assert _panel.wait_idle()")
    assert await kernel.value("[r[0] for r in _panel.rows], _panel._killed.value") == [
        ["magic"],
        True,
    ]
    await kernel.ok("%orch_panel --status success")
    # The panel shown before by the magic was closed: its threads are gone.
    assert await kernel.value("first.threads_alive, _panel is not first") == [False, True]
    await kernel.ok("assert _panel.wait_idle()")
    assert await kernel.value("len(_panel.rows)") == 1
    for line, words in [
        ("%orch_panel --status nope", "status: one of started"),
        ("%orch_panel --workspace x", "argument --workspace: invalid int"),
    ]:
        result = await kernel.run(line)
        assert result.error is not None and result.error[0] == "UsageError", result.error
        assert words in result.error[1], result.error
    await kernel.ok("_panel.close()")


def test_a_scheduled_tasks_heading_says_its_schedule_in_words() -> None:
    from jupyter_orch.widgets import rows

    task = {
        "id": "t1",
        "name": "nightly",
        "run_type": "CronJob",
        "status": "started",
        "schedule": "0 9 * * 1-5",
        "timezone": "Europe/Paris",
        "schedule_description": "At 09:00, Monday <b>through</b> Friday",
        "created_at": None,
    }
    title = rows.task_title(task, render.now())
    assert (
        "At 09:00, Monday &lt;b&gt;through&lt;/b&gt; Friday <code>0 9 * * 1-5 (Europe/Paris)"
        in title
    )
