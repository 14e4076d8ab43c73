"""The engine as a managed JupyterHub service: `jupyter orch hub-service`.

The Hub starts it from `c.JupyterHub.services` with its own environment (`JUPYTERHUB_SERVICE_URL`,
`JUPYTERHUB_SERVICE_PREFIX`, `JUPYTERHUB_API_TOKEN`, …). It is a Jupyter server that serves
the orchestration API and nothing else, with its own data directory, independent of every
user's server:

- identity: JupyterHub's own identity provider for Jupyter servers (`HubAuth` for API tokens,
  `HubOAuth` for browsers); only users holding `access:services!service=<name>` get in, and the
  user's Hub model (name, `admin`, scopes) is the request's `current_user`;
- authorization: only the orchestration API (`auth_resource` "orch") and the identity endpoint
  are served; kernels, contents, terminals and every other Jupyter API are refused to everyone,
  admins included (this process is the Hub's, not a user's);
- many users: every caller sees only what they own, admins everything (`OrchApp.multi_user`);
- runs execute as their owner's Unix account where one exists (`OrchApp.run_as_owner`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.authorizer import Authorizer
from traitlets.config import Config

#: The Jupyter resources (`auth_resource` of handlers) the service serves: its API only.
SERVED_RESOURCES = frozenset({"orch"})
NEEDED_VARS = ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_API_TOKEN")


class ServiceAuthorizer(Authorizer):
    """Allows the orchestration API to every user the identity provider let in; refuses every
    other Jupyter API (kernels, contents, terminals …) to everyone."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        """Whether `user` may `action` on `resource`: only the orchestration API."""
        return resource in SERVED_RESOURCES


class NotInHub(RuntimeError):
    """`hub-service` was started outside a JupyterHub."""


def service_config(environ: Mapping[str, str]) -> Config:
    """The Jupyter server's settings for the hub service, from the Hub's variables."""
    missing = [name for name in NEEDED_VARS if not environ.get(name)]
    if missing:
        raise NotInHub(
            "jupyter orch hub-service runs as a JupyterHub service (c.JupyterHub.services "
            f"with a url and this command); not set: {', '.join(missing)}"
        )
    url = urlsplit(environ["JUPYTERHUB_SERVICE_URL"])
    name = environ.get("JUPYTERHUB_SERVICE_NAME", "orch")
    home = Path(environ.get("JUPYTER_ORCH_HUB_HOME") or Path.home())
    c = Config()
    c.ServerApp.ip = url.hostname or "127.0.0.1"
    c.ServerApp.port = url.port or (443 if url.scheme == "https" else 80)
    c.ServerApp.port_retries = 0
    c.ServerApp.base_url = environ["JUPYTERHUB_SERVICE_PREFIX"]
    c.ServerApp.open_browser = False
    c.ServerApp.allow_root = True
    c.ServerApp.jpserver_extensions = {"jupyter_orch": True}
    c.ServerApp.terminals_enabled = False
    c.ServerApp.identity_provider_class = (
        "jupyterhub.singleuser.extension.JupyterHubIdentityProvider"
    )
    c.ServerApp.authorizer_class = ServiceAuthorizer
    # As in users' servers under JupyterHub: Tornado's own XSRF check runs before
    # authentication and knows no tokens; the identity provider checks XSRF on cookie logins.
    c.ServerApp.tornado_settings = {
        "xsrf_cookies": False,
        "headers": {"Content-Security-Policy": "frame-ancestors 'none'"},
    }
    # A folder of the service's own, empty: no user's files are served from here.
    c.ServerApp.root_dir = str(home / f"jupyter-orch-{name}-root")
    c.OrchApp.hub_service_name = name
    # many users, each seeing their own; runs as their owner where the Hub's users have Unix
    # accounts (the service runs as root there)
    c.OrchApp.multi_user = True
    c.OrchApp.run_as_owner = os.geteuid() == 0
    return c


def serve(argv: Sequence[str]) -> None:
    """Start the hub service (the Hub's variables say where) until it is stopped."""
    from jupyter_server.serverapp import ServerApp

    try:
        config = service_config(os.environ)
    except NotInHub as exc:
        print(f"jupyter orch: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    Path(config.ServerApp.root_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    app = ServerApp.instance(config=config)
    # Only this extension: no JupyterLab, terminals or other server extensions installed
    # beside it (find_extensions=False skips the ones enabled in Jupyter's config folders).
    app.initialize(argv=list(argv), find_extensions=False)
    app.start()
