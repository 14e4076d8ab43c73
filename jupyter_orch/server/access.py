"""What one caller may see and act on: the ownership rule, in one place.

A user sees and acts on their own orchestrations and tasks (and those tasks' runs), and on
everything in the workspaces they are a member of; admins, and the one user of a server that
is not multi-user, on everything. Whatever else exists is answered as if it did not (404):
the service looks records up through a `Scope` and raises `Missing` for what it does not see,
and listings carry the scope's condition into their SQL (`Scope.visible`).

Workspace id 1 is the `default` workspace of a single-user server. On a multi-user server
each user has a default workspace of their own, made on first use, and a request naming
workspace 1 means the caller's own default workspace: clients written for one user (that
send `workspace_id: 1`) keep working, and the shared `default` never mixes users' things.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import Missing
from .identity import Caller
from .models import Visible

#: The workspace id that names the caller's default workspace (the `default` workspace itself
#: on a single-user server).
DEFAULT_WORKSPACE = 1


@dataclass(frozen=True)
class Scope:
    """One caller's view: their default workspace and the workspaces they are a member of
    (None: every workspace, for admins and single-user servers)."""

    caller: Caller
    default_workspace: int = DEFAULT_WORKSPACE
    member_of: frozenset[int] | None = None

    @property
    def user(self) -> str:
        """The caller's name: the owner of what this request creates."""
        return self.caller.name

    @property
    def everything(self) -> bool:
        """Whether the caller sees every workspace and everything in it."""
        return self.member_of is None

    @property
    def visible(self) -> Visible | None:
        """The condition a listing adds (own things, or in a member workspace); None: all."""
        if self.member_of is None:
            return None
        return (self.caller.name, tuple(sorted(self.member_of)))

    def workspace_id(self, workspace_id: int) -> int:
        """A workspace id of a request, with 1 read as the caller's default workspace."""
        return self.default_workspace if workspace_id == DEFAULT_WORKSPACE else workspace_id

    def workspace_ids(self, workspace_ids: Iterable[int]) -> list[int]:
        """Workspace ids of a request filter, read as `workspace_id` reads one."""
        return list(dict.fromkeys(self.workspace_id(w) for w in workspace_ids))

    def sees_workspace(self, workspace_id: int) -> bool:
        """Whether the caller sees a workspace (is a member of it, or sees everything)."""
        return self.member_of is None or workspace_id in self.member_of

    def sees(self, owner: str, workspace_id: int) -> bool:
        """Whether the caller sees a thing owned by `owner` in a workspace."""
        return self.sees_workspace(workspace_id) or owner == self.caller.name

    def check(self, kind: str, ident: object, owner: str, workspace_id: int) -> None:
        """`Missing` unless the caller sees this thing: others' things do not exist for them."""
        if not self.sees(owner, workspace_id):
            raise Missing(kind, ident)

    def check_workspace(self, workspace_id: int) -> None:
        """`Missing` unless the caller sees this workspace."""
        if not self.sees_workspace(workspace_id):
            raise Missing("workspace", workspace_id)


def single_user(caller: Caller) -> Scope:
    """The scope of a server's one user: everything, with `default` as default workspace."""
    return Scope(caller)
