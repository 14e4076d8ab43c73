"""jupyter_orch with a real JupyterHub: users' servers, the hub service, runs as their owner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .jhub import Hub, UnixUsers, build_wheel, skip_reason, users_venv

pytestmark = [pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]

ALICE, BOB, ADMIN = "orch-alice", "orch-bob", "orch-admin"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The users' environment, with a wheel of this tree."""
    return users_venv(build_wheel(tmp_path_factory.mktemp("wheel")))


@pytest.fixture(scope="module")
def unix_users() -> Iterator[UnixUsers]:
    """alice, bob and an admin as Unix accounts, removed after."""
    users = UnixUsers([ALICE, BOB, ADMIN]).create()
    try:
        yield users
    finally:
        users.remove()


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, venv: Path, unix_users: UnixUsers
) -> Iterator[Hub]:
    """A running Hub with the orchestration service; stopped (with its runs) after."""
    hub = Hub(tmp_path_factory.mktemp("hub"), venv, [ALICE, BOB, ADMIN], [ADMIN], service=False)
    try:
        yield hub.start()
    finally:
        hub.stop()
        unix_users.remove()  # the users' servers and anything they started
        hub.remove_data()


def test_users_servers_have_the_extension(hub: Hub) -> None:
    hub.start_server(ALICE)
    token = hub.token_for(ALICE)
    answer = requests.post(
        f"{hub.user_url(ALICE)}orch/v1/api/workspaces/list",
        json={},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
