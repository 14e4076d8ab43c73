"""Test doubles and record builders shared by the tests: a hand-moved clock, an executor whose
runs end when the test says so, rows to start from, tiny wheels for offline builds, and an
identity provider with several users."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import sqlite3
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

from jupyter_orch.server import retention_queries
from jupyter_orch.server.executors import Executor, ExitRecord, RunSpec
from jupyter_orch.server.models import (
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    Task,
    TaskStatus,
    new_id,
)
from jupyter_orch.server.retention_queries import Pruned
from jupyter_orch.server.store import Store

T = TypeVar("T")
UTC = timezone.utc
START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


class FakeExecutor(Executor):
    """Records launches; each run ends when the test says so."""

    def __init__(self) -> None:
        self.launched: list[RunSpec] = []
        self.pending: dict[str, asyncio.Future[ExitRecord]] = {}

    async def launch(self, spec: RunSpec) -> asyncio.Future[ExitRecord]:
        self.launched.append(spec)
        future: asyncio.Future[ExitRecord] = asyncio.get_running_loop().create_future()
        self.pending[spec.run_id] = future
        return future

    async def reattach(self, run_id: str, run_dir: Path) -> asyncio.Future[ExitRecord]:
        raise AssertionError("not used here")

    def kill(self, run_id: str) -> bool:
        self.end(run_id, RunStatus.KILLED)
        return True

    def end(self, run_id: str, status: RunStatus) -> None:
        future = self.pending.pop(run_id)
        future.set_result(ExitRecord(status, 0, "test", datetime.now(UTC)))


class BlockingStore:
    """A test's hands on a store: each of its methods runs on the store's own thread (the
    store's rule) and the test waits for it; `sql` runs a statement there."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self.store.call_blocking(functools.partial(method, *args, **kwargs))

        return blocking

    def sql(self, statement: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """The rows of one statement."""
        return self.store.call_blocking(lambda: self.store.db.execute(statement, params).fetchall())

    def with_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)`, on the store's thread."""
        return self.store.call_blocking(lambda: fn(self.store.db))

    def prune_due(self, *args: Any) -> Pruned:
        """One retention pass's queries (`retention_queries.prune_due`), on the store's thread."""
        return self.with_connection(lambda db: retention_queries.prune_due(db, *args))

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def open_store(path: Path) -> BlockingStore:
    """A new store at `path`, opened, for a test's direct use."""
    store = Store(path)
    store.open()
    return BlockingStore(store)


def orchestration(store: BlockingStore) -> Orchestration:
    """A ready orchestration in the store."""
    orch = Orchestration(
        id=new_id(),
        name="o",
        file_name="o.zip",
        file_size=1,
        sha="0" * 64,
        status=OrchestrationStatus.READY,
        owner_id="me",
        workspace_id=1,
        entrypoint="main.py",
        requirements=None,
        created_at=START,
        updated_at=START,
    )
    store.insert_orchestration(orch)
    return orch


def scheduled_task(
    store: BlockingStore,
    orch: Orchestration,
    schedule: str,
    name: str | None = None,
    **extra: object,
) -> Task:
    """A started scheduled task in the store."""
    task = Task(
        id=new_id(),
        name=name,
        workspace_id=1,
        orch_id=orch.id,
        orch_sha=orch.sha,
        owner_id="me",
        status=TaskStatus.STARTED,
        run_type=RunType.SCHEDULED,
        input_data={},
        schedule=schedule,
        timezone="UTC",
        created_at=START - timedelta(hours=1),
        updated_at=START,
        **extra,  # type: ignore[arg-type]
    )
    store.insert_task(task)
    return task


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel `name==version` whose package holds `__version__`, in `folder`."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n',
        f"{info}/METADATA": metadata + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [
        f"{path},{_digest(text.encode())},{len(text.encode())}" for path, text in files.items()
    ]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@dataclass
class TokenUser(User):
    """A user of `TokenUsers`: a `jupyter_server` user with an admin flag."""

    admin: bool = False


class TokenUsers(IdentityProvider):
    """An identity provider that knows users by their own tokens: `alice-token` is alice,
    `bob-token` bob, `admin-token` admin (an admin), as a Hub's identity provider would."""

    users: ClassVar[dict[str, tuple[str, bool]]] = {
        "alice-token": ("alice", False),
        "bob-token": ("bob", False),
        "admin-token": ("admin", True),
    }

    def get_user(self, handler: web.RequestHandler) -> User | None:
        """The user whose token the request carries, or None."""
        known = self.users.get(self.get_token(handler) or "")
        if known is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]  # no XSRF for tokens
        return TokenUser(known[0], admin=known[1])
