"""Which runs retention removes, found and deleted in a few statements over many tasks.

Plain functions over the store's connection, called on the database thread through
`Store.query`. The passes that call it, and the removal of the runs' folders, are `retention.py`'s.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .models import FAILED_STATUSES, RunStatus
from .schema import stored, transaction


@dataclass
class Pruned:
    """What a retention pass deleted, and the tasks it left runs to delete of (a limit hit)."""

    run_ids: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)


def _cutoff(at: datetime, days: float) -> str | None:
    """The creation time before which runs are too old, as stored (None: no run is)."""
    try:
        return stored(at - timedelta(days=days))
    except OverflowError:  # more days than a datetime can count back: nothing is too old
        return None


def prune_due(
    db: sqlite3.Connection,
    task_ids: Sequence[str],
    default_keep: int,
    default_days: float,
    at: datetime,
    limit: int,
    total: int,
) -> Pruned:
    """Apply retention to many tasks at once: find, then delete, the runs they no longer keep.

    Each task keeps its newest `keep_runs` runs and its runs younger than `keep_days` (its
    own settings, else the defaults); running runs and its latest failed run are always
    kept. At most `limit` runs of one task and `total` runs in all are deleted; tasks that
    still have runs to delete are named in `unfinished`. The rows go in one transaction; the
    caller removes the runs' folders.

    One query over the runs' indexes finds the tasks with anything to do (more runs than
    they keep, or an ended run older than the default cutoff): a task with nothing to do
    costs a count and a lookup on the runs' indexes, and no Python. Only the others are
    looked at run by run, and only as far as the limits need.
    """
    ids = list(dict.fromkeys(task_ids))
    if not ids or total <= 0:
        return Pruned()
    at = at.astimezone(timezone.utc)
    cutoffs: dict[float | None, str | None] = {None: _cutoff(at, default_days)}
    rows = db.execute(
        "SELECT id, keep, keep_days, oldest, runs FROM ("
        " SELECT t.id AS id, j.key AS k, COALESCE(t.keep_runs, ?) AS keep,"
        " t.keep_days AS keep_days,"
        " (SELECT COUNT(*) FROM runs AS r WHERE r.task_id = t.id) AS runs,"
        " (SELECT r.created_at FROM runs AS r WHERE r.task_id = t.id AND r.status != ?"
        "  ORDER BY r.created_at LIMIT 1) AS oldest"
        " FROM json_each(?) AS j JOIN tasks AS t ON t.id = j.value)"
        # A task with its own keep_days is looked at below if it has any ended run.
        " WHERE runs > keep OR oldest < CASE WHEN keep_days IS NULL THEN ? ELSE '9999' END"
        " ORDER BY k",
        (default_keep, RunStatus.RUNNING.value, json.dumps(ids), cutoffs[None] or ""),
    ).fetchall()
    pruned = Pruned()
    for row in rows:
        days = row["keep_days"]
        if days not in cutoffs:
            cutoffs[days] = _cutoff(at, days)
        cutoff = cutoffs[days] or ""  # every stored time sorts after ""
        oldest = row["oldest"]
        if row["runs"] <= row["keep"] and (oldest is None or oldest >= cutoff):
            continue  # its own keep_days keeps every run
        budget = min(limit, total - len(pruned.run_ids))
        if budget <= 0:
            pruned.unfinished.append(row["id"])
            continue
        doomed, more = _doomed(db, row["id"], row["keep"], cutoff, budget)
        pruned.run_ids.extend(doomed)
        if more:
            pruned.unfinished.append(row["id"])
    if pruned.run_ids:
        transaction(
            db,
            [
                (
                    "DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))",
                    [json.dumps(pruned.run_ids)],
                )
            ],
        )
    return pruned


def _doomed(
    db: sqlite3.Connection, task_id: str, keep: int, cutoff: str, budget: int
) -> tuple[list[str], bool]:
    """Up to `budget` runs of one task that retention removes, newest first, and whether
    more are left.

    In the order (created_at DESC, id), a run is kept by the rules when it is among the
    first `keep` and not older than the cutoff: that is a prefix of the runs, of length
    `start`. Every later run goes, except running ones and the latest failure, which is
    the first failed run after the prefix when the prefix has none.
    """
    start = db.execute(
        "SELECT COUNT(*) FROM ( SELECT 1 FROM runs WHERE task_id = ? AND created_at >= ? LIMIT ?)",
        (task_id, cutoff, keep),
    ).fetchone()[0]
    failed = tuple(status.value for status in FAILED_STATUSES)
    failure_kept = (
        start > 0
        and db.execute(
            "SELECT 1 FROM ("
            " SELECT status FROM runs WHERE task_id = ?"
            " ORDER BY created_at DESC, id LIMIT ?) WHERE status IN (?, ?) LIMIT 1",
            (task_id, start, *failed),
        ).fetchone()
        is not None
    )
    rows = db.execute(
        "SELECT id, status FROM ("
        " SELECT id, status FROM runs WHERE task_id = ?"
        " ORDER BY created_at DESC, id LIMIT -1 OFFSET ?) WHERE status != ? LIMIT ?",
        (task_id, start, RunStatus.RUNNING.value, budget + 2),
    ).fetchall()
    doomed = []
    for row in rows:
        if not failure_kept and row["status"] in failed:
            failure_kept = True  # the latest failure stays
        else:
            doomed.append(row["id"])
    return doomed[:budget], len(doomed) > budget
