"""jupyter_orch with a real JupyterHub: users' servers, the hub service, runs as their owner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    hub = Hub(tmp_path_factory.mktemp("hub"), venv, [ALICE, BOB, ADMIN], [ADMIN], service=True)
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


def service_post(hub: Hub, token: str, endpoint: str, body: Any = None) -> requests.Response:
    """POST to the hub service's API (through the Hub's proxy) with a token."""
    return requests.post(
        f"{hub.service_url()}orch/v1/api/{endpoint}",
        json=body or {},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def test_the_service_knows_hub_users_and_serves_only_its_api(hub: Hub) -> None:
    alice = hub.token_for(ALICE)
    answer = service_post(hub, alice, "engine/info")
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert (info["kind"], info["name"], info["user"]) == ("hub-service", "orch", ALICE)
    # no token, or a token without access:services!service=orch: refused
    assert service_post(hub, "", "engine/info").status_code == 403
    assert service_post(hub, hub.token, "engine/info").status_code == 403
    # the Jupyter APIs of the service's own process are nobody's: not even an admin's
    admin = hub.token_for(ADMIN)
    for path in ("api/kernels", "api/contents", "api/terminals", "api/sessions"):
        for token in (alice, admin):
            answer = requests.get(
                f"{hub.service_url()}{path}",
                headers={"Authorization": f"token {token}"},
                timeout=30,
            )
            assert answer.status_code in (403, 404), (path, answer.status_code, answer.text)
