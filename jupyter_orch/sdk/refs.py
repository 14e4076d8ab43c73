"""Tasks and runs named as people name them: a full id, the short id the UI shows (the first
characters of the id), or a task's name.

A short id is accepted when exactly one task (or run) has an id that starts with it; several
are an error listing them. A name means the one live task of that name (not killed or ended),
or when none is live, the newest task of that name. Short run ids are looked up among the
newest runs of every task (`RUN_SCAN` each): the runs the sidebar, the panel and tables show.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import OrchClientError

if TYPE_CHECKING:
    from .client import Client

#: The fewest characters of an id taken as a short id.
SHORT_MIN = 4
#: Runs per task searched for a short run id.
RUN_SCAN = 50
#: Candidates an ambiguity error lists.
SHOWN = 10
#: Task statuses of tasks that make no more runs.
ENDED = frozenset({"success", "failed", "timed_out", "killed"})
_SHORT = re.compile(r"[0-9a-fA-F-]+")


class AmbiguousId(OrchClientError):
    """A short id or name fits several tasks or runs."""


class UnknownId(OrchClientError):
    """A short id or name fits no task or run."""


def full_id(ref: str) -> str | None:
    """The canonical form of a full UUID, or None."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        return None


def is_short_id(ref: str) -> bool:
    """Whether `ref` could be the start of an id."""
    return len(ref) >= SHORT_MIN and _SHORT.fullmatch(ref) is not None


def _all_tasks(client: Client, run_limit: int) -> Iterator[dict[str, Any]]:
    """Every task of every workspace, killed ones too (the server's JSON)."""
    answer = client._post("task/list", {"run_limit": run_limit})
    yield from answer


def _one(kind: str, ref: str, found: list[tuple[str, str]]) -> str:
    """The single id found for `ref`, or an error naming none or the candidates."""
    if len(found) == 1:
        return found[0][0]
    if not found:
        raise UnknownId(f"no {kind} has the id or name {ref!r}")
    listed = "; ".join(f"{ident} ({label})" for ident, label in found[:SHOWN])
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    raise AmbiguousId(f"{ref!r} fits {len(found)} {kind}s: {listed}{more}; give more of the id")


def _label(task: dict[str, Any]) -> str:
    name = task.get("name") or "no name"
    return f"{name}, {task.get('status')}"


def task_id(client: Client, ref: str, by_name: bool = False) -> str:
    """The id of the task `ref` names: a full id, a unique short id, or (with `by_name`) a
    name: of the one live task that has it, or, when none does, of the newest task that had
    it (several live tasks of one name are an error listing them)."""
    whole = full_id(ref)
    if whole is not None:
        return whole
    if not is_short_id(ref) and not by_name:
        raise UnknownId(
            f"{ref!r} is not a task id (a UUID, or at least {SHORT_MIN} of its first characters)"
        )
    tasks = list(_all_tasks(client, 0))
    found = [
        (t["id"], _label(t)) for t in tasks if is_short_id(ref) and t["id"].startswith(ref.lower())
    ]
    if found or not by_name:
        return _one("task", ref, found)
    named = [t for t in tasks if t.get("name") == ref]  # newest first
    live = [t for t in named if not t.get("killed") and t.get("status") not in ENDED]
    return _one("task", ref, [(t["id"], _label(t)) for t in (live or named[:1])])


def run_id(client: Client, ref: str) -> str:
    """The id of the run `ref` names: a full id, or a unique short id among each task's
    newest `RUN_SCAN` runs."""
    whole = full_id(ref)
    if whole is not None:
        return whole
    if not is_short_id(ref):
        raise UnknownId(
            f"{ref!r} is not a run id (a UUID, or at least {SHORT_MIN} of its first characters)"
        )
    found = [
        (run["run_id"], f"of task {task.get('name') or task['id'][:8]}, {run['status']}")
        for task in _all_tasks(client, RUN_SCAN)
        for run in _runs(task)
        if run["run_id"].startswith(ref.lower())
    ]
    return _one("run", ref, found)


def _runs(task: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return task.get("last_runs") or []
