"""The notebook executor (`python -m jupyter_orch.nbrun`), run as a run runs it: a subprocess
with the run's id and arguments file in its environment, on notebooks built here."""

from __future__ import annotations

import ast
import base64
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from jupyter_orch.nbrun import parameters_source, render_literal

ROOT = Path(__file__).resolve().parent.parent
TIMING_KEYS = (
    "iopub.status.busy",
    "iopub.execute_input",
    "shell.execute_reply",
    "iopub.status.idle",
)


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


@dataclass
class Done:
    """A finished executor: its exit status, its log streams and the executed copy."""

    code: int
    stdout: str
    stderr: str
    notebook: Any

    def code_cells(self) -> list[Any]:
        return [cell for cell in self.notebook.cells if cell.cell_type == "code"]


def build(folder: Path, *cells: Any, minor: int | None = None, **metadata: Any) -> Path:
    """Write `nb.ipynb` in `folder`; strings are code cells."""
    notebook = new_notebook(metadata=metadata)
    notebook.cells = [new_code_cell(c) if isinstance(c, str) else c for c in cells]
    if minor is not None:
        notebook.nbformat_minor = minor
        if minor < 5:
            for cell in notebook.cells:
                del cell["id"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nb.ipynb"
    nbformat.write(notebook, path)
    return path


def run_env(folder: Path, args: dict[str, Any] | None) -> dict[str, str]:
    """The environment a run gives its process: run id, arguments file, our package."""
    args_file = folder / "args.json"
    args_file.write_text(json.dumps(args or {}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(JUPYTER_ORCH_RUN_ID="run-1", JUPYTER_ORCH_ARGS_FILE=str(args_file))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def command(path: Path) -> list[str]:
    return [sys.executable, "-u", "-m", "jupyter_orch.nbrun", path.name, "--output", "out.ipynb"]


def read_output(folder: Path) -> Any:
    """The executed copy, checked against the nbformat schema."""
    notebook = nbformat.read(folder / "out.ipynb", as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    return notebook


def succeeds(folder: Path, *cells: Any) -> Done:
    """Run a notebook of these cells, which must end with success."""
    done = execute(build(folder, *cells))
    assert done.code == 0, done.stderr
    return done


def execute(path: Path, args: dict[str, Any] | None = None) -> Done:
    """Run the executor on `path` to its end."""
    done = subprocess.run(
        command(path),
        cwd=path.parent,
        env=run_env(path.parent, args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr, read_output(path.parent))


def stream_text(cell: Any, name: str = "stdout") -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


# Parameters


ARGS = {
    "text": 'it\'s "quoted"\n',
    "count": 3,
    "ratio": 0.25,
    "on": True,
    "off": False,
    "nothing": None,
    "items": [1, "two", None, [False]],
    "table": {"a": 1, "b": [True, None]},
    "bad-key": 1,
    "class": 2,
    "2nd": 3,
}


def test_arguments_are_injected_after_the_parameters_cell(tmp_path: Path) -> None:
    """Each identifier key becomes a variable with its JSON value; other keys are comments."""
    parameters = new_code_cell("text = 'default'\ncount = 0", metadata={"tags": ["parameters"]})
    check = (
        "import jupyter_orch\n"
        "print(repr((text, count, ratio, on, off, nothing, items, table)))\n"
        "print(sorted(jupyter_orch.task_args()))"
    )
    done = execute(build(tmp_path, "first = 1", parameters, check), ARGS)
    assert done.code == 0, done.stderr
    cells = done.code_cells()
    assert [cell.metadata.get("tags") for cell in cells] == [
        None,
        ["parameters"],
        ["injected-parameters"],
        None,
    ]
    injected = cells[2]
    assert injected.id and injected.id not in {cell.id for cell in cells[:2] + cells[3:]}
    assert "bad-key = " not in injected.source and "class = " not in injected.source
    assert "# skipped 'bad-key'" in injected.source and "# skipped '2nd'" in injected.source
    assert "on = True" in injected.source and "nothing = None" in injected.source
    printed = stream_text(cells[3]).splitlines()
    assert ast.literal_eval(printed[0]) == tuple(
        ARGS[k] for k in ("text", "count", "ratio", "on", "off", "nothing", "items", "table")
    )
    assert ast.literal_eval(printed[1]) == sorted(ARGS)


def test_without_a_parameters_cell_the_arguments_come_first(tmp_path: Path) -> None:
    """papermill's rule: with no cell tagged `parameters`, the injected cell is the first."""
    done = execute(build(tmp_path, new_markdown_cell("# Title"), "print(count)"), {"count": 7})
    assert done.code == 0, done.stderr
    first = done.notebook.cells[0]
    assert first.metadata.tags == ["injected-parameters"]
    assert first.execution_count == 1
    assert stream_text(done.code_cells()[1]) == "7\n"


def test_no_arguments_inject_nothing(tmp_path: Path) -> None:
    done = execute(build(tmp_path, "x = 1"), {})
    assert done.code == 0, done.stderr
    assert len(done.notebook.cells) == 1


def test_literals_render_every_json_value() -> None:
    """The rendered source evaluates, as a literal, to the value; non-JSON values are refused."""
    values: list[Any] = [
        None,
        True,
        False,
        0,
        -12,
        10**30,
        1.5,
        -0.0,
        1e300,
        "",
        "a'b\"c\\\n\t\u00e9\U0001f600",
        [],
        {},
        [1, [2, [3, {"k": None}]]],
        {"nested": {"list": [True, "x"]}, "": 0},
    ]
    for value in values:
        assert ast.literal_eval(render_literal(value)) == value
    rendered = [render_literal(v) for v in (math.inf, -math.inf, math.nan)]
    assert rendered == ["float('inf')", "float('-inf')", "float('nan')"]
    assert math.isnan(eval(rendered[2]))
    for bad in [(1, 2), {1, 2}, b"x", object()]:
        with pytest.raises(TypeError):
            render_literal(bad)
    assert parameters_source({"x": 1}) == "# Parameters: the task's arguments\nx = 1"


# Outputs


def test_rich_outputs_are_recorded_as_a_kernel_records_them(tmp_path: Path) -> None:
    """Images, HTML, markdown and `_repr_html_` objects: display_data and execute_result with
    IPython's own mime bundles; each is one line in the log."""
    png = tiny_png()
    cells = [
        "from IPython.display import HTML, Image, Markdown, display\n"
        f"display(Image(data={png!r}))\n"
        "display(HTML('<b>bold</b>'), Markdown('*md*'))",
        "class Table:\n"
        "    def _repr_html_(self):\n"
        "        return '<table><tr><td>1</td></tr></table>'\n"
        "    def __repr__(self):\n"
        "        return 'Table(1)'\n"
        "Table()",
        "40 + 2",
        "None",
        "7;",
    ]
    done = succeeds(tmp_path, *cells)
    shown, table, number, nothing, quiet = done.code_cells()
    image, html, markdown = shown.outputs
    assert image.output_type == "display_data"
    assert base64.b64decode(image.data["image/png"]) == png
    assert html.data["text/html"] == "<b>bold</b>"
    assert markdown.data["text/markdown"] == "*md*"
    (result,) = table.outputs
    assert result.output_type == "execute_result" and result.execution_count == 2
    assert result.data == {
        "text/html": "<table><tr><td>1</td></tr></table>",
        "text/plain": "Table(1)",
    }
    assert number.outputs[0].data == {"text/plain": "42"}
    assert number.outputs[0].execution_count == 3
    assert nothing.outputs == [] and quiet.outputs == []
    log = done.stdout.splitlines()
    assert f"[display] image/png ({len(png)} B): <IPython.core.display.Image object>" in log
    assert "[display] text/html (11 B): <IPython.core.display.HTML object>" in log
    assert "[result] text/html (34 B): Table(1)" in log
    assert "[result] 42" in log


def test_a_dataframe_is_an_html_result(tmp_path: Path) -> None:
    done = execute(build(tmp_path, "import pandas as pd\npd.DataFrame({'a': [1, 2]})"))
    assert done.code == 0, done.stderr
    (result,) = done.code_cells()[0].outputs
    assert "<table" in result.data["text/html"] and "text/plain" in result.data


def test_display_updates_and_clear_output(tmp_path: Path) -> None:
    """`update_display` rewrites the output of its display id, in any cell; `clear_output`
    empties the cell now, or (wait=True) when the next output comes."""
    cells = [
        "from IPython.display import clear_output, display, update_display\n"
        "handle = display('first', display_id=True)",
        "handle.update('second')\nprint('shown')",
        "print('gone')\nclear_output()\nprint('kept')",
        "print('old')\nclear_output(wait=True)\nprint('new')",
    ]
    done = succeeds(tmp_path, *cells)
    shown, updater, cleared, waited = done.code_cells()
    assert shown.outputs[0].data == {"text/plain": "'second'"}
    assert stream_text(updater) == "shown\n"
    assert stream_text(cleared) == "kept\n"
    assert stream_text(waited) == "new\n"


def test_streams_are_merged_and_logged_live_in_order(tmp_path: Path) -> None:
    """A cell's marker line, then its lines, in order; consecutive text of one stream is one
    output; the log has the executor's lines, the notebook only the cell's."""
    cells = [
        "import sys\nprint('a')\nprint('b', end='')\nprint('c')\n"
        "print('oops', file=sys.stderr)\nprint('d')",
        "for i in range(3):\n    print(i)",
    ]
    done = succeeds(tmp_path, *cells)
    lines = done.stdout.splitlines()
    cell_1, cell_2 = "[cell 1/2] import sys", "[cell 2/2] for i in range(3):"
    assert lines[:7] == [cell_1, "a", "bc", "d", cell_2, "0", "1"]
    assert lines[7] == "2" and lines[8].startswith("[end] success: ran 2 of 2 cells in ")
    assert done.stderr == "oops\n"
    first, second = done.code_cells()
    assert [(o.name, o.text) for o in first.outputs] == [
        ("stdout", "a\nbc\n"),
        ("stderr", "oops\n"),
        ("stdout", "d\n"),
    ]
    assert [(o.name, o.text) for o in second.outputs] == [("stdout", "0\n1\n2\n")]


# Failures and exits


def test_a_failing_cell_stops_the_notebook(tmp_path: Path) -> None:
    """The error is recorded (plain text traceback lines) and logged; later cells keep no
    outputs and no count; exit 1."""
    done = execute(build(tmp_path, "x = 1", "print('before')\n1 / 0", "print('never')"))
    assert done.code == 1
    _, failed, never = done.code_cells()
    assert stream_text(failed) == "before\n"
    error = failed.outputs[-1]
    assert error.output_type == "error"
    assert (error.ename, error.evalue) == ("ZeroDivisionError", "division by zero")
    assert all(isinstance(line, str) and "\n" not in line for line in error.traceback)
    assert not any("\x1b" in line for line in error.traceback)
    assert "1 / 0" in "\n".join(error.traceback)
    assert "ZeroDivisionError: division by zero" in done.stderr and "Cell In[2]" in done.stderr
    assert (never.execution_count, never.outputs) == (None, [])
    assert "never" not in done.stdout
    assert "[end] failure: ran 2 of 3 cells" in done.stdout
    status = done.notebook.metadata.jupyter_orch
    assert (status.status, status.exit_code) == ("failure", 1)


def test_a_syntax_error_is_a_failure(tmp_path: Path) -> None:
    done = execute(build(tmp_path, "x = (", "print('never')"))
    assert done.code == 1
    error = done.code_cells()[0].outputs[-1]
    assert error.ename == "SyntaxError"
    assert "SyntaxError" in done.stderr
    assert done.code_cells()[1].execution_count is None


def test_a_cell_tagged_raises_exception_does_not_stop_the_notebook(tmp_path: Path) -> None:
    risky = new_code_cell("raise ValueError('expected')", metadata={"tags": ["raises-exception"]})
    done = execute(build(tmp_path, risky, "print('after')"))
    assert done.code == 0, done.stderr
    assert done.code_cells()[0].outputs[0].ename == "ValueError"
    assert stream_text(done.code_cells()[1]) == "after\n"


@pytest.mark.parametrize(
    ("call", "code"),
    [("exit()", 0), ("import sys; sys.exit(0)", 0), ("quit(3)", 3), ("import sys; sys.exit(4)", 4)],
)
def test_exit_ends_the_notebook_with_its_code(tmp_path: Path, call: str, code: int) -> None:
    """`exit()` / `sys.exit(n)` end the notebook where they run, as they end a script."""
    done = execute(build(tmp_path, "print('ran')", call, "print('never')"))
    assert done.code == code, done.stderr
    _, exiting, never = done.code_cells()
    assert exiting.execution_count == 2 and never.execution_count is None
    if code:
        assert [(o.ename, o.evalue) for o in exiting.outputs] == [("SystemExit", str(code))]
        assert done.notebook.metadata.jupyter_orch.status == "failure"
    else:
        assert exiting.outputs == []
        assert done.notebook.metadata.jupyter_orch.status == "success"
    assert "To exit" not in done.stderr


def test_package_magics_are_refused(tmp_path: Path) -> None:
    """`%pip install` in a run fails the cell, saying packages belong in requirements.txt."""
    for magic in ("%pip install requests", "%conda install numpy", "%%pip\ninstall x"):
        done = execute(build(tmp_path, magic, "print('never')"))
        assert done.code == 1
        error = done.code_cells()[0].outputs[0]
        assert error.ename == "UsageError"
        assert "requirements.txt" in error.evalue and magic.split()[0].lstrip("%") in error.evalue
        assert "requirements.txt" in done.stderr


def test_a_notebook_that_cannot_run_exits_2(tmp_path: Path) -> None:
    """Another language, a file that is not JSON, an output that cannot be written: a one-line
    reason on stderr and exit status 2, before any cell runs."""
    kernelspec = {"name": "ir", "language": "R", "display_name": "R"}
    other = build(tmp_path / "r", "x <- 1", kernelspec=kernelspec)
    broken = tmp_path / "broken" / "nb.ipynb"
    broken.parent.mkdir()
    broken.write_text("{not json", encoding="utf-8")
    blocked = build(tmp_path / "blocked", "print('never')")
    (blocked.parent / "out.ipynb").mkdir()  # the output's name is taken by a folder
    for path, reason in [(other, "R notebook"), (broken, "cannot read"), (blocked, "cannot write")]:
        done = subprocess.run(
            command(path),
            cwd=path.parent,
            env=run_env(path.parent, {}),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("jupyter_orch.nbrun: ") and reason in done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr


# Magics and environment


def test_shell_commands_and_magics_work(tmp_path: Path) -> None:
    cells = [
        "!echo from shell",
        "%%bash\necho from bash\necho bash error >&2",
        "%time y = 1",
        "%%timeit -n1 -r1\nsum(range(10))",
        "import asyncio\nawait asyncio.sleep(0)\nprint('awaited')",
    ]
    done = succeeds(tmp_path, *cells)
    shell, bash, timed, timeit, awaited = done.code_cells()
    assert stream_text(shell) == "from shell\n"
    assert stream_text(bash) == "from bash\n" and stream_text(bash, "stderr") == "bash error\n"
    assert "Wall time" in stream_text(timed)
    assert "per loop" in stream_text(timeit)
    assert stream_text(awaited) == "awaited\n"


def test_cells_run_in_the_notebooks_folder_as_main(tmp_path: Path) -> None:
    """The notebook's folder is the working directory and importable; `__name__` is
    `__main__`; `sys.argv` names the notebook."""
    folder = tmp_path / "orchestration"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 'helped'\n", encoding="utf-8")
    cell = "import os, sys, helper\nprint(os.getcwd(), __name__, sys.argv, helper.VALUE)"
    path = build(folder, cell)
    done = subprocess.run(
        [sys.executable, "-u", "-m", "jupyter_orch.nbrun", str(path), "--output", "out.ipynb"],
        cwd=tmp_path,
        env=run_env(tmp_path, {}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    notebook = read_output(tmp_path)  # --output is relative to where the executor started
    assert stream_text(notebook.cells[0]) == f"{folder} __main__ ['nb.ipynb'] helped\n"


@pytest.mark.parametrize("magic", ["", "%matplotlib inline\n"])
def test_matplotlib_figures_become_png_outputs(tmp_path: Path, magic: str) -> None:
    """With or without `%matplotlib inline`, a figure is an image/png display after its cell."""
    cells = [f"{magic}import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])", "print('next')"]
    done = succeeds(tmp_path, *cells)
    plotted = done.code_cells()[0]
    images = [o for o in plotted.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert base64.b64decode(images[0].data["image/png"]).startswith(b"\x89PNG")
    assert "[display] image/png" in done.stdout


# The executed copy


def test_counts_timings_and_run_metadata(tmp_path: Path) -> None:
    """Counts 1, 2, ... over the cells that run (empty and skip-execution cells do not); each
    run cell has nbclient's four timestamps, in order; the notebook has the run's record."""
    skipped = new_code_cell("print('skipped')", metadata={"tags": ["skip-execution"]})
    done = execute(build(tmp_path, "a = 1", "", skipped, new_markdown_cell("text"), "a + 1"))
    assert done.code == 0, done.stderr
    first, empty, skip, last = done.code_cells()
    assert (first.execution_count, last.execution_count) == (1, 2)
    assert (empty.execution_count, skip.execution_count) == (None, None)
    assert "execution" not in skip.metadata and skip.outputs == []
    for cell in (first, last):
        stamps = [cell.metadata.execution[key] for key in TIMING_KEYS]
        assert all(stamp.endswith("Z") for stamp in stamps)
        parsed = [datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in stamps]
        assert parsed == sorted(parsed)
        assert "jupyter_orch" not in cell.metadata
    status = done.notebook.metadata.jupyter_orch
    assert (status.run_id, status.status, status.exit_code) == ("run-1", "success", 0)
    assert status.started <= first.metadata.execution["iopub.status.busy"] <= status.ended
    python = done.notebook.metadata.language_info
    assert (python.name, python.version) == ("python", ".".join(map(str, sys.version_info[:3])))


def test_an_nbformat_4_4_notebook_keeps_its_version(tmp_path: Path) -> None:
    """No cell ids are added where the notebook's version has none, the injected cell too."""
    done = execute(build(tmp_path, "print(n)", minor=4), {"n": 1})
    assert done.code == 0, done.stderr
    assert done.notebook.nbformat_minor == 4
    assert all("id" not in cell for cell in done.notebook.cells)


def test_previous_outputs_are_cleared(tmp_path: Path) -> None:
    stale = new_code_cell("print('fresh')", execution_count=9)
    stale.outputs = [nbformat.v4.new_output("stream", name="stdout", text="stale\n")]
    stale.metadata["execution"] = {"iopub.status.busy": "2000-01-01T00:00:00.000000Z"}
    done = execute(build(tmp_path, stale, "1 / 0", new_code_cell("x", execution_count=5)))
    first, _, last = done.code_cells()
    assert stream_text(first) == "fresh\n" and first.execution_count == 1
    assert first.metadata.execution["iopub.status.busy"] > "2000"
    assert (last.execution_count, last.outputs) == (None, [])


def start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(path),
        cwd=path.parent,
        env=run_env(path.parent, {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], wanted: str, deadline: float = 30) -> list[str]:
    """Read the live stdout until `wanted`: lines arrive while the cell still runs."""
    assert proc.stdout is not None
    lines: list[str] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = proc.stdout.readline()
        assert line, f"stdout ended before {wanted!r}: {lines}"
        lines.append(line.rstrip("\n"))
        if lines[-1] == wanted:
            return lines
    raise AssertionError(f"no {wanted!r} in {lines}")


SLOW = ("print('one')", "import time\nprint('sleeping')\ntime.sleep(60)", "print('never')")


def test_a_killed_run_keeps_every_finished_cell(tmp_path: Path) -> None:
    """SIGKILL mid-cell (what the supervisor sends last): the copy is valid and holds the
    cells before, and marks the one that was running."""
    proc = start(build(tmp_path, *SLOW))
    try:
        lines = wait_for_line(proc, "sleeping")
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert lines[:3] == ["[cell 1/3] print('one')", "one", "[cell 2/3] import time"]
    notebook = read_output(tmp_path)
    first, running, never = notebook.cells
    assert first.execution_count == 1 and stream_text(first) == "one\n"
    assert set(first.metadata.execution) == set(TIMING_KEYS)
    assert running.metadata.jupyter_orch == {"status": "running"}
    assert running.execution_count == 2 and "iopub.status.busy" in running.metadata.execution
    assert never.execution_count is None
    assert notebook.metadata.jupyter_orch.status == "running"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".~")] == []


def test_sigterm_interrupts_the_running_cell_and_keeps_its_output(tmp_path: Path) -> None:
    """SIGTERM (a kill or a timeout): the running cell ends with a `Terminated` error and the
    text it wrote, the copy is written, and the process ends of SIGTERM."""
    proc = start(build(tmp_path, *SLOW))
    try:
        wait_for_line(proc, "sleeping")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM
    assert "Terminated" in stderr and "time.sleep(60)" in stderr
    notebook = read_output(tmp_path)
    first, stopped, never = notebook.cells
    assert stream_text(first) == "one\n"
    assert stream_text(stopped) == "sleeping\n"
    assert stopped.outputs[-1].ename == "Terminated"
    assert "jupyter_orch" not in stopped.metadata and never.execution_count is None
    status = notebook.metadata.jupyter_orch
    assert (status.status, status.exit_code) == ("terminated", 128 + signal.SIGTERM)
