"""The extension's process-wide settings."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import jupyter_orch

from .conftest import Api


@pytest.fixture
def orch_config() -> dict[str, Any]:
    return {"kill_grace_seconds": 1.0, "freeze_startup_objects": True}


async def test_start_up_objects_are_frozen_after_start(api: Api) -> None:
    """Full collections then skip what the server made while starting (no 100 ms stalls)."""
    gc.unfreeze()
    try:
        await api.ok("workspaces/list", {})
        for _ in range(50):  # the freeze comes a second after the extension's start
            if gc.get_freeze_count() > 0:
                break
            await asyncio.sleep(0.1)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


async def test_engine_info_names_this_server_as_the_engine(api: Api) -> None:
    info = await api.ok("engine/info")
    assert info["kind"] == "server"
    assert info["name"] == ""
    assert info["label"] == "this Jupyter server"
    assert info["version"] == jupyter_orch.__version__
    assert info["user"]  # whoever the server's identity provider says
