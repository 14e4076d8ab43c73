"""Notebooks as orchestrations, through a real server and real runs: the checks at upload, a
notebook uploaded as it is, runs with parameters and rich outputs, failures, timeouts and kills,
the executed notebook served by `task/get_run_output`, and environments for notebooks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_orch.sdk.client import Client
from jupyter_orch.sdk.errors import NotFoundError
from jupyter_orch.sdk.resources import TaskRun
from jupyter_orch.server import ipython_layer
from jupyter_orch.server.packaging import env_key
from jupyter_orch.widgets import TasksPanel
from jupyter_orch.widgets.output import file_stem, lab_href

from .conftest import API, Api, make_zip, offline_builds, texts
from .test_packaging import make_wheel

PYTHON = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def cell(source: str, *tags: str, kind: str = "code") -> dict[str, Any]:
    """A cell of nbformat 4.5 (code cells without outputs)."""
    made: dict[str, Any] = {
        "cell_type": kind,
        "id": f"c{abs(hash((source, tags))) % 10**8}",
        "metadata": {"tags": list(tags)} if tags else {},
        "source": source,
    }
    if kind == "code":
        made.update(execution_count=None, outputs=[])
    return made


def notebook(*cells: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """A notebook document of `cells`, as JupyterLab saves one."""
    document = {
        "cells": list(cells),
        "metadata": PYTHON if metadata is None else metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1)


def assert_nothing_written(data_dir: Path) -> None:
    """No orchestration, archive, scratch folder or temporary upload is left behind."""
    for sub in ("orchestrations", "archives", "tmp"):
        assert list((data_dir / sub).iterdir()) == [], sub


async def refused(api: Api, files: dict[str, str | bytes]) -> str:
    """Upload `files` as a zip, expect a 400; the message."""
    response = await api.upload_raw(make_zip(files))
    assert response.code == 400, response.body
    answer = json.loads(response.body)
    assert answer["reason"] == "Invalid Archive"
    message: str = answer["message"]
    return message


# -- checks at upload ---------------------------------------------------------------------------


async def test_a_notebook_entrypoint_is_accepted(api: Api) -> None:
    orch_id = await api.upload({"app/main.ipynb": notebook(cell("print(1)")), "lib.py": ""})
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["entrypoint"] == "app/main.ipynb" and orch["status"] == "ready"


async def test_a_script_and_a_notebook_in_one_place_are_refused(api: Api, data_dir: Path) -> None:
    both = {"main.py": "print(1)\n", "main.ipynb": notebook(cell("print(1)"))}
    message = await refused(api, both)
    assert "both 'main.py' and 'main.ipynb'" in message
    assert_nothing_written(data_dir)
    # At different depths, the shallower wins, as between two main.py.
    orch_id = await api.upload({"main.py": "print(1)\n", "nb/main.ipynb": notebook()})
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["entrypoint"] == "main.py"


BROKEN = [
    ("not JSON", "{not json", "main.ipynb is not a notebook: not JSON"),
    ("a JSON list", "[1, 2]", "main.ipynb is not a notebook: a JSON list, not an object"),
    (
        "nbformat 3",
        json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}),
        "main.ipynb is nbformat 3: only nbformat 4 notebooks run",
    ),
    (
        "cells not a list",
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 3}),
        "main.ipynb is not a valid notebook: its 'cells' is not a list",
    ),
    (
        "a stream output of a number",
        notebook(
            {
                **cell("print(1)"),
                "outputs": [{"output_type": "stream", "name": "stdout", "text": 5}],
            }
        ),
        "main.ipynb is not a valid notebook: 5 is not valid under any of the given schemas "
        "(at cells[0].outputs[0].text)",
    ),
    (
        "a cell of an unknown type",
        notebook({**cell("x"), "cell_type": "bogus"}),
        "main.ipynb is not a valid notebook: the value is not valid under any of the given "
        "schemas (at cells[0])",
    ),
    ("not UTF-8", b"\xff\xfe{}", "main.ipynb is not a notebook: not UTF-8 text"),
]


@pytest.mark.parametrize(("label", "content", "message"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_an_invalid_notebook_is_refused_with_nbformats_reason(
    api: Api, data_dir: Path, label: str, content: str | bytes, message: str
) -> None:
    answer = await refused(api, {"main.ipynb": content})
    assert answer.startswith(message), answer
    assert len(answer) <= 400, answer  # nbformat's long quotes of the document are cut
    assert_nothing_written(data_dir)


async def test_a_notebook_without_cell_ids_or_kernel_is_accepted(api: Api) -> None:
    plain = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    document = {"cells": [{**plain, "source": "1"}], "metadata": {}, "nbformat": 4}
    for minor in (4, 5):  # 4.5 wants cell ids; nbformat only warns, and the executor adds them
        await api.upload({"main.ipynb": json.dumps({**document, "nbformat_minor": minor})})


async def test_a_notebook_of_another_kernel_is_refused(api: Api, data_dir: Path) -> None:
    r_kernel = {
        "kernelspec": {"display_name": "R 4.3", "language": "R", "name": "ir"},
        "language_info": {"name": "R"},
    }
    message = await refused(api, {"main.ipynb": notebook(cell("1"), metadata=r_kernel)})
    assert message == (
        "main.ipynb is a notebook of the 'R 4.3' kernel (language R): only Python notebooks "
        "run as orchestrations"
    )
    julia = {"language_info": {"name": "julia"}}
    message = await refused(api, {"main.ipynb": notebook(cell("1"), metadata=julia)})
    assert "'julia' kernel" in message
    assert_nothing_written(data_dir)


async def test_a_notebook_uploaded_as_it_is_meets_the_same_checks(api: Api, data_dir: Path) -> None:
    r_kernel = {"kernelspec": {"display_name": "R", "language": "R", "name": "ir"}}
    for content in (notebook(cell("1"), metadata=r_kernel), '{"nbformat": 4, "cells": 3}'):
        response = await api.upload_raw(content.encode())
        assert response.code == 400, response.body
        assert json.loads(response.body)["message"].startswith("main.ipynb is ")
    assert_nothing_written(data_dir)


# -- runs ----------------------------------------------------------------------------------------

PNG = (  # a 1x1 image
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)
REPORT = notebook(
    cell("# A report", kind="markdown"),
    cell('region = "us"\nlimit = 10', "parameters"),
    cell("print('region', region, 'limit', limit)"),
    cell(
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(data=base64.b64decode({PNG!r})))"
    ),
    cell(
        "class Table:\n"
        "    def _repr_html_(self):\n"
        "        return '<table><tr><td>1</td></tr></table>'\n\n"
        "Table()"
    ),
)
ENDED = {"success", "failed", "timed_out", "killed"}


async def run_notebook(api: Api, document: str, args: Any = None, **extra: Any) -> tuple[str, str]:
    """Upload `document` as it is, start a run-once task; the task's and its run's ids."""
    response = await api.upload_raw(document.encode())
    assert response.code == 202, response.body
    task_id = await api.run_once(json.loads(response.body)["id"], args, **extra)
    task = await api.wait_task(task_id, {"started"} | ENDED)
    return task_id, task["last_runs"][0]["run_id"]


async def output(api: Api, run_id: str, status: int = 200) -> Any:
    """`GET task/get_run_output?id=`: the executed notebook, validated by nbformat (or, for
    another status, the error's message)."""
    response = await api.fetch(
        API, "task", "get_run_output", params={"id": run_id}, raise_error=False
    )
    assert response.code == status, response.body
    if status != 200:
        return json.loads(response.body)["message"]
    assert response.headers["Content-Type"].startswith("application/json")
    document = nbformat.reads(response.body.decode("utf-8"), as_version=4)
    nbformat.validate(document)
    return document


async def test_a_notebook_runs_with_its_parameters_and_keeps_rich_outputs(
    api: Api, data_dir: Path
) -> None:
    task_id, run_id = await run_notebook(api, REPORT, {"region": "eu", "limit": 3})
    task = await api.wait_task(task_id, ENDED)
    assert task["status"] == "success", await api.logs(run_id)
    logs = texts(await api.logs(run_id))
    assert "region eu limit 3" in logs
    assert logs[0] == '[cell 1/5] region = "us"' and logs[-1].startswith("[end] success")
    document = await output(api, run_id)
    assert document.metadata.jupyter_orch.status == "success"
    assert document.metadata.jupyter_orch.run_id == run_id
    code = [c for c in document.cells if c.cell_type == "code"]
    assert "injected-parameters" in code[1].metadata.tags
    assert code[2].outputs[0].text == "region eu limit 3\n"
    [image] = code[3].outputs
    assert image.output_type == "display_data" and image.data["image/png"] == PNG
    [table] = code[4].outputs
    assert table.output_type == "execute_result" and "<table>" in table.data["text/html"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4, 5]


async def test_a_failing_cell_fails_the_run_and_the_notebook_stops_there(api: Api) -> None:
    failing = notebook(
        cell("print('before')"), cell("def f():\n    return 1 / 0\n\nf()"), cell("print('after')")
    )
    task_id, run_id = await run_notebook(api, failing)
    assert (await api.wait_task(task_id, ENDED))["status"] == "failed"
    run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert (run["status"], run["exit_code"]) == ("failure", 1)
    logs = texts(await api.logs(run_id))
    assert "before" in logs and "after" not in logs
    assert "ZeroDivisionError: division by zero" in logs  # the traceback is in the log
    assert any("return 1 / 0" in line for line in logs)
    document = await output(api, run_id)
    assert document.metadata.jupyter_orch.status == "failure"
    first, broken, never = document.cells
    assert first.outputs[0].text == "before\n"
    [error] = broken.outputs
    assert (error.output_type, error.ename) == ("error", "ZeroDivisionError")
    assert never.outputs == [] and never.execution_count is None


SLEEPER = notebook(
    cell("print('first')"),
    cell("import time\nprint('sleeping', flush=True)\ntime.sleep(60)"),
    cell("print('never')"),
)


def assert_stopped_in_the_second_cell(document: Any) -> None:
    """The copy holds the first cell's output, the second's up to its interruption, and
    nothing of the third."""
    assert document.metadata.jupyter_orch.status == "terminated"
    first, sleeping, never = document.cells
    assert first.outputs[0].text == "first\n" and first.execution_count == 1
    assert sleeping.outputs[0].text == "sleeping\n"
    assert sleeping.outputs[-1].ename == "Terminated"
    assert never.outputs == [] and never.execution_count is None


async def test_a_cell_past_the_timeout_ends_the_run_and_keeps_the_copy(api: Api) -> None:
    task_id, run_id = await run_notebook(api, SLEEPER, timeout=1)
    assert (await api.wait_task(task_id, ENDED))["status"] == "timed_out"
    run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "timed_out"
    logs = texts(await api.logs(run_id))
    assert "jupyter_orch: run timed out after 1 s" in logs
    assert logs[-1].startswith("[end] terminated: ran 2 of 3 cells")
    assert_stopped_in_the_second_cell(await output(api, run_id))


async def test_output_is_live_while_a_run_goes_on_and_a_kill_stops_it(api: Api) -> None:
    task_id, run_id = await run_notebook(api, SLEEPER)
    followed: list[dict[str, Any]] = []
    pending = b""

    def chunk(data: bytes) -> None:
        nonlocal pending
        *lines, pending = (pending + data).split(b"\n")
        followed.extend(json.loads(line) for line in lines if line.strip())

    following = asyncio.ensure_future(
        api.fetch(API, "task", "follow_logs", params={"id": run_id}, streaming_callback=chunk)
    )
    deadline = time.monotonic() + 60
    while not any(m.get("line", "").endswith(" stdout F sleeping") for m in followed):
        assert time.monotonic() < deadline and not following.done(), followed
        await asyncio.sleep(0.05)
    shown = texts([m["line"] for m in followed if "line" in m])
    assert shown[:3] == ["[cell 1/3] print('first')", "first", "[cell 2/3] import time"]
    run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "running"
    so_far = await output(api, run_id)  # the copy so far: written as the second cell started
    assert so_far.metadata.jupyter_orch.status == "running"
    assert so_far.cells[0].outputs[0].text == "first\n"
    assert so_far.cells[1].metadata.jupyter_orch == {"status": "running"}

    await api.ok("task/kill", {"id": task_id}, status=202)
    assert (await api.wait_task(task_id, ENDED))["status"] == "killed"
    await following
    assert followed[-1] == {"end": True, "status": "killed", "next": followed[-1]["next"]}
    run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "killed"
    assert_stopped_in_the_second_cell(await output(api, run_id))


async def test_runs_without_a_notebook_output_answer_404_saying_why(api: Api) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert await output(api, unknown, 404) == f"task run {unknown} not found"
    response = await api.fetch(
        API, "task", "get_run_output", params={"id": "nope"}, raise_error=False
    )
    assert response.code == 400

    script = await api.run_to_end({"main.py": "print('hi')\n"})
    run_id = script["last_runs"][0]["run_id"]
    assert await output(api, run_id, 404) == (
        f"run {run_id} ran a script (main.py): it has no notebook output"
    )

    # A notebook run that has not written its copy yet: here an `IPython` of the archive's
    # own, first on the path, holds the executor up before its first write.
    stalled = {
        "main.ipynb": notebook(cell("print(1)")),
        "IPython/__init__.py": "import time\nprint('stalled', flush=True)\ntime.sleep(60)\n",
    }
    task_id = await api.run_once(await api.upload(stalled))
    task = await api.wait_task(task_id, {"started"})
    run_id = task["last_runs"][0]["run_id"]
    await api.wait_for_log(run_id, "stalled")
    assert await output(api, run_id, 404) == (
        f"run {run_id} has not written its notebook yet (it is starting)"
    )
    await api.ok("task/kill", {"id": task_id}, status=202)
    await api.wait_task(task_id, ENDED)
    assert await output(api, run_id, 404) == (
        f"run {run_id} ended (killed) without writing its notebook: see its log"
    )


# -- environments ---------------------------------------------------------------------------------


@pytest.fixture
def wheels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jp_environ: None) -> Path:
    """Builds install from a folder of wheels only: orchdemo 1.0, a ptyprocess older than the
    server's (a package IPython needs), and an `ipython` 99.0 that is not the real one."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name, version in (("orchdemo", "1.0"), ("ptyprocess", "0.0.1"), ("ipython", "99.0")):
        make_wheel(folder, name, version)
    offline_builds(monkeypatch, folder)
    return folder


async def ready(api: Api, files: dict[str, str | bytes]) -> tuple[dict[str, Any], str]:
    """Upload, wait for packaging; the orchestration and its build log."""
    orch = await api.wait_orch(await api.upload(files), {"ready", "error"})
    assert orch["status"] == "ready", orch
    log: str = (await api.ok("orchestration/get_build_log", {"id": orch["id"]}))["log"]
    return orch, log


SHOW_ENV = (
    "import importlib.util, sys\n"
    "import orchdemo, ptyprocess\n"
    "print('prefix', sys.prefix)\n"
    "print('orchdemo', orchdemo.__version__, 'ptyprocess', ptyprocess.__version__)\n"
    "spec = importlib.util.find_spec('IPython')\n"
    "print('IPython', spec.origin if spec else None)\n"
)
REQUIREMENTS = "orchdemo==1.0\nptyprocess==0.0.1\n"


@pytest.mark.timeout(240)
async def test_a_notebooks_environment_gets_the_servers_ipython_under_its_own_packages(
    wheels: Path, api: Api, data_dir: Path, jp_serverapp: Any
) -> None:
    # Isolated environments (OrchApp.isolated_environments): a layered one sees all the
    # server's packages, IPython among them, whatever the entrypoint.
    jp_serverapp.web_app.settings["jupyter_orch.service"].packager.isolated = True
    files = {"main.ipynb": notebook(cell(SHOW_ENV)), "requirements.txt": REQUIREMENTS}
    orch, log = await ready(api, files)
    assert "# ipython: not in requirements.txt; a notebook runs in IPython, so the server's" in log
    task = await api.wait_task(await api.run_once(orch["id"]), ENDED)
    run_id = task["last_runs"][0]["run_id"]
    assert task["status"] == "success", await api.logs(run_id)
    shown = texts(await api.logs(run_id))
    env = data_dir / "envs" / orch["image_path"].removeprefix("env:")
    assert f"prefix {env}" in shown
    # The environment's pins win over what the server's IPython brings along.
    assert "orchdemo 1.0 ptyprocess 0.0.1" in shown
    assert f"IPython {data_dir}/envs/.ipython/IPython/__init__.py" in shown
    assert (await output(api, run_id)).metadata.jupyter_orch.status == "success"
    again, again_log = await ready(api, files)  # another notebook, the same requirements
    assert again["image_path"] == orch["image_path"]
    assert again_log.startswith("# ipython: not in requirements.txt") and "reused" in again_log

    # A script with the same requirements has an environment of its own, without IPython.
    script, script_log = await ready(api, {"main.py": SHOW_ENV, "requirements.txt": REQUIREMENTS})
    assert script["image_path"] != orch["image_path"] and "ipython" not in script_log
    task = await api.wait_task(await api.run_once(script["id"]), ENDED)
    assert "IPython None" in texts(await api.logs(task["last_runs"][0]["run_id"]))


@pytest.mark.timeout(240)
async def test_requirements_naming_ipython_install_their_own(wheels: Path, api: Api) -> None:
    requirements = "orchdemo==1.0\nIPython==99.0\n"
    notebook_orch, log = await ready(
        api, {"main.ipynb": notebook(cell("1")), "requirements.txt": requirements}
    )
    assert "# ipython:" not in log
    script, script_log = await ready(api, {"main.py": "", "requirements.txt": requirements})
    assert script["image_path"] == notebook_orch["image_path"]  # one environment for both
    assert "reused" in script_log


def test_which_environments_get_the_servers_ipython() -> None:
    assert ipython_layer.wanted(["orchdemo==1.0"], notebook=True)
    assert not ipython_layer.wanted(["orchdemo==1.0"], notebook=False)
    for line in ("ipython", "ipython[all]>=8", "ipython==8.1; python_version > '3'"):
        assert not ipython_layer.wanted([line], notebook=True), line
    assert ipython_layer.wanted(["ipython-pygments-lexers"], notebook=True)
    lines = ["orchdemo==1.0"]
    assert env_key(lines) != env_key(lines, layered=True)


def test_the_layer_links_the_servers_ipython_and_what_it_needs(tmp_path: Path) -> None:
    import IPython
    import traitlets

    layer = ipython_layer.link_layer(tmp_path)
    assert layer == tmp_path / ".ipython" and layer.is_symlink()
    assert (layer / "IPython").resolve() == Path(IPython.__file__).parent.resolve()
    assert (layer / "traitlets").resolve() == Path(traitlets.__file__).parent.resolve()
    assert any(
        p.name.startswith("ipython-") and p.name.endswith(".dist-info") for p in layer.iterdir()
    )
    assert not (layer / "tornado").exists()  # only what IPython needs
    folder = os.readlink(layer)
    (tmp_path / ".ipython-0000").mkdir()  # an earlier server's
    assert ipython_layer.link_layer(tmp_path) == layer and os.readlink(layer) == folder
    ipython_layer.remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ipython", folder]
    env = tmp_path / "env"
    (env / "lib" / "python3.x" / "site-packages" / "IPython").mkdir(parents=True)
    assert not ipython_layer.has_own(env)
    (env / "lib" / "python3.x" / "site-packages" / "IPython" / "__init__.py").touch()
    assert ipython_layer.has_own(env)


# -- SDK and command line ------------------------------------------------------------------------


async def test_the_sdk_and_the_command_line_upload_run_and_fetch_a_notebook(
    api: Api, jp_serverapp: Any, tmp_path: Path
) -> None:
    report = tmp_path / "report.ipynb"
    report.write_text(REPORT, encoding="utf-8")
    url, token = jp_serverapp.connection_url, jp_serverapp.identity_provider.token
    client = Client(url=url, token=token)

    def through_the_sdk() -> tuple[Any, TaskRun, str]:
        orch = client.upload_orchestration(path=report)
        run = orch.run_once("report", json_args={"region": "eu"}).first_run(60).wait(60)
        script = client.upload_orchestration(path=write_script(tmp_path))
        script_run = script.run_once("script").first_run(60).wait(60)
        with pytest.raises(NotFoundError) as refused:
            script_run.output_notebook()
        return orch, run, refused.value.message

    try:
        orch, run, refused = await asyncio.to_thread(through_the_sdk)
        executed = await asyncio.to_thread(run.output_notebook)
    finally:
        client.close()
    assert (orch.file_name(), orch.to_dict()["entrypoint"]) == ("report.zip", "main.ipynb")
    assert run.known_status() == "success"
    assert isinstance(executed, nbformat.NotebookNode)
    assert executed.cells[3].outputs[0].text == "region eu limit 10\n"  # after the injected
    assert refused.endswith("ran a script (main.py): it has no notebook output")

    cli = [sys.executable, "-m", "jupyter_orch.cli", "--url", url, "--token", token]
    uploaded = await command(*cli[:3], "upload", str(report), "--json", *cli[3:])
    assert json.loads(uploaded.stdout)["sha"] == orch.sha()
    printed = await command(*cli[:3], "output", run.id(), *cli[3:])
    assert nbformat.reads(printed.stdout, as_version=4) == executed
    written = await command(
        *cli[:3], "output", run.id(), "-o", str(tmp_path / "out.ipynb"), *cli[3:]
    )
    assert written.stderr == f"wrote {tmp_path / 'out.ipynb'}\n"
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4) == executed
    missing = await command(*cli[:3], "output", str(uuid.UUID(int=7)), *cli[3:], code=3)
    assert missing.stderr.startswith(f"jupyter orch: task run {uuid.UUID(int=7)} not found")


def write_script(folder: Path) -> Path:
    """A one-line script in `folder`."""
    script = folder / "hello.py"
    script.write_text("print('hello')\n", encoding="utf-8")
    return script


async def command(*argv: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; expect exit `code`."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == code, (out, err)
    return subprocess.CompletedProcess(argv, code, out.decode(), err.decode())


# -- the tasks panel -------------------------------------------------------------------------------


async def test_the_panels_open_output_saves_the_copy_beside_the_notebook(
    api: Api, jp_serverapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the folder of the notebook the panel is in
    task_id, run_id = await run_notebook(api, REPORT, name="weekly report")
    assert (await api.wait_task(task_id, ENDED))["status"] == "success"
    script_task = (await api.run_to_end({"main.py": "print(1)\n"}))["id"]
    client = Client(url=jp_serverapp.connection_url, token=jp_serverapp.identity_provider.token)
    panel = TasksPanel(client=client, refresh_seconds=3600)

    async def click() -> str:
        panel.click("open_output")
        assert await asyncio.to_thread(panel.wait_idle, 60)
        return panel.output_html

    try:
        panel.select_task(task_id)
        assert await asyncio.to_thread(panel.wait_idle, 60)
        assert panel.selected_run == run_id and panel._output_box.layout.display == ""
        saved = tmp_path / f"weekly-report-{run_id[:8]}.ipynb"
        assert saved.name in await click()
        assert panel.status_text == f"Saved the output of run {run_id[:8]}: open it with the link."
        copy = nbformat.read(saved, as_version=4)
        nbformat.validate(copy)
        assert copy.metadata.jupyter_orch.run_id == run_id
        await click()  # the same run's copy again: replaced, not doubled
        assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [saved.name]
        saved.write_text("my own notes", encoding="utf-8")  # not a copy of the run's: kept
        assert f"weekly-report-{run_id[:8]}-2.ipynb" in await click()
        assert saved.read_text(encoding="utf-8") == "my own notes"

        panel.select_task(script_task)
        assert await asyncio.to_thread(panel.wait_idle, 60)
        assert panel._output_box.layout.display == "none" and panel.output_html == ""
        panel.click("open_output")
        assert await asyncio.to_thread(panel.wait_idle, 60)
        assert panel.status_text == "Select a run of a notebook first."
    finally:
        await asyncio.to_thread(panel.close)
        client.close()


def test_an_output_link_opens_the_copy_in_jupyterlab(tmp_path: Path) -> None:
    api_url = "http://127.0.0.1:8888/user/alice/orch"
    copy = tmp_path / "reports" / "weekly report-1a2b3c4d.ipynb"
    assert lab_href(copy, api_url, tmp_path) == (
        "/user/alice/lab/tree/reports/weekly%20report-1a2b3c4d.ipynb"
    )
    assert lab_href(copy, api_url, tmp_path / "elsewhere") is None
    assert lab_href(copy, api_url, None) is None
    assert file_stem("../../etc/passwd", "1a2b3c4d-0000") == "etc-passwd-1a2b3c4d"
    assert file_stem(None, "1a2b3c4d-0000") == "run-1a2b3c4d"
