"""`jupyter orch COMMAND`: orchestrations, tasks, runs and logs from a terminal.

Without a command, `jupyter orch [options]` starts the extension as a server of its own
(`jupyter orch --help-all` lists its options); `jupyter orch hub-service [options]` starts it
as a JupyterHub service (docs/jupyterhub.md).
Exit codes scripts can rely on: 0 done (and, when waiting, the run succeeded); 1 the awaited
run ended otherwise; 2 bad usage; 3 the server refused the request; 4 no server reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .sdk.base import ResourceList
from .sdk.client import Client
from .sdk.display import deletion_words
from .sdk.errors import ApiError, OrchClientError, ServerNotFound, ServerUnreachable
from .sdk.logs import write_lines
from .sdk.resources import (
    KEEP,
    RUN_LIMIT,
    Orchestration,
    Task,
    TaskList,
    TaskRun,
    TaskRunList,
    rerun,
)

OK, RUN_FAILED, USAGE, REFUSED, NO_SERVER = 0, 1, 2, 3, 4
TASK_REF = "a task id, the short id shown (when unique) or the task's name"
RUN_REF = "a run id, or the short id shown (when unique)"
#: Tasks `jupyter orch tasks` lists unless told otherwise.
TASK_LIMIT = 100
#: Objects per request when listing every one (--all).
ALL_PAGE = 1000
Command = Callable[[Client, argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command (or, without one, the server); the process's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["hub-service"]:
        from .server.hub import serve as serve_hub

        serve_hub(args[1:])
        return OK
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help")):
        from .server.app import OrchApp

        serve: Callable[..., None] = OrchApp.launch_instance
        serve(argv=args)
        return OK
    opts = build_parser().parse_args(args)
    try:
        client = Client(url=opts.url, token=opts.token, workspace=_workspace(opts.workspace))
        return int(COMMANDS[opts.command][0](client, opts))
    except (ServerNotFound, ServerUnreachable) as exc:
        return _fail(NO_SERVER, exc)
    except ApiError as exc:
        return _fail(REFUSED, exc)
    except (OrchClientError, ValueError, OSError) as exc:
        return _fail(USAGE, exc)
    except KeyboardInterrupt:
        return 130


def _fail(code: int, exc: Exception) -> int:
    print(f"jupyter orch: {exc}", file=sys.stderr)
    return code


def _workspace(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _emit(
    opts: argparse.Namespace, item: Orchestration | Task | TaskRun | ResourceList[Any]
) -> None:
    """Print an object or a list: a readable table, or the server's JSON with --json."""
    if opts.json:
        data = item.to_list() if isinstance(item, ResourceList) else item.to_dict()
        print(json.dumps(data, indent=2))
    else:
        print(repr(item))


def _json_object(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"--args must be a JSON object, not {text}")
    return value


def _orchestration(client: Client, ref: str) -> Orchestration:
    """An orchestration by id, by path (uploaded first), or by name (the newest of that name)."""
    if Path(ref).exists():
        return client.upload_orchestration(path=ref)
    try:
        return client.get_orchestration_by_id(str(uuid.UUID(ref)))
    except ValueError:
        pass
    named = [o for o in client.list_orchestrations() if o.name() == ref]
    if not named:
        raise ValueError(f"{ref}: no such file, orchestration id or orchestration name")
    return max(named, key=lambda o: str(o.to_dict().get("created_at")))


def _after_start(opts: argparse.Namespace, task: Task) -> int:
    """Print the new task, or wait for its first run (printing it, or its output live)."""
    if not (opts.wait or opts.follow):
        _emit(opts, task)
        return OK
    return _watch(opts, task.first_run())


def _watch(opts: argparse.Namespace, run: TaskRun) -> int:
    """Wait for a run (printing it), or print its output live; 0 if it succeeded."""
    if opts.follow:
        run.follow()
        print(f"run {run.id()} ended: {run.known_status()}", file=sys.stderr)
    else:
        _emit(opts, run.wait())
    return OK if run.known_status() == "success" else RUN_FAILED


def cmd_upload(client: Client, opts: argparse.Namespace) -> int:
    """Upload a zip, a folder, a script or a notebook."""
    orch = client.upload_orchestration(path=opts.path, name=opts.name)
    _emit(opts, orch.wait_ready() if opts.wait else orch)
    return OK


