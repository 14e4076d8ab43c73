"""Which engine a server uses: its own, or a JupyterHub service (`server/hubclient.py`)."""

from __future__ import annotations

import pytest

from jupyter_orch.server.errors import InvalidRequest
from jupyter_orch.server.hubclient import find_hub_service, multipart_frame


def test_the_setting_names_the_service() -> None:
    url = "http://127.0.0.1:10101/services/orch"
    assert find_hub_service({}, url, "orch") == url + "/"


def test_outside_a_hub_the_engine_is_local() -> None:
    assert find_hub_service({}, "", "orch") is None
    # a Hub's variables without a user are not a user's server (the service itself)
    env = {"JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api", "JUPYTERHUB_API_TOKEN": "x"}
    assert find_hub_service(env, "", "orch") is None
    # asking is switched off
    assert find_hub_service({**env, "JUPYTERHUB_USER": "alice"}, "", "") is None


def test_a_hub_that_cannot_be_reached_leaves_the_engine_local() -> None:
    env = {
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",  # nothing listens on port 9
        "JUPYTERHUB_API_TOKEN": "x",
        "JUPYTERHUB_USER": "alice",
    }
    assert find_hub_service(env, "", "orch") is None


def test_an_upload_frame_refuses_names_that_would_break_it() -> None:
    head, tail = multipart_frame("b0undary", "report.zip", {"workspace_id": 1})
    assert b'filename="report.zip"' in head
    assert tail == b"\r\n--b0undary--\r\n"
    with pytest.raises(InvalidRequest):
        multipart_frame("b", 'a"b.zip', {})
