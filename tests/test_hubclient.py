"""Which engine a server uses: its own, or a JupyterHub service (`server/hubclient.py`); the
hub service's settings (`server/hub.py`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jupyter_orch.server.errors import InvalidRequest
from jupyter_orch.server.hub import NotInHub, ServiceAuthorizer, service_config
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


def test_the_hub_service_takes_its_address_from_the_hubs_variables() -> None:
    env = {
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:10101",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/orch/",
        "JUPYTERHUB_API_TOKEN": "secret",
        "JUPYTERHUB_SERVICE_NAME": "orch",
    }
    c = service_config(env)
    assert (c.ServerApp.ip, c.ServerApp.port) == ("127.0.0.1", 10101)
    assert c.ServerApp.base_url == "/services/orch/"
    assert c.ServerApp.jpserver_extensions == {"jupyter_orch": True}
    assert c.OrchApp.hub_service_name == "orch"
    assert c.OrchApp.multi_user is True
    # only the orchestration API is served, to anyone the identity provider let in
    authorizer = ServiceAuthorizer()
    assert authorizer.is_authorized(None, None, "write", "orch")
    for resource in ("kernels", "contents", "terminals", "sessions", "api", "server"):
        assert not authorizer.is_authorized(None, None, "read", resource)


def test_hub_service_outside_a_hub_says_what_is_missing() -> None:
    with pytest.raises(NotInHub, match="JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX"):
        service_config({"JUPYTERHUB_API_TOKEN": "x"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_orch.cli", "hub-service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "runs as a JupyterHub service" in done.stderr
