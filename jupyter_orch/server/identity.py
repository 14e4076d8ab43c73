"""Who is asking: the caller of a request, as the engine sees it.

Every request has a caller: a user name and whether that user is an admin. The HTTP layer
makes it from jupyter-server's `current_user` (whatever `IdentityProvider` the server runs
with: its own token, JupyterHub's `HubAuth`/`HubOAuth`, a site's own), or from a run's token;
the engine then decides from the caller alone what the request may see and do (`access.py`).

A server that is not multi-user (`OrchApp.multi_user`, off by default) has one user: every
caller is that user, named as the server's owner, and sees everything, as before users
existed. In multi-user mode the caller is the identity provider's `username`, and an admin
when the provider says so (`admin_flag`) or when `OrchApp.admin_users` names the user.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

#: The JupyterHub custom scope that makes a Hub user an admin of this engine, besides the
#: Hub's own `admin` flag.
HUB_ADMIN_SCOPE = "custom:jupyter_orch:admin"


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: a user name, whether an admin, and the run whose token it
    carries (a run acts as its task's owner, never as an admin in multi-user mode)."""

    name: str
    admin: bool = False
    run_id: str | None = None


def admin_flag(user: Any) -> bool:
    """Whether an identity provider's user is an admin: a true `admin` attribute (a `User`
    subclass of the provider's), or JupyterHub's user model (`hub_user`, which JupyterHub's
    identity provider attaches) with `admin` true or the scope `HUB_ADMIN_SCOPE`."""
    if getattr(user, "admin", False) is True:
        return True
    model = getattr(user, "hub_user", None)
    if not isinstance(model, dict):
        return False
    scopes = model.get("scopes") or ()
    return model.get("admin") is True or HUB_ADMIN_SCOPE in scopes


def caller_of(
    user: Any, *, multi_user: bool, owner: str, admin_users: Collection[str] = ()
) -> Caller:
    """The caller of a request authenticated as `user` (a `jupyter_server.auth.User`)."""
    if not multi_user:
        return Caller(owner, admin=True)
    name = str(user.username)
    return Caller(name, admin=admin_flag(user) or name in admin_users)


def run_caller(owner: str, run_id: str, *, multi_user: bool) -> Caller:
    """The caller of a request carrying a run's token: the run's owner, and no one else."""
    return Caller(owner, admin=not multi_user, run_id=run_id)
