"""Run a Python notebook as a task run's code and keep the executed copy.

``python -m jupyter_orch.nbrun NOTEBOOK --output OUT.ipynb`` runs inside a run's own process:
the cells run here, in IPython's `InteractiveShell` (`nbshell.py`), not in a kernel. The task's
arguments become a cell of parameters, as papermill injects them; each cell's output reaches
the run's log as it is written and is recorded in the output notebook, which is rewritten
(atomically) as each cell starts and at the end. `docs/notebooks.md` describes the behaviour.

Exit status: 0 when every cell ran (or a cell ended the notebook with `exit()` / `sys.exit(0)`);
1 when a cell failed; a cell's own `sys.exit(n)` gives n; 2 when the notebook cannot be run at
all. On SIGTERM (a kill or a timeout) the running cell is interrupted, the notebook written,
and then the process dies of SIGTERM, as it would have without the executor.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import keyword
import math
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from jupyter_orch.runtime import run_id, task_args

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionResult

    from jupyter_orch.nbshell import Recorder, RunShell

Notebook = dict[str, Any]
Cell = dict[str, Any]

EXIT_SUCCESS = 0
EXIT_CELL_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_TERMINATED = 128 + signal.SIGTERM

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
SKIP_TAG = "skip-execution"  # as nbclient: the cell is not run
RAISES_TAG = "raises-exception"  # as nbclient: an error in the cell does not stop the run

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
HEADLINE_CHARS = 60


class NotebookError(Exception):
    """A notebook this executor cannot run; the message says why."""


class Terminated(BaseException):
    """Raised in the running cell by SIGTERM: the run is being killed or has timed out."""

    raised_by_signal_handler = True  # its traceback is shown without the handler's frame


def now_iso() -> str:
    """Now, in UTC, as nbclient stamps a cell's `execution` metadata."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def language_info() -> dict[str, Any]:
    """This Python as ipykernel describes it; nbclient stores the same in an executed copy."""
    return {
        "name": "python",
        "version": sys.version.split()[0],
        "mimetype": "text/x-python",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "pygments_lexer": "ipython3",
        "nbconvert_exporter": "python",
        "file_extension": ".py",
    }


def read_notebook(path: Path) -> Notebook:
    """The notebook at `path`, read as plain JSON (the server validated it at upload)."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotebookError(f"cannot read {path}: {exc}") from exc
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError(f"{path} is not a notebook")
    if notebook.get("nbformat") != 4:
        raise NotebookError(f"{path} is nbformat {notebook.get('nbformat')}; 4 is needed")
    metadata = notebook.setdefault("metadata", {})
    language = (metadata.get("kernelspec") or {}).get("language") or (
        metadata.get("language_info") or {}
    ).get("name")
    if language and str(language).lower() != "python":
        raise NotebookError(f"{path} is a {language} notebook; only Python notebooks run")
    return notebook


def render_literal(value: Any) -> str:
    """Python source for a JSON value: `True`, `None`, `float('nan')`, nested lists and dicts."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        return repr(float(value)) if math.isfinite(value) else f"float({str(float(value))!r})"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(render_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{render_literal(k)}: {render_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def parameters_source(args: dict[str, Any]) -> str:
    """The injected cell's code: one assignment per argument named like a Python variable."""
    lines = ["# Parameters: the task's arguments"]
    for key, value in args.items():
        if isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key):
            lines.append(f"{key} = {render_literal(value)}")
        else:
            lines.append(f"# skipped {key!r}: not a Python name (jupyter_orch.task_args() has it)")
    return "\n".join(lines)


def inject_parameters(notebook: Notebook, args: dict[str, Any]) -> None:
    """Insert the arguments' cell after the first cell tagged `parameters`, or first (papermill's
    rule), replacing a cell injected before; nothing when there are no arguments."""
    if not args:
        return
    cells = [cell for cell in notebook["cells"] if INJECTED_TAG not in _tags(cell)]
    where = next((i + 1 for i, cell in enumerate(cells) if PARAMETERS_TAG in _tags(cell)), 0)
    injected: Cell = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [INJECTED_TAG]},
        "outputs": [],
        "source": parameters_source(args),
    }
    if notebook.get("nbformat_minor", 0) >= 5:
        injected["id"] = _new_id()
    cells.insert(where, injected)
    notebook["cells"] = cells


def prepare_cells(notebook: Notebook) -> list[Cell]:
    """Clear every code cell's outputs and count; the cells to run, in order (non-empty code
    cells not tagged `skip-execution`). nbformat 4.5 notebooks get any missing cell id."""
    to_run: list[Cell] = []
    seen: set[str] = set()
    for cell in notebook["cells"]:
        metadata = cell.setdefault("metadata", {})
        if notebook.get("nbformat_minor", 0) >= 5:
            if not isinstance(cell.get("id"), str) or cell["id"] in seen:
                cell["id"] = _new_id()
            seen.add(cell["id"])
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = []
        cell["execution_count"] = None
        metadata.pop("execution", None)
        metadata.pop("jupyter_orch", None)
        if _source(cell).strip() and SKIP_TAG not in _tags(cell):
            to_run.append(cell)
    return to_run


