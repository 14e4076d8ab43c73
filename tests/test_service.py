"""The service's start and stop: one exit stack, undone newest first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server.lock import SchedulerLock
from jupyter_orch.server.packaging import Packager
from jupyter_orch.server.service import OrchService
from jupyter_orch.server.service_config import ServiceConfig
from jupyter_orch.server.store import Store

from .fakes import FakeExecutor


def spied(order: list[str], name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, noting `name` in `order` when it is called."""

    def spy(*args: Any) -> Any:
        order.append(name)
        return real(*args)

    return spy


async def test_stop_undoes_the_start_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data")
    executor = FakeExecutor()
    service = OrchService(
        config, Store(config.data_dir / "orch.db"), executor, Packager(tmp_path / "data" / "envs")
    )
    order: list[str] = []
    for name, owner, attr in (
        ("timers", service.tasks, "stop"),
        ("packaging", service.packager, "close"),
        ("executor", executor, "stop"),
        ("lock", service.peers.lock, "release"),
        ("database", service.store, "close"),
    ):
        monkeypatch.setattr(owner, attr, spied(order, name, getattr(owner, attr)))
    service.open()
    await service.ensure_started()
    assert service.peers.lock.held and service.tasks.scheduling
    assert order == []

    await service.stop()

    # Timers first, runs' watching next; the lock goes once nothing here schedules or follows
    # runs any more, and the database last.
    assert order == ["timers", "packaging", "executor", "lock", "database"]
    other = SchedulerLock(service.data.scheduler_lock)
    assert other.try_acquire()  # another server can take over
    other.release()
