"""`run/claim`, `run/log`, `run/end`: the routes by which a remote worker reports a run.

Only the run's own token opens them, for that run only. A token this server does not know
(once it has re-attached its runs) belongs to a run that is over: 410, and the worker stops it.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import User

from .errors import Forbidden, RunGone
from .fields import Fields, as_uuid, parse_json_object, query_integer
from .handlers import PREFIX, OrchHandler


class RunChannelHandler(OrchHandler):
    """POST `run/<what>?run_id=`: one report of a run's remote side."""

    def initialize(self, what: str) -> None:
        """Bind the report this route takes."""
        self.what = what

    async def prepare(self) -> None:  # type: ignore[override]
        """The run's token, and nothing else, for its run."""
        await self.service.ensure_started()  # runs (and their tokens) are re-attached
        run_id = as_uuid("run_id", self.get_query_argument("run_id", "") or "")
        token = self._bearer()
        owner = self.service.runner.run_for_token(token) if token else None
        ended = self.service.runner.ended_run_for_token(token) if token else None
        if owner is None and ended == run_id and self.what == "claim":
            await self.service.channel.claim_once(run_id, self._worker())  # counted, then 409
        if owner is None:
            raise RunGone(f"run {run_id} is not running on this server; stop it")
        if owner != run_id or not self.check_host():
            raise Forbidden("this token is not the run's")
        self.run_id = run_id
        self.current_user = self._jupyter_current_user = User(username=f"run:{run_id}")

    async def post(self) -> None:
        """Claim, log bytes or end."""
        channel = self.service.channel
        assert self.run_id is not None
        answer: Any
        if self.what == "log":
            offset = query_integer("offset", self.get_query_argument("offset", "0") or "", 0)
            answer = await channel.log(self.run_id, offset, self.request.body)
        elif self.what == "claim":
            answer = {"received": await channel.claim(self.run_id, self._worker())}
        else:
            fields = Fields(parse_json_object(self.request.body))
            await channel.end(self.run_id, fields.mapping("exit"), fields.mapping("files", {}))
            answer = {}
        await self.reply(200, answer)

    def _worker(self) -> str:
        return Fields(parse_json_object(self.request.body)).string("worker") or ""


def channel_routes() -> list[tuple[str, type[RunChannelHandler], dict[str, Any]]]:
    """The routes of the run channel."""
    return [
        (f"{PREFIX}/run/{what}", RunChannelHandler, {"what": what})
        for what in ("claim", "log", "end")
    ]
