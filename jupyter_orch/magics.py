"""IPython magics: `%%orchestrate` turns a cell into an orchestration; `%orch_*` manage tasks.

Load them with `%load_ext jupyter_orch`. Bad options and refusals by the server are one-line
usage errors, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.display import display as ipython_display

from .bundle import cell_entries, requirements_text, zip_entries
from .sdk import display as tables
from .sdk.base import poll
from .sdk.client import Client
from .sdk.errors import OrchClientError
from .sdk.logs import LogLines, write_lines
from .sdk.refs import RUN_SCAN
from .sdk.resources import Orchestration, Task, TaskList, TaskRun, TaskRunList

if TYPE_CHECKING:
    from .widgets import TasksPanel


class Summary:
    """A few named values under a title: what `%%orchestrate` made."""

    def __init__(self, title: str, pairs: list[tuple[str, str]]) -> None:
        self.title = title
        self.pairs = pairs

    def __repr__(self) -> str:
        return tables.text_fields(self.title, self.pairs)

    def _repr_html_(self) -> str:
        return tables.html_fields(self.title, self.pairs)


F = TypeVar("F", bound=Callable[..., Any])
#: The MIME type of a link that opens a task's page in JupyterLab (the front end renders it).
OPEN_MIME = "application/vnd.jupyter-orch.open+json"
TASK_REF = "a task id, short id or name, or a variable holding a Task"
#: Task statuses after which a task makes no more runs.
ENDED = frozenset({"success", "failed", "timed_out", "killed"})
#: IPython's display(), typed for our use.
display: Callable[..., None] = ipython_display
_display_any: Callable[..., Any] = ipython_display


def display_replaceable(obj: object) -> Any:
    """Display `obj`; the handle whose `update(new)` replaces it where it is shown."""
    return _display_any(obj, display_id=True)


class MagicParser(argparse.ArgumentParser):
    """Options of one magic; a mistake is a one-line UsageError that shows the usage."""

    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, add_help=False)

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing and exiting the kernel."""
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        raise UsageError(f"{message} (usage: {usage})")

    def parse_line(self, line: str) -> argparse.Namespace:
        """Split the magic's line as a shell would, then parse it."""
        return self.parse_args(shlex.split(line))


def with_usage(parser: MagicParser) -> Callable[[F], F]:
    """Append a parser's help to the magic's docstring: what `%magic?` shows."""

    def decorate(fn: F) -> F:
        fn.__doc__ = f"{fn.__doc__}\n\n{parser.format_help()}"
        return fn

    return decorate


ORCHESTRATE = MagicParser(
    "%%orchestrate",
    "Upload the cell as an orchestration's main.py (the cell is not run here); with --once, "
    "--schedule or --continuous also start a task.",
)
ORCHESTRATE.add_argument("name", help="the orchestration's name (the task's too)")
ORCHESTRATE.add_argument("--once", action="store_true", help="run it once")
ORCHESTRATE.add_argument("--schedule", metavar="CRON", help="run it on a cron schedule (quoted)")
ORCHESTRATE.add_argument("--timezone", metavar="TZ", help="the schedule's IANA time zone")
ORCHESTRATE.add_argument("--continuous", action="store_true", help="run again when a run ends")
ORCHESTRATE.add_argument("--args", metavar="JSON", help="task arguments: a JSON object or $var")
ORCHESTRATE.add_argument("--timeout", metavar="S", type=int, help="end a run after S seconds")
ORCHESTRATE.add_argument("--executor", metavar="NAME", help="where runs execute: local, dask")
ORCHESTRATE.add_argument(
    "--requirements", metavar="REQS", help='a requirements file, or "pkg==1.0; other"'
)
ORCHESTRATE.add_argument("--file", metavar="PATH", action="append", default=[], help="add a file")
ORCHESTRATE.add_argument("--dir", metavar="PATH", action="append", default=[], help="add a folder")
ORCHESTRATE.add_argument("--wait", action="store_true", help="print the first run's output")
ORCHESTRATE.add_argument("--follow", action="store_true", help="stream the first run's output")
ORCHESTRATE.add_argument(
    "--new",
    action="store_true",
    help="start another task even if a scheduled or continuous one of this name exists",
)