def _new_id() -> str:
    return uuid.uuid4().hex[:8]  # as nbformat's own cell ids


def _tags(cell: Cell) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return tags if isinstance(tags, list) else []


def _source(cell: Cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _headline(source: str) -> str:
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= HEADLINE_CHARS else line[: HEADLINE_CHARS - 3] + "..."


class NotebookRun:
    """One execution of a notebook into its output copy; `terminated` after a SIGTERM."""

    def __init__(
        self, path: str | os.PathLike[str], output: str | os.PathLike[str], args: Any
    ) -> None:
        self.path = Path(os.path.abspath(path))
        self.output = Path(os.path.abspath(output))
        self.args: dict[str, Any] = args if isinstance(args, dict) else {}
        self.notebook: Notebook = {}
        self.status: dict[str, Any] = {}
        self.terminated = False
        self._interruptible = False  # SIGTERM raises `Terminated` only while cells run
        self._lock = threading.RLock()  # the recorder's, once there is one

    def execute(self) -> int:
        """Run the notebook; the exit status (see the module's docstring)."""
        try:
            self.notebook = read_notebook(self.path)
            from jupyter_orch import nbshell
        except ImportError as exc:
            return _unusable(
                f"running a notebook needs IPython: add it to requirements.txt ({exc})"
            )
        except NotebookError as exc:
            return _unusable(str(exc))
        inject_parameters(self.notebook, self.args)
        cells = prepare_cells(self.notebook)
        self._enter_folder()
        try:
            return self._run_captured(nbshell, cells)
        except NotebookError as exc:
            return _unusable(str(exc))

    def write(self) -> None:
        """Write the output notebook atomically: a temporary file beside it, then a rename."""
        with self._lock:
            text = json.dumps(
                self.notebook, ensure_ascii=False, indent=1, sort_keys=True, default=repr
            )
        temporary = self.output.with_name(f".~{self.output.name}")
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(temporary, "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
            except PermissionError:
                # A run as its owner may write only the copy the server made for it, in a
                # folder that is not the owner's: in place, then.
                with open(self.output, "r+", encoding="utf-8") as fh:
                    fh.write(text + "\n")
                    fh.truncate()
                return
            os.replace(temporary, self.output)
        except OSError as exc:
            raise NotebookError(f"cannot write {self.output}: {exc}") from exc

    def _run_captured(self, nbshell: ModuleType, cells: list[Cell]) -> int:
        """Run the cells with `sys.stdout`/`sys.stderr` recorded and SIGTERM caught."""
        real = (sys.stdout, sys.stderr)
        for stream in real:
            if isinstance(stream, io.TextIOWrapper):  # a log takes any text
                stream.reconfigure(errors="backslashreplace")
        recorder = nbshell.Recorder(*real)
        self._lock = recorder.lock
        previous = self._catch_sigterm()
        sys.stdout = nbshell.TeeStream("stdout", real[0], recorder)
        sys.stderr = nbshell.TeeStream("stderr", real[1], recorder)
        try:
            code: int = self._run(nbshell.start_shell(recorder), recorder, cells)
            return code
        finally:
            sys.stdout, sys.stderr = real
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _enter_folder(self) -> None:
        """Run where the notebook is, with it as `sys.argv[0]`, as `python main.py` would."""
        start = os.getcwd()
        folder = str(self.path.parent)
        os.chdir(folder)
        if sys.path and sys.path[0] in ("", start):
            sys.path[0] = folder
        elif folder not in sys.path:
            sys.path.insert(0, folder)
        sys.argv = [self.path.name]
        if "MPLBACKEND" not in os.environ and importlib.util.find_spec("matplotlib_inline"):
            os.environ["MPLBACKEND"] = INLINE_BACKEND  # figures become image/png outputs

    def _catch_sigterm(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        first = not self.terminated
        self.terminated = True
        if first and self._interruptible:
            raise Terminated("the run was stopped by SIGTERM (killed or timed out)")

    def _run(self, shell: RunShell, recorder: Recorder, cells: list[Cell]) -> int:
        """Run the cells in order until one stops the notebook; then the final write."""
        started = time.monotonic()
        self.status = {"run_id": run_id(), "started": now_iso(), "status": "running"}
        self.notebook["metadata"].update(jupyter_orch=self.status, language_info=language_info())
        code, ran = self._run_cells(shell, recorder, cells)
        if self.terminated:
            code = EXIT_TERMINATED
        status = "success" if code == 0 else "terminated" if self.terminated else "failure"
        self.status.update(ended=now_iso(), status=status, exit_code=code)
        self.write()
        elapsed = time.monotonic() - started
        recorder.log(f"[end] {status}: ran {ran} of {len(cells)} cells in {elapsed:.2f} s")
        return code

    def _run_cells(self, shell: RunShell, recorder: Recorder, cells: list[Cell]) -> tuple[int, int]:
        """(exit status, cells run): 0 unless a cell stopped the notebook with another."""
        ran = 0
        self._interruptible = True
        try:
            for number, cell in enumerate(cells, 1):
                if self.terminated:  # SIGTERM before the cells started
                    return EXIT_TERMINATED, ran
                ran = number
                stop = self._run_cell(shell, recorder, cell, f"{number}/{len(cells)}")
                if stop is not None:
                    return stop, ran
            return EXIT_SUCCESS, ran
        except Terminated as exc:
            # Raised outside the cell's code (IPython recorded it otherwise): between cells.
            running = cells[ran - 1] if ran else None
            if running is not None and "jupyter_orch" in running["metadata"]:
                recorder.error("Terminated", str(exc), [f"Terminated: {exc}"])
            return EXIT_TERMINATED, ran
        finally:
            self._interruptible = False
            for cell in cells[ran - 1 : ran]:
                cell["metadata"].pop("jupyter_orch", None)

    def _run_cell(self, shell: RunShell, recorder: Recorder, cell: Cell, place: str) -> int | None:
        """Run one cell; None to go on, or the exit status that ends the notebook here."""
        timing = {"iopub.status.busy": now_iso()}
        # Written before the cell runs: if the run is killed, the copy shows which cell it was.
        recorder.start(cell["outputs"], shell.execution_count)
        cell["execution_count"] = shell.execution_count
        cell["metadata"].update(execution=timing, jupyter_orch={"status": "running"})
        self.write()
        source = _source(cell)
        recorder.log(f"[cell {place}] {_headline(source)}")
        timing["iopub.execute_input"] = now_iso()
        run_cell: Any = shell.run_cell  # untyped in IPython
        result = run_cell(source, store_history=True, cell_id=cell.get("id"))
        timing["shell.execute_reply"] = now_iso()
        del cell["metadata"]["jupyter_orch"]
        stop = self._outcome(result, recorder, cell)
        timing["iopub.status.idle"] = now_iso()
        return stop

    def _outcome(self, result: ExecutionResult, recorder: Recorder, cell: Cell) -> int | None:
        """What a cell's end means: go on (None), or stop with an exit status."""
        error = result.error_before_exec or result.error_in_exec
        if self.terminated:  # the cell's error says so if SIGTERM interrupted it
            return EXIT_TERMINATED
        if isinstance(error, SystemExit):
            return _system_exit(error, recorder)
        if error is None:
            return None
        if not recorder.has_error():  # e.g. a debugger's quit: IPython showed nothing
            lines = traceback.format_exception_only(type(error), error)
            recorder.error(type(error).__name__, str(error), "".join(lines).splitlines())
        return None if RAISES_TAG in _tags(cell) else EXIT_CELL_FAILED


def _system_exit(error: SystemExit, recorder: Recorder) -> int:
    """`exit()` or `sys.exit(code)` in a cell ends the notebook there, as it ends a script:
    no code or 0 is a success; another is recorded as the cell's error."""
    code = error.code
    if code is None or code == 0:
        recorder.log("[exit] the cell ended the notebook (exit code 0)")
        return EXIT_SUCCESS
    recorder.error("SystemExit", str(code), [f"SystemExit: {code}"])
    return code if isinstance(code, int) else EXIT_CELL_FAILED


def _unusable(message: str) -> int:
    sys.stderr.write(f"jupyter_orch.nbrun: {message}\n")
    sys.stderr.flush()
    return EXIT_UNUSABLE


def run_notebook(
    path: str | os.PathLike[str], output: str | os.PathLike[str], args: dict[str, Any]
) -> int:
    """Run the notebook at `path` with `args` as parameters, writing the executed copy to
    `output`; the exit status. Once per process: the cells share the process's one shell."""
    return NotebookRun(path, output, args).execute()


def main(argv: list[str] | None = None) -> int:
    """`python -m jupyter_orch.nbrun NOTEBOOK --output OUT.ipynb`, with the task's arguments."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_orch.nbrun", description=__doc__)
    parser.add_argument("notebook", help="the notebook to run (.ipynb)")
    parser.add_argument("--output", required=True, help="where to write the executed copy")
    options = parser.parse_args(argv)
    run = NotebookRun(options.notebook, options.output, task_args())
    code = run.execute()
    if run.terminated:  # end as SIGTERM ends a process, now that the copy is written
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    return code


if __name__ == "__main__":
    sys.exit(main())
