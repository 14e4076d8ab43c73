"""The server's executors by name, with the one a task gets when it names none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from ..errors import InvalidRequest, Unavailable
from .base import Executor

LOCAL = "local"


class Executors:
    """Named executors: `local` always, others as configured; one of them is the default."""

    def __init__(self, executors: Mapping[str, Executor], default: str = LOCAL) -> None:
        if default not in executors:
            raise ValueError(
                f"the default executor {default!r} is not one of this server's: "
                f"{', '.join(sorted(executors))}"
            )
        self._executors = dict(executors)
        self.default = default

    @classmethod
    def of(cls, executor: Executor | Executors) -> Executors:
        """A registry as it is, or one executor as the only one (named `local`)."""
        return executor if isinstance(executor, Executors) else cls({LOCAL: executor})

    @property
    def names(self) -> list[str]:
        """The executors' names, the default first."""
        return [self.default, *sorted(n for n in self._executors if n != self.default)]

    def name(self, name: str | None) -> str:
        """The executor a task names (the default for None); InvalidRequest if unknown."""
        if name is None:
            return self.default
        if name not in self._executors:
            raise InvalidRequest(
                "executor", f"unknown executor {name!r}; this server has: {', '.join(self.names)}"
            )
        return name

    def get(self, name: str | None) -> Executor:
        """The executor of this name (the default for None); InvalidRequest if unknown."""
        return self._executors[self.name(name)]

    def known(self, name: str | None) -> Executor | None:
        """The executor of this name if the server has it (runs recorded before names, and
        runs of an executor no longer configured: None)."""
        return self._executors.get(name or LOCAL)

    async def check(self, name: str | None) -> str:
        """The executor's name if runs can start on it now, else Unavailable saying why."""
        resolved = self.name(name)
        try:
            await self._executors[resolved].check()
        except OSError as exc:
            raise Unavailable(f"executor {resolved!r} is unreachable: {exc}") from exc
        return resolved

    async def start(self) -> None:
        """Start them all (an executor that cannot reach its cluster yet still starts)."""
        for executor in self._executors.values():
            await executor.start()

    async def stop(self) -> None:
        """Stop watching runs everywhere (the runs go on)."""
        for executor in self._executors.values():
            with contextlib.suppress(Exception):
                await asyncio.shield(executor.stop())

    def kill(self, run_id: str) -> bool:
        """Ask the executor following a run to stop it."""
        return any(executor.kill(run_id) for executor in self._executors.values())
