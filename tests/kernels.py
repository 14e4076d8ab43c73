"""Kernels the test server starts, driven over their channels as a notebook front end does."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Execution:
    """What one execute request produced: its reply and the messages it sent on IOPub."""

    reply: dict[str, Any]
    outputs: list[dict[str, Any]]

    def _stream(self, name: str) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.outputs
            if m["msg_type"] == "stream" and m["content"]["name"] == name
        )

    @property
    def stdout(self) -> str:
        """Everything printed to stdout."""
        return self._stream("stdout")

    @property
    def stderr(self) -> str:
        """Everything printed to stderr."""
        return self._stream("stderr")

    @property
    def data(self) -> list[dict[str, Any]]:
        """The mime bundles displayed (display_data and execute_result)."""
        kinds = ("display_data", "execute_result")
        return [m["content"]["data"] for m in self.outputs if m["msg_type"] in kinds]

    @property
    def error(self) -> tuple[str, str] | None:
        """The error's name and value, when the cell failed."""
        if self.reply["status"] != "error":
            return None
        return self.reply["ename"], self.reply["evalue"]

    @property
    def traceback(self) -> list[str]:
        """The traceback lines sent with the error (none for a usage error)."""
        return [
            line
            for m in self.outputs
            if m["msg_type"] == "error"
            for line in m["content"]["traceback"]
        ]


class Kernel:
    """A kernel the test server started (POST api/kernels), driven over its channels."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def run(self, code: str, timeout: float = 90) -> Execution:
        """Execute code; what it produced, error or not."""
        outputs: list[dict[str, Any]] = []
        reply = await self.client.execute_interactive(
            code, output_hook=outputs.append, timeout=timeout, allow_stdin=False
        )
        return Execution(reply["content"], outputs)

    async def ok(self, code: str, timeout: float = 90) -> Execution:
        """Execute code that must not fail."""
        result = await self.run(code, timeout)
        assert result.error is None, (result.error, result.stderr, result.traceback)
        return result

    async def value(self, expression: str) -> Any:
        """The JSON value of an expression evaluated in the kernel."""
        result = await self.ok(f"import json as _j\nprint(_j.dumps(({expression})))")
        return json.loads(result.stdout.strip().splitlines()[-1])


StartKernel = Callable[[], Awaitable[Kernel]]


def server_url(serverapp: Any) -> str:
    """The test server's URL, with its base_url."""
    url: str = serverapp.connection_url
    return url