def cmd_run_once(client: Client, opts: argparse.Namespace) -> int:
    """Run an orchestration once."""
    orch = _orchestration(client, opts.orch)
    task = orch.run_once(opts.name or orch.name() or "", _json_object(opts.args), opts.timeout)
    return _after_start(opts, task)


def cmd_schedule(client: Client, opts: argparse.Namespace) -> int:
    """Run an orchestration on a cron schedule."""
    orch = _orchestration(client, opts.orch)
    args = _json_object(opts.args)
    name = opts.name or orch.name() or ""
    task = orch.run_scheduled(name, opts.cron, args, opts.timeout, timezone=opts.timezone)
    return _after_start(opts, task)


def cmd_continuous(client: Client, opts: argparse.Namespace) -> int:
    """Run an orchestration continuously."""
    orch = _orchestration(client, opts.orch)
    task = orch.run_continuously(opts.name or orch.name() or "", _json_object(opts.args))
    return _after_start(opts, task)


def cmd_orchestrations(client: Client, opts: argparse.Namespace) -> int:
    """List orchestrations."""
    _emit(opts, client.list_orchestrations())
    return OK


def _more_follow(noun: str, shown: ResourceList[Any]) -> None:
    """Say on stderr (stdout stays the list, or its JSON) how to list what was left out."""
    last = shown[-1].id()
    print(
        f"{len(shown)} {noun} shown, more follow: --after {last} for the next page, "
        f"--all for every one",
        file=sys.stderr,
    )


def _emit_page(
    opts: argparse.Namespace,
    noun: str,
    page: Callable[[int | None, str | None], ResourceList[Any]],
    every: Callable[[], ResourceList[Any]],
) -> int:
    """The newest --limit (saying when more follow), the page --after an id, or --all.

    `page(limit, after)` asks for one page (limit None: all after `after`); `every()` fetches
    every one, page by page."""
    if opts.all:
        _emit(opts, page(None, opts.after) if opts.after is not None else every())
        return OK
    found = page(opts.limit + 1, opts.after)  # one more than shown says whether more follow
    shown = type(found)(found[: opts.limit])
    _emit(opts, shown)
    if len(found) > opts.limit:
        _more_follow(noun, shown)
    return OK


def cmd_tasks(client: Client, opts: argparse.Namespace) -> int:
    """List tasks, newest first: the newest --limit, the page --after a task, or --all."""
    return _emit_page(
        opts,
        "tasks",
        lambda limit, after: client.list_tasks(killed=opts.killed, limit=limit, after=after),
        lambda: TaskList(client.iter_tasks(killed=opts.killed, page_size=ALL_PAGE)),
    )


def cmd_runs(client: Client, opts: argparse.Namespace) -> int:
    """List a task's runs, newest first: the newest --limit, the page --after a run, or --all."""
    task = client.find_task(opts.task)
    return _emit_page(
        opts,
        "runs",
        lambda limit, after: task.last_runs(limit, opts.status, after),
        lambda: TaskRunList(task.iter_runs(ALL_PAGE, opts.status)),
    )


def cmd_logs(client: Client, opts: argparse.Namespace) -> int:
    """Print a run's log; with -f, follow it to the run's end."""
    opts.run = client.find_run_id(opts.run)
    if opts.follow:
        follower = client.follow_logs(opts.run)
        write_lines(follower, sys.stdout)
        print(f"run {opts.run} ended: {follower.status}", file=sys.stderr)
        return OK if follower.status == "success" else RUN_FAILED
    lines = client.run_logs(opts.run, opts.limit)
    if opts.json:
        print(json.dumps({"logs": [line.raw for line in lines]}, indent=2))
    elif opts.timestamps:
        print("\n".join(f"{line.time} {line.stream} {line.text}" for line in lines))
    else:
        sys.stdout.write(str(lines))
    return OK