TASKS = MagicParser("%orch_tasks", "The tasks of the current workspace.")
TASKS.add_argument("--killed", action="store_true", help="list killed tasks too")
TASKS.add_argument("--limit", type=int, default=100, help="the newest N tasks (100)")
TASKS.add_argument("--after", help="the page after this task id")
TASKS.add_argument("--all", action="store_true", help="every task")

RUNS = MagicParser("%orch_runs", "A task's runs, newest first.")
RUNS.add_argument("task", help=TASK_REF)
RUNS.add_argument("--limit", type=int, default=20, help="the newest N runs (20)")
RUNS.add_argument("--all", action="store_true", help="every run")
RUNS.add_argument("--status", help="only runs of this status (running, success, failure ...)")

LOGS = MagicParser("%orch_logs", "A run's log; with --follow, printed live until the run ends.")
LOGS.add_argument(
    "run", help="a run id or short id, or a variable holding a TaskRun or a Task (newest run)"
)
LOGS.add_argument("--follow", "-f", action="store_true", help="print lines as they are written")
LOGS.add_argument("--limit", type=int, help="only the last N lines")


PANEL = MagicParser(
    "%orch_panel",
    "A live panel of the tasks: their runs and logs; kill, pause, resume, run now. It replaces "
    "the panel this magic showed before.",
)
PANEL.add_argument("--workspace", type=int, metavar="ID", help="a workspace id (default: current)")
PANEL.add_argument("--status", help="only tasks of this status (started, failed, paused ...)")
PANEL.add_argument("--killed", action="store_true", help="list killed tasks too")


def task_parser(name: str, what: str) -> MagicParser:
    """The parser of a magic that takes one task."""
    parser = MagicParser(name, what)
    parser.add_argument("task", help=TASK_REF)
    return parser


OPEN = task_parser("%orch_open", "Open a task's page in JupyterLab's main area.")
KILL = task_parser("%orch_kill", "Kill a task: no more runs, active runs ended.")
PAUSE = task_parser("%orch_pause", "Pause a scheduled or continuous task.")
RESUME = task_parser("%orch_resume", "Resume a paused task.")
DELETE = MagicParser(
    "%orch_delete",
    "Delete tasks with their runs, logs and outputs (a run going is killed first). Without "
    "--yes, only say what would go.",
)
DELETE.add_argument("tasks", nargs="+", metavar="task", help=TASK_REF)
DELETE.add_argument("--yes", action="store_true", help="delete (without it: a preview)")


@contextmanager
def one_line_errors(magic: str) -> Iterator[None]:
    """Show bad options, bad files and the server's refusals as `UsageError: magic: message`."""
    try:
        yield
    except (UsageError, OrchClientError, ValueError, OSError) as exc:
        raise UsageError(f"{magic}: {exc}") from None


