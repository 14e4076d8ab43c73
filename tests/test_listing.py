"""Listing every task: sent a page at a time, the same tasks and order as paging by hand."""

from __future__ import annotations

import json

import pytest

from jupyter_orch.server import service
from jupyter_orch.server.models import TaskQuery
from jupyter_orch.server.store import Store

from .conftest import Api


async def test_an_unpaged_listing_is_streamed_in_pieces(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "STREAM_PAGE", 3)  # 8 tasks: pieces of 3, 3 and 2
    orch_id = await api.upload({"main.py": "pass\n"})
    await api.wait_orch(orch_id, {"ready"})
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": "0 0 1 1 *"}
    made = [(await api.ok("task/run_scheduled", body, status=201))["id"] for _ in range(8)]

    queries: list[TaskQuery] = []
    read = Store.list_tasks

    def spy(store: Store, query: TaskQuery) -> list:  # type: ignore[type-arg]
        queries.append(query)
        return read(store, query)

    monkeypatch.setattr(Store, "list_tasks", spy)
    response = await api.call("task/list", {"run_limit": 1})
    assert [(q.limit, q.before is not None) for q in queries] == [(3, False), (3, True), (3, True)]
    assert response.headers["Content-Type"].startswith("application/json")
    listed = json.loads(response.body)
    assert [t["id"] for t in listed] == made[::-1]  # newest first, each once

    paged, after = [], None
    while True:
        page = await api.ok("task/list", {"limit": 3, **({"after": after} if after else {})})
        if not page:
            break
        paged += page
        after = page[-1]["id"]
    assert [t["id"] for t in paged] == [t["id"] for t in listed]
    assert await api.ok("task/list", {"workspace_id": 1, "orch_sha": "0" * 64}) == []
