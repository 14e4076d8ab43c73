"""The store: its connection is used on its own thread, and only there; older databases gain
new columns when opened."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from jupyter_orch.server import schema
from jupyter_orch.server.store import Store, WrongThread

from .fakes import open_store, orchestration, scheduled_task


async def test_a_statement_off_the_store_thread_fails_loudly(tmp_path: Path) -> None:
    store = Store(tmp_path / "orch.db")
    store.open()
    try:
        with pytest.raises(WrongThread, match="its own thread only"):
            store.list_workspaces()  # the event loop's thread
        with pytest.raises(WrongThread):
            await asyncio.to_thread(store.count_sha_users, "0" * 64)  # a worker thread
        with pytest.raises(AssertionError):  # what it is: a bug of the caller's
            _ = store.db
        # Through the store's thread, the same calls work.
        assert [w.name for w in await store.call(store.list_workspaces)] == ["default"]
        assert store.call_blocking(store.count_sha_users, "0" * 64) == 0
        assert store.call_blocking(lambda: threading.current_thread().name).startswith("orch-db")
    finally:
        store.close()


def test_a_closed_store_says_so_on_its_thread(tmp_path: Path) -> None:
    store = Store(tmp_path / "orch.db")
    store.open()
    store.call_blocking(store._close_connection)
    with pytest.raises(RuntimeError, match="not open"):
        store.call_blocking(store.list_workspaces)
    store.close()


def test_non_finite_numbers_stored_by_an_older_server_are_read_as_null(tmp_path: Path) -> None:
    """Arguments written before NaN and Infinity were refused still give strict JSON answers."""
    store = open_store(tmp_path / "orch.db")
    try:
        task = scheduled_task(store, orchestration(store), "0 0 1 1 *")
        store.sql(
            "UPDATE tasks SET input_data = ? WHERE id = ?",
            ('{"a": NaN, "b": [Infinity, -Infinity], "c": 1.5}', task.id),
        )
        read = store.get_task(task.id)
        assert read is not None and read.input_data == {"a": None, "b": [None, None], "c": 1.5}
        json.dumps(read.to_json(), allow_nan=False)  # what the handlers send
    finally:
        store.close()


def test_an_older_database_gains_the_columns_added_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column listed in ADDED_COLUMNS is added to a database made without it, once, and
    opening it again changes nothing."""
    db = sqlite3.connect(tmp_path / "orch.db", isolation_level=None)
    schema.prepare(db)
    added = (("tasks", "added_later", "TEXT NOT NULL DEFAULT 'x'"),)
    monkeypatch.setattr(schema, "ADDED_COLUMNS", added)
    schema.prepare(db)
    schema.prepare(db)
    columns = [row[1] for row in db.execute("PRAGMA table_info(tasks)")]
    assert columns.count("added_later") == 1
    db.close()