def check_compiles(cell: str) -> None:
    """UsageError with the line and the error when the cell is not valid Python (nothing is
    uploaded then): it would only fail in its run."""
    try:
        compile(cell, "main.py", "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError too
        text = (exc.text or "").strip()
        where = f"line {exc.lineno}: {exc.msg}" + (f": {text}" if text else "")
        raise UsageError(f"the cell does not compile, nothing was uploaded ({where})") from None


def run_mode(opts: argparse.Namespace) -> str | None:
    """`once`, `schedule`, `continuous` or None (upload only); UsageError for a bad mix."""
    chosen = {
        "once": opts.once,
        "schedule": opts.schedule is not None,
        "continuous": opts.continuous,
    }
    modes = [mode for mode, on in chosen.items() if on]
    if len(modes) > 1:
        raise UsageError("choose one of --once, --schedule and --continuous")
    mode = modes[0] if modes else None
    if opts.timezone is not None and mode != "schedule":
        raise UsageError("--timezone goes with --schedule")
    if opts.timeout is not None and mode not in ("once", "schedule"):
        raise UsageError("--timeout goes with --once or --schedule")
    for flag in ("args", "wait", "follow"):
        if getattr(opts, flag) not in (None, False) and mode is None:
            raise UsageError(f"--{flag} needs a run: --once, --schedule or --continuous")
    return mode


def task_action(
    parser: MagicParser, action: Callable[[Task], object]
) -> Callable[[OrchMagics, str], Task]:
    """The line magic `parser.prog` (`%orch_kill` ...), described as its parser is: parse a
    task's id, do `action` to the task, and show it."""

    def magic(self: OrchMagics, line: str) -> Task:
        return self._act(parser.prog, parser, line, action)

    magic.__name__ = magic.__qualname__ = parser.prog.lstrip("%")
    magic.__doc__ = parser.description
    line_magic(with_usage(parser)(magic))
    return magic


@magics_class
class OrchMagics(Magics):
    """The magics of jupyter_orch; one `Client` found on first use."""

    _client: Client | None = None
    _panel: TasksPanel | None = None

    @property
    def ns(self) -> dict[str, Any]:
        """The user's namespace."""
        assert self.shell is not None
        user_ns: dict[str, Any] = self.shell.user_ns
        return user_ns

    @property
    def client(self) -> Client:
        """The client of the Jupyter server that runs this kernel (found on first use)."""
        if self._client is None:
            self._client = Client()
        return self._client

    @no_var_expand
    @cell_magic
    @with_usage(ORCHESTRATE)
    def orchestrate(self, line: str, cell: str) -> None:
        """Upload the cell as an orchestration's main.py (not run here); optionally run it.
        A scheduled or continuous task of the same name is updated rather than doubled."""
        with one_line_errors("%%orchestrate"):
            opts = ORCHESTRATE.parse_line(line)
            mode = run_mode(opts)
            for name in ("_orch", "_task", "_run"):  # they always name what this cell made
                self.ns.pop(name, None)
            args = self._json_args(opts.args)
            check_compiles(cell)
            existing = self._same_name(opts, mode) if mode and not opts.new else None
            orch = self._upload(opts, cell)
            if existing is not None:
                task: Task | None = self._update(existing, orch, opts, mode, args)
            else:
                task = self._start(orch, opts, mode, args) if mode else None
            # Shown now, and replaced by the task's final status after --wait or --follow.
            handle = display_replaceable(self._summary(orch, task, existing is not None))
            if task is not None and (opts.wait or opts.follow):
                self._watch_first_run(task, opts.follow, existing is not None)
                handle.update(self._summary(orch, task.refresh(), existing is not None))

    def _same_name(self, opts: argparse.Namespace, mode: str) -> Task | None:
        """The live scheduled or continuous task this cell made before (its name), to update;
        None to start a new task. UsageError, before anything is uploaded, for a task of
        another kind or several of them."""
        if mode == "once":
            return None  # a run-once task is its one run: running the cell again is a new one
        kinds = {"schedule": "scheduled", "continuous": "continuous"}
        found = [
            task
            for task in self.client.list_tasks()
            if task.name() == opts.name
            and task.run_type() in kinds.values()
            and task.known_status() not in ENDED
        ]
        if not found:
            return None
        ids = ", ".join(f"{t.id()} ({t.run_type()})" for t in found)
        if len(found) > 1:
            raise UsageError(
                f"{len(found)} tasks are named {opts.name}: {ids}; kill the ones to drop "
                "(%orch_kill ID) or add --new to start one more"
            )
        if found[0].run_type() != kinds[mode]:
            raise UsageError(
                f"a {found[0].run_type()} task named {opts.name} exists ({found[0].id()}); "
                "kill it (%orch_kill ID) or add --new to start one more"
            )
        return found[0]

    def _update(
        self,
        task: Task,
        orch: Orchestration,
        opts: argparse.Namespace,
        mode: str | None,
        args: dict[str, Any],
    ) -> Task:
        """Give the task the cell's code (once packaged) and the line's settings."""
        orch.wait_ready()
        if mode == "schedule":
            task.update(
                orchestration=orch,
                schedule=opts.schedule,
                timezone=opts.timezone or "UTC",
                json_args=args,
                timeout=opts.timeout,
            )
        else:
            task.update(orchestration=orch, json_args=args)
        self.ns["_task"] = task
        return task

    def _json_args(self, value: str | None) -> dict[str, Any]:
        """`--args`: a JSON object, or `$name` of a dict (or JSON text) in the user's namespace."""
        if value is None:
            return {}
        if value.startswith("$"):
            if value[1:] not in self.ns:
                raise UsageError(f"--args {value}: no such variable")
            found = self.ns[value[1:]]
            value = found if isinstance(found, str) else json.dumps(found)
        try:
            parsed = json.loads(str(value))
        except ValueError as exc:
            raise UsageError(f"--args: not JSON ({exc})") from None
        if not isinstance(parsed, Mapping):
            raise UsageError(f'--args: a JSON object like \'{{"name": "x"}}\', not {value}')
        return dict(parsed)

    def _upload(self, opts: argparse.Namespace, cell: str) -> Orchestration:
        if not cell.strip():
            raise UsageError("the cell is empty: it is the orchestration's main.py")
        cwd = Path.cwd()
        reqs = requirements_text(opts.requirements, cwd) if opts.requirements else None
        files = [Path(f) for f in opts.file]
        entries = cell_entries(cell, cwd, reqs, files, [Path(d) for d in opts.dir])
        orch = self.client.upload_orchestration(
            bytes_buffer=zip_entries(entries), name=opts.name, file_name=f"{opts.name}.zip"
        )
        self.ns["_orch"] = orch
        return orch

    def _start(
        self, orch: Orchestration, opts: argparse.Namespace, mode: str, args: dict[str, Any]
    ) -> Task:
        if mode == "once":
            task = orch.run_once(opts.name, args, timeout=opts.timeout, executor=opts.executor)
        elif mode == "schedule":
            task = orch.run_scheduled(
                opts.name,
                opts.schedule,
                args,
                opts.timeout,
                timezone=opts.timezone,
                executor=opts.executor,
            )
        else:
            task = orch.run_continuously(opts.name, args, executor=opts.executor)
        self.ns["_task"] = task
        return task

    @staticmethod
    def _summary(orch: Orchestration, task: Task | None, updated: bool = False) -> Summary:
        pairs = [
            ("orchestration", f"{orch.name()} ({orch.id()})"),
            ("packaging", orch.known_status()),
        ]
        if task is not None:
            pairs += [("task", f"{task.name()} ({task.id()})"), ("type", task.task_type())]
            if updated:
                pairs.append(("updated", "new code and settings; runs going keep theirs"))
            if task.schedule_description():
                pairs.append(("schedule", str(task.schedule_description())))
            pairs.append(("status", task.known_status()))
        title = "Updated" if updated else "Uploaded"
        return Summary(f"{title} {orch.name()}", pairs)

    def _watch_first_run(self, task: Task, follow: bool, updated: bool = False) -> None:
        """Print the first run's output (live, or once it has ended) and how it ended; for an
        updated task, the first run of the new code."""
        try:
            run = self._next_run(task) if updated else task.first_run()
            self.ns["_run"] = run
            if follow:
                run.follow()
            else:
                print(run.wait().logs(), end="")
        except KeyboardInterrupt:
            print(f"stopped waiting; task {task.id()} goes on (%orch_kill {task.id()} ends it)")
            return
        ended = f"run {run.id()} ended: {run.known_status()}"
        code = run.to_dict().get("exit_code")
        print(ended if code is None else f"{ended} (exit {code})")

    @staticmethod
    def _next_run(task: Task) -> TaskRun:
        """The first run of an updated task that starts from now: a manual one for a
        scheduled task (its next instant may be far); the next one for a continuous task
        (once the run going, of the old code, has ended)."""
        if task.run_type() == "scheduled":
            return task.run_now()
        known = {run.id() for run in task.last_runs(limit=RUN_SCAN)}

        def fresh() -> TaskRun | None:
            runs = [r for r in task.last_runs(limit=RUN_SCAN) if r.id() not in known]
            return runs[-1] if runs else None

        return poll(fresh, None, f"task {task.id()}: no run of the new code yet")

    # -- line magics ---------------------------------------------------------------------------

    @line_magic
    @with_usage(TASKS)
    def orch_tasks(self, line: str) -> TaskList:
        """The tasks of the current workspace."""
        with one_line_errors("%orch_tasks"):
            opts = TASKS.parse_line(line)
            limit = None if opts.all else opts.limit
            return self.client.list_tasks(killed=opts.killed, limit=limit, after=opts.after)

    @line_magic
    @with_usage(RUNS)
    def orch_runs(self, line: str) -> TaskRunList:
        """A task's runs, newest first."""
        with one_line_errors("%orch_runs"):
            opts = RUNS.parse_line(line)
            return self._task(opts.task).last_runs(None if opts.all else opts.limit, opts.status)

    @line_magic
    @with_usage(LOGS)
    def orch_logs(self, line: str) -> LogLines | None:
        """A run's log lines; with --follow, printed live until the run ends."""
        with one_line_errors("%orch_logs"):
            opts = LOGS.parse_line(line)
            run_id = self._run_id(opts.run)
            if not opts.follow:
                return self.client.run_logs(run_id, opts.limit)
            try:
                write_lines(self.client.follow_logs(run_id), sys.stdout)
            except KeyboardInterrupt:
                print("stopped following; the run goes on")
            return None

    def _act(
        self, magic: str, parser: MagicParser, line: str, action: Callable[[Task], object]
    ) -> Task:
        """Parse a task's id, do one thing to the task, and show it."""
        with one_line_errors(magic):
            task = self._task(parser.parse_line(line).task)
            action(task)
            return task

    @line_magic
    @with_usage(OPEN)
    def orch_open(self, line: str) -> None:
        """Open a task's page in JupyterLab's main area (a link where it cannot open)."""
        with one_line_errors("%orch_open"):
            task = self._task(OPEN.parse_line(line).task)
            label = f"{task.name() or 'task'} ({task.id()})"
            bundle = {
                OPEN_MIME: {"task_id": task.id(), "name": task.name()},
                "text/plain": f"Task {label}: open it from the orchestrations sidebar",
            }
            display(bundle, raw=True)

    @line_magic
    @with_usage(DELETE)
    def orch_delete(self, line: str) -> None:
        """Delete tasks with their runs; without --yes, say what would go."""
        with one_line_errors("%orch_delete"):
            opts = DELETE.parse_line(line)
            tasks = list({task.id(): task for task in map(self._task, opts.tasks)}.values())
            answer = self.client.delete_tasks(tasks, confirm_delete=opts.yes)
            if opts.yes:
                print(tables.deletion_words(answer, "deleted"))
            else:
                print(tables.deletion_words(answer, "would delete") + "; add --yes to delete")

    orch_kill = task_action(KILL, Task.kill)
    orch_pause = task_action(PAUSE, Task.pause)
    orch_resume = task_action(RESUME, Task.resume)

    @line_magic
    @with_usage(PANEL)
    def orch_panel(self, line: str) -> None:
        """Show a live panel of the tasks (it replaces the one this magic showed before)."""
        with one_line_errors("%orch_panel"):
            opts = PANEL.parse_line(line)
            try:
                from .widgets import TasksPanel
            except ImportError as exc:  # ipywidgets is missing: say how to get it
                raise UsageError(str(exc)) from None
            if self._panel is not None:  # a re-run cell: the old panel must stop refreshing
                self._panel.close()
            self._panel = TasksPanel(
                opts.workspace, client=self.client, status=opts.status, include_killed=opts.killed
            )
            self.ns["_panel"] = self._panel
            display(self._panel)

    def _named(self, ref: str) -> object:
        """The user's variable of that name, if `ref` names one."""
        return self.ns.get(ref) if ref.isidentifier() else None

    def _task(self, ref: str) -> Task:
        found = self._named(ref)
        if isinstance(found, Task):
            return found
        if isinstance(found, TaskRun):
            return self.client.get_task_by_id(found.task_id())
        return self.client.find_task(ref)

    def _run_id(self, ref: str) -> str:
        found = self._named(ref)
        if isinstance(found, TaskRun):
            return found.id()
        if isinstance(found, Task):
            runs = found.last_runs(limit=1)
            if not runs:
                raise UsageError(f"task {found.id()} has no run yet")
            return runs[0].id()
        return self.client.find_run_id(ref)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics with IPython (`%load_ext jupyter_orch`)."""
    ipython.register_magics(OrchMagics)
