"""A locked database is a 503 with Retry-After; a damaged one a 503 saying how to recover."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .conftest import Api


async def test_a_locked_database_is_a_503_to_retry(api: Api, data_dir: Path) -> None:
    await api.ok("workspaces/list")  # started: the database exists
    holder = sqlite3.connect(data_dir / "orch.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # as another process writing for long would
        response = await api.call("workspaces/create", {"workspace_name": "blocked"})
        assert response.code == 503, response.body
        assert response.headers["Retry-After"] == "5"
        assert "try again" in json.loads(response.body)["message"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await api.ok("workspaces/create", {"workspace_name": "blocked"})


class TestDamaged:
    """A database file that is not a database."""

    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> Path:
        """A data directory whose database file is not a database."""
        data = tmp_path / "orch-data"
        data.mkdir()
        (data / "orch.db").write_bytes(b"not a database at all\n" * 500)
        return data

    async def test_it_is_a_503_saying_how_to_recover(
        self, api: Api, data_dir: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        for path in ("task/list", "orchestration/list_all", "workspaces/list"):
            response = await api.call(path, {})
            assert response.code == 503, (path, response.body)
            assert response.headers["Content-Type"].startswith("application/json")
            message = json.loads(response.body)["message"]
            assert str(data_dir / "orch.db") in message and ".recover" in message
        records = caplog.get_records("setup") + caplog.get_records("call")
        logged = [r for r in records if "cannot be read" in r.getMessage()]
        assert logged and ".recover" in logged[0].getMessage()