def cmd_output(client: Client, opts: argparse.Namespace) -> int:
    """Write a notebook run's executed notebook: to stdout, or to a file with -o."""
    document = client.run_output(client.find_run_id(opts.run))
    text = json.dumps(document, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if opts.output is None or opts.output == "-":
        sys.stdout.write(text)
    else:
        Path(opts.output).write_text(text, encoding="utf-8")
        print(f"wrote {opts.output}", file=sys.stderr)
    return OK


def _task_action(action: Callable[[Task], object]) -> Command:
    """A command that does one thing to a task, then shows the task."""

    def command(client: Client, opts: argparse.Namespace) -> int:
        task = client.find_task(opts.task)
        action(task)
        _emit(opts, task)
        return OK

    return command


cmd_kill = _task_action(Task.kill)
cmd_pause = _task_action(Task.pause)
cmd_resume = _task_action(Task.resume)


def cmd_delete(client: Client, opts: argparse.Namespace) -> int:
    """Delete tasks with their runs, logs and outputs (runs going are killed first); without
    --yes, say what would go and ask (on a terminal only)."""
    ids = list(dict.fromkeys(client.find_task(ref).id() for ref in opts.tasks))
    if not opts.yes:
        print(deletion_words(client.delete_tasks(ids), "would delete"))
        if not sys.stdin.isatty():
            print("jupyter orch: not deleted: confirm with --yes", file=sys.stderr)
            return USAGE
        if input("Delete? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return OK
    answer = client.delete_tasks(ids, confirm_delete=True)
    print(json.dumps(answer, indent=2) if opts.json else deletion_words(answer, "deleted"))
    return OK


def _clearable(text: str | None, kind: Callable[[str], Any]) -> Any:
    """An option that `none` clears; KEEP when not given."""
    if text is None:
        return KEEP
    return None if text.lower() == "none" else kind(text)


def cmd_update(client: Client, opts: argparse.Namespace) -> int:
    """Change a task in place; what is not given stays."""
    task = client.find_task(opts.task)
    task.update(
        schedule=opts.schedule,
        timezone=opts.timezone,
        json_args=None if opts.args is None else _json_object(opts.args),
        concurrency_policy=opts.concurrency_policy,
        orchestration=None if opts.orch is None else _orchestration(client, opts.orch).wait_ready(),
        name=KEEP if opts.name is None else opts.name,
        timeout=_clearable(opts.timeout, int),
        keep_runs=_clearable(opts.keep_runs, int),
        keep_days=_clearable(opts.keep_days, float),
        max_log_bytes=_clearable(opts.max_log_bytes, int),
    )
    _emit(opts, task)
    return OK


def cmd_history(client: Client, opts: argparse.Namespace) -> int:
    """Print a task's changes, oldest first (its creation first)."""
    changes = client.find_task(opts.task).history()
    if opts.json:
        print(json.dumps(changes, indent=2, default=str))
        return OK
    for change in changes:
        print(f"{change['at']:%Y-%m-%d %H:%M:%S %Z} by {change['by']}")
        for field, (old, new) in change["changes"].items():
            print(f"  {field}: {json.dumps(old)} -> {json.dumps(new)}")
    return OK


def cmd_rerun(client: Client, opts: argparse.Namespace) -> int:
    """Run a run again (a manual run of its task; a new task for a run-once one)."""
    args = None if opts.args is None else _json_object(opts.args)
    run = rerun(client, client.find_run_id(opts.run), args)
    if not (opts.wait or opts.follow):
        _emit(opts, run)
        return OK
    return _watch(opts, run)


COMMANDS: dict[str, tuple[Command, str]] = {
    "upload": (cmd_upload, "upload a zip, a folder, a script or a notebook"),
    "run-once": (cmd_run_once, "run an orchestration once"),
    "schedule": (cmd_schedule, "run an orchestration on a cron schedule"),
    "continuous": (cmd_continuous, "run an orchestration continuously"),
    "orchestrations": (cmd_orchestrations, "list the orchestrations of the workspace"),
    "tasks": (cmd_tasks, "list the tasks of the workspace"),
    "runs": (cmd_runs, "list a task's runs, newest first"),
    "logs": (cmd_logs, "print a run's log"),
    "output": (cmd_output, "write a notebook run's executed notebook"),
    "kill": (cmd_kill, "kill a task: no more runs, active runs ended"),
    "delete": (cmd_delete, "delete tasks with their runs, logs and outputs"),
    "pause": (cmd_pause, "pause a scheduled or continuous task"),
    "resume": (cmd_resume, "resume a paused task"),
    "update": (cmd_update, "change a task: schedule, zone, arguments, timeout, retention ..."),
    "history": (cmd_history, "print a task's changes"),
    "rerun": (cmd_rerun, "run a run again, with its arguments or new ones"),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the Jupyter server's URL (default: found)")
    common.add_argument("--token", help="its token (default: found with the server)")
    common.add_argument("--workspace", help="workspace id or name (default: 1, 'default')")
    common.add_argument("--json", action="store_true", help="print the server's JSON")
    parser = argparse.ArgumentParser(
        prog="jupyter orch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {
        name: sub.add_parser(name, parents=[common], help=h) for name, (_, h) in COMMANDS.items()
    }
    _add_arguments(subs)
    return parser


def _add_arguments(subs: dict[str, argparse.ArgumentParser]) -> None:
    subs["upload"].add_argument(
        "path", help="a .zip, a folder, a .py file (its main.py) or a .ipynb (its main.ipynb)"
    )
    subs["upload"].add_argument("--name", help="the orchestration's name (default: the file's)")
    subs["upload"].add_argument("--wait", action="store_true", help="wait until packaging ends")
    for name in ("run-once", "schedule", "continuous"):
        parser = subs[name]
        parser.add_argument("orch", help="an orchestration id or name, or a path to upload")
        if name == "schedule":
            parser.add_argument("cron", help="5 fields, or 6 with seconds first; quote it")
            parser.add_argument("--timezone", help="an IANA time zone (default UTC)")
        parser.add_argument("--name", help="the task's name (default: the orchestration's)")
        parser.add_argument("--args", metavar="JSON", help="the task's arguments, a JSON object")
        if name != "continuous":
            parser.add_argument("--timeout", type=int, help="end a run after this many seconds")
        parser.add_argument("--wait", action="store_true", help="wait for the first run's end")
        parser.add_argument("--follow", action="store_true", help="print its output live")
    subs["tasks"].add_argument("--killed", action="store_true", help="list killed tasks too")
    _add_paging(subs["tasks"], "tasks", "task", TASK_LIMIT)
    subs["runs"].add_argument("task", help=TASK_REF)
    subs["runs"].add_argument("--status", help="running, success, failure, timed_out or all")
    _add_paging(subs["runs"], "runs", "run", RUN_LIMIT)
    subs["logs"].add_argument("run", help=RUN_REF)
    subs["logs"].add_argument("-f", "--follow", action="store_true", help="follow to the end")
    subs["logs"].add_argument("--limit", type=int, help="only the last N lines")
    subs["logs"].add_argument("--timestamps", action="store_true", help="show times, streams")
    subs["output"].add_argument("run", help=RUN_REF + " (of a notebook orchestration)")
    subs["output"].add_argument(
        "-o", "--output", metavar="FILE", help="write it to FILE (default: stdout)"
    )
    for name in ("kill", "pause", "resume", "update", "history"):
        subs[name].add_argument("task", help=TASK_REF)
    _add_update_arguments(subs["update"])
    subs["delete"].add_argument("tasks", nargs="+", metavar="task", help=TASK_REF)
    subs["delete"].add_argument(
        "--yes", action="store_true", help="delete without asking (runs going are killed)"
    )
    subs["rerun"].add_argument("run", help=RUN_REF)
    subs["rerun"].add_argument(
        "--args", metavar="JSON", help="the run's arguments (default: its own)"
    )
    subs["rerun"].add_argument("--wait", action="store_true", help="wait for the new run's end")
    subs["rerun"].add_argument("--follow", action="store_true", help="print its output live")


def _add_update_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="the task's new name")
    parser.add_argument("--schedule", metavar="CRON", help="a new cron schedule; quote it")
    parser.add_argument("--timezone", help="the schedule's IANA time zone")
    parser.add_argument("--args", metavar="JSON", help="the task's arguments, a JSON object")
    parser.add_argument("--timeout", metavar="S", help="seconds a run may take; none: no limit")
    parser.add_argument(
        "--concurrency-policy", choices=("allow", "forbid", "replace"), help="scheduled tasks"
    )
    parser.add_argument("--keep-runs", metavar="N", help="runs kept; none: the server's setting")
    parser.add_argument("--keep-days", metavar="D", help="days kept; none: the server's setting")
    parser.add_argument(
        "--max-log-bytes", metavar="B", help="each run's log cap; none: the server's setting"
    )
    parser.add_argument("--orch", help="new code: an orchestration id or name, or a path")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_paging(parser: argparse.ArgumentParser, noun: str, one: str, limit: int) -> None:
    """--limit N (or --all), and --after ID for the next page."""
    how_many = parser.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit",
        type=_positive,
        default=limit,
        metavar="N",
        help=f"only the newest N {noun} (default {limit})",
    )
    how_many.add_argument(
        "--all", action="store_true", help=f"every one of the {noun}, fetched page by page"
    )
    parser.add_argument(
        "--after", metavar="ID", help=f"the {noun} after {one} ID (the last of the previous page)"
    )


if __name__ == "__main__":
    sys.exit(main())
