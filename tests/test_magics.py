"""The magics, in a kernel started by the test server: `%%orchestrate` and its options, the
`%orch_*` line magics, and one-line usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .kernels import Execution, Kernel, StartKernel


async def loaded(start: StartKernel) -> Kernel:
    """A new kernel with the magics loaded."""
    kernel = await start()
    await kernel.ok("%load_ext jupyter_orch")
    return kernel


def usage_error(result: Execution) -> str:
    """The one-line message of a usage error (and check that it was one, without traceback)."""
    assert result.error is not None and result.error[0] == "UsageError", result.error
    assert result.traceback == []
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("UsageError: ")
    return line.removeprefix("UsageError: ")


def status_of(result: Execution) -> str:
    """The status field of a displayed object."""
    [line] = [x for x in result.data[0]["text/plain"].splitlines() if x.split()[0] == "status"]
    return line.split()[1]


async def test_orchestrate_once_waits_and_prints_the_output(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    result = await kernel.ok(
        '%%orchestrate hello --once --args \'{"name": "magic"}\' --wait\n'
        "import jupyter_orch\n"
        "ran_here = True\n"
        "print('hello,', jupyter_orch.task_args()['name'])\n"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "hello, magic"
    assert lines[1].startswith("run ") and lines[1].endswith(" ended: success (exit 0)")
    [summary] = result.data
    assert summary["text/plain"].startswith("Uploaded hello")
    assert "<table>" in summary["text/html"] and "Temporary Run" in summary["text/plain"]
    assert await kernel.value("'ran_here' in dir()") is False  # the cell ran as a task only
    names = "_orch.name(), _task.name(), _task.task_type(), _run.known_status()"
    assert await kernel.value(names) == ["hello", "hello", "Temporary Run", "success"]
    assert await kernel.value("_task.id() in str(_task), _run.task_id() == _task.id()") == [
        True,
        True,
    ]


async def test_without_a_run_option_it_only_uploads(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    result = await kernel.ok("%%orchestrate just_upload\nprint('never here')\n")
    assert result.stdout == "" and "task" not in result.data[0]["text/plain"]
    assert await kernel.value("_orch.name(), _orch.status(), '_task' in dir()") == [
        "just_upload",
        "ready",
        False,
    ]
    assert await kernel.value("len(_orch.list_tasks())") == 0


async def test_args_from_a_variable_files_folders_and_follow(
    start_kernel: StartKernel, jp_root_dir: Path
) -> None:
    (jp_root_dir / "data").mkdir()
    (jp_root_dir / "data" / "numbers.csv").write_text("1,2,3\n", encoding="utf-8")
    (jp_root_dir / "notes.txt").write_text("a note\n", encoding="utf-8")
    kernel = await loaded(start_kernel)
    await kernel.ok("params = {'times': 2}")
    result = await kernel.ok(
        "%%orchestrate artifacts --once --args $params --file notes.txt --dir data --follow\n"
        "import jupyter_orch\n"
        "for _ in range(jupyter_orch.task_args()['times']):\n"
        "    print(open('notes.txt').read().strip(), open('data/numbers.csv').read().strip())\n"
    )
    assert result.stdout.splitlines()[:2] == ["a note 1,2,3", "a note 1,2,3"]
    assert "ended: success" in result.stdout


async def test_timeout_ends_the_run(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    result = await kernel.ok(
        "%%orchestrate sleepy --once --timeout 1 --wait\n"
        "import time\nprint('going to sleep', flush=True)\ntime.sleep(60)\n"
    )
    assert result.stdout.startswith("going to sleep\n")
    assert "ended: timed_out" in result.stdout


@pytest.mark.timeout(180)
async def test_requirements_inline_or_from_a_file(
    local_wheels: None, start_kernel: StartKernel, jp_root_dir: Path
) -> None:
    (jp_root_dir / "reqs.txt").write_text("orchdemo==1.0\n", encoding="utf-8")
    kernel = await loaded(start_kernel)
    code = "import orchdemo\nprint('orchdemo', orchdemo.__version__)\n"
    for option in ('"orchdemo==1.0; "', "reqs.txt"):
        line = f"%%orchestrate needs --once --requirements {option} --wait\n"
        result = await kernel.ok(line + code, timeout=150)
        assert result.stdout.startswith("orchdemo 1.0\n"), result.stdout
    assert await kernel.value("_orch.to_dict()['requirements']") is True


async def test_schedule_and_the_line_magics(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    result = await kernel.ok(
        '%%orchestrate ticker --schedule "*/1 * * * * *" --timezone Europe/Paris --follow\n'
        "print('tick')\n"
    )
    assert result.stdout.startswith("tick\n") and "ended: success" in result.stdout
    assert "Scheduled Run" in result.data[0]["text/plain"]
    task_id = await kernel.value("_task.id()")
    assert await kernel.value("_task.to_dict()['timezone']") == "Europe/Paris"

    tasks = await kernel.ok("%orch_tasks")
    assert task_id in tasks.data[0]["text/plain"] and "<table>" in tasks.data[0]["text/html"]
    runs = await kernel.ok("%orch_runs _task --limit 1")
    assert len(runs.data[0]["text/plain"].splitlines()) == 3  # header, rule, one run
    logs = await kernel.ok("%orch_logs _run")
    assert "tick" in logs.data[0]["text/plain"] and "stdout" in logs.data[0]["text/html"]
    followed = await kernel.ok("%orch_logs {_run.id()} --follow")
    assert followed.stdout == "tick\n"
    newest = await kernel.ok("%orch_logs _task --limit 1")
    assert "tick" in newest.data[0]["text/plain"]

    paused = await kernel.ok(f"%orch_pause {task_id}")
    assert status_of(paused) in ("pending_pause", "paused")
    resumed = await kernel.ok("%orch_resume _task")
    assert status_of(resumed) in ("pending_resume", "started")
    killed = await kernel.ok("%orch_kill _task")
    assert status_of(killed) in ("pending_kill", "killed")
    assert await kernel.value("_task.wait(timeout=30).known_status()") == "killed"
    assert task_id not in (await kernel.ok("%orch_tasks")).data[0]["text/plain"]
    assert task_id in (await kernel.ok("%orch_tasks --killed")).data[0]["text/plain"]
    # Pages: nothing after the only task; every run with --all.
    after = await kernel.ok(f"%orch_tasks --killed --after {task_id}")
    assert task_id not in after.data[0]["text/plain"]
    every = await kernel.ok("%orch_runs _task --all")
    assert len(every.data[0]["text/plain"].splitlines()) >= 3


async def test_continuous_then_kill_by_id(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    result = await kernel.ok("%%orchestrate looping --continuous\nprint('again')\n")
    assert "Continuous Run" in result.data[0]["text/plain"]
    task_id = await kernel.value("_task.id()")
    await kernel.ok("_task.first_run(timeout=30).wait(timeout=30)")
    killed = await kernel.ok(f"%orch_kill {task_id}")
    assert task_id in killed.data[0]["text/plain"]
    assert await kernel.value("_task.wait(timeout=30).known_status()") == "killed"


async def test_delete_says_what_would_go_then_deletes_with_yes(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    await kernel.ok("%%orchestrate looping --continuous\nimport time\ntime.sleep(60)\n")
    task_id = await kernel.value("_task.id()")
    await kernel.ok("_task.first_run(timeout=30)")
    preview = await kernel.ok(f"%orch_delete _task {task_id[:8]}")
    assert preview.stdout.startswith(f"would delete 1 task ({task_id}) and 1 run; would kill")
    assert preview.stdout.rstrip().endswith("add --yes to delete")
    assert task_id in (await kernel.ok("%orch_tasks")).data[0]["text/plain"]
    deleted = await kernel.ok("%orch_delete _task --yes")
    assert deleted.stdout.startswith(f"deleted 1 task ({task_id}) and 1 run; killed first")
    listed = await kernel.ok("%orch_tasks --killed")
    assert task_id not in listed.data[0]["text/plain"]
    await kernel.ok(
        "try:\n    _task.refresh()\n    _gone = ''\nexcept Exception as exc:\n    _gone = str(exc)"
    )
    assert "404" in await kernel.value("_gone")


BAD_CELLS = [
    ("%%orchestrate\nprint(1)", "the following arguments are required: name"),
    ("%%orchestrate x --once --continuous\nprint(1)", "choose one of --once, --schedule"),
    ("%%orchestrate x --timezone UTC\nprint(1)", "--timezone goes with --schedule"),
    ("%%orchestrate x --continuous --timeout 3\nprint(1)", "--timeout goes with --once"),
    ("%%orchestrate x --wait\nprint(1)", "--wait needs a run"),
    ("%%orchestrate x --args '{}'\nprint(1)", "--args needs a run"),
    ("%%orchestrate x --once --args '[1]'\nprint(1)", "--args: a JSON object"),
    ("%%orchestrate x --once --args '{oops'\nprint(1)", "--args: not JSON"),
    ("%%orchestrate x --once --args $missing\nprint(1)", "--args $missing: no such variable"),
    ('%%orchestrate x --once --args \'{"a"\nprint(1)', "No closing quotation"),
    ("%%orchestrate x --nope\nprint(1)", "unrecognized arguments: --nope"),
    ("%%orchestrate x --once --timeout soon\nprint(1)", "argument --timeout: invalid int"),
    ("%%orchestrate x --file missing.txt\nprint(1)", "--file missing.txt: no such file"),
    ("%%orchestrate x --dir nowhere\nprint(1)", "--dir nowhere: no such folder"),
    ("%%orchestrate x\n\n", "the cell is empty"),
    ('%%orchestrate x --schedule "every day"\nprint(1)', "schedule: 'every day'"),
    ("%orch_kill", "the following arguments are required: task"),
    ("%orch_kill 00000000-0000-0000-0000-000000000000", "not found (404 Not Found)"),
    ("%orch_runs nope --limit few", "argument --limit: invalid int"),
    ("%orch_logs", "the following arguments are required: run"),
    ("%orch_tasks --every", "unrecognized arguments: --every"),
    ("%orch_tasks --limit many", "argument --limit: invalid int"),
    ("%orch_pause not-a-uuid", "no task has the id or name 'not-a-uuid'"),
    ("%orch_open", "the following arguments are required: task"),
    ("%orch_delete", "the following arguments are required: task"),
    ("%%orchestrate x --once\nif True:\nprint(1)", "line 2: expected an indented block"),
]


#: How many orchestrations the kernel's client sees.
UPLOADS = "len(__import__('jupyter_orch').Client().list_orchestrations())"


def updates_of(result: Execution) -> list[dict[str, Any]]:
    """The mime bundles that replaced a display in place (update_display_data)."""
    return [m["content"]["data"] for m in result.outputs if m["msg_type"] == "update_display_data"]


async def test_orchestrate_again_updates_the_task_instead_of_a_twin(
    start_kernel: StartKernel,
) -> None:
    kernel = await loaded(start_kernel)
    await kernel.ok('%%orchestrate again --schedule "0 0 1 1 *" --args \'{"n": 1}\'\nprint("v1")\n')
    task_id = await kernel.value("_task.id()")
    second = await kernel.ok(
        '%%orchestrate again --schedule "0 6 * * *" --timezone Asia/Tokyo --args \'{"n": 2}\''
        " --wait\n"
        "import jupyter_orch\n"
        "print('v2', jupyter_orch.task_args()['n'])\n"
    )
    assert second.stdout.startswith("v2 2\n") and "ended: success" in second.stdout
    summary = second.data[0]["text/plain"]
    assert summary.startswith("Updated again") and "At 06:00" in summary
    assert await kernel.value("_task.id()") == task_id  # the same task, not a twin
    history = await kernel.value("[sorted(h['changes']) for h in _task.history()[1:]]")
    assert history == [["json", "orch_id", "schedule", "timezone"]]
    assert await kernel.value("_task.to_dict()['timezone']") == "Asia/Tokyo"

    other = await kernel.ok('%%orchestrate again --schedule "0 0 1 1 *" --new\nprint("v3")\n')
    assert other.data[0]["text/plain"].startswith("Uploaded again")
    twin_id = await kernel.value("_task.id()")
    assert twin_id != task_id
    uploads = await kernel.value(UPLOADS)
    refused = usage_error(await kernel.run('%%orchestrate again --schedule "@daily"\nprint(4)\n'))
    assert "2 tasks are named again" in refused and task_id in refused and twin_id in refused
    kind = usage_error(await kernel.run("%%orchestrate again --continuous --args '{}'\nprint(5)"))
    assert "2 tasks are named again" in kind
    await kernel.ok(f"%orch_kill {twin_id[:8]}")
    kind = usage_error(await kernel.run("%%orchestrate again --continuous\nprint(5)"))
    assert "a scheduled task named again exists" in kind and "--new" in kind
    broken = usage_error(await kernel.run('%%orchestrate again --schedule "@daily"\nx = (1,\n'))
    assert "does not compile" in broken and "line 1" in broken
    # Nothing was uploaded for the refused cells.
    assert await kernel.value(UPLOADS) == uploads
    await kernel.ok(f"%orch_kill {task_id}")


async def test_wait_summary_shows_the_final_status_and_orch_open(
    start_kernel: StartKernel,
) -> None:
    kernel = await loaded(start_kernel)
    result = await kernel.ok("%%orchestrate fails --once --wait\nprint('bye')\nraise SystemExit(3)")
    assert status_of(result) == "started"  # shown at once, while the run goes on
    [final] = updates_of(result)  # then replaced in place
    [line] = [x for x in final["text/plain"].splitlines() if x.split()[0] == "status"]
    assert line.split()[1] == "failed"
    task_id = await kernel.value("_task.id()")

    opened = await kernel.ok("%orch_open fails")
    [bundle] = opened.data
    assert bundle["application/vnd.jupyter-orch.open+json"] == {"task_id": task_id, "name": "fails"}
    assert task_id in bundle["text/plain"]
    by_short = await kernel.ok(f"%orch_open {task_id[:8]}")
    assert by_short.data[0]["application/vnd.jupyter-orch.open+json"]["task_id"] == task_id
    runs = await kernel.ok(f"%orch_runs {task_id[:6]}")
    run_id = runs.data[0]["text/plain"].splitlines()[2].split()[1]
    logs = await kernel.ok(f"%orch_logs {run_id[:8]}")
    assert "bye" in logs.data[0]["text/plain"]
    missing = usage_error(await kernel.run("%orch_open nobody"))
    assert missing == "%orch_open: no task has the id or name 'nobody'"


async def test_bad_options_are_one_line_usage_errors(start_kernel: StartKernel) -> None:
    kernel = await loaded(start_kernel)
    for code, words in BAD_CELLS:
        message = usage_error(await kernel.run(code))
        magic = code.split()[0]
        assert message.startswith(f"{magic}: ") and words in message, (code, message)
    usage = usage_error(await kernel.run("%%orchestrate x --nope\nprint(1)"))
    assert "(usage: %%orchestrate [--once] [--schedule CRON]" in usage
    help_text = await kernel.ok("print(get_ipython().find_cell_magic('orchestrate').__doc__)")
    assert "--requirements REQS" in help_text.stdout
