"""A workspace, after Wallaroo's: its members and connections (the SDK's other objects are
`resources.py`'s)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import display
from .base import Resource, ResourceList, moment
from .connections import ConnectionList, connection_id, connections_of


class Workspace(Resource):
    """A named group of orchestrations and tasks."""

    kind = "Workspace"
    columns = ("id", "name", "created", "created by")

    def id(self) -> int:
        """The workspace's id."""
        return int(self._data["id"])

    def name(self) -> str:
        """The workspace's name."""
        return str(self._data["name"])

    def created_at(self) -> datetime | None:
        """When the workspace was made."""
        return moment(self._data.get("created_at"))

    def created_by(self) -> str:
        """Who made it."""
        return self._text("created_by")

    def is_default(self) -> bool:
        """Whether it is the caller's default workspace (the one workspace id 1 names)."""
        return bool(self._data.get("default"))

    def users(self) -> list[dict[str, str]]:
        """The members: `{"user_id", "user_type"}` each (`Owner` or `Collaborator`)."""
        answer = self._client._post("workspaces/list_users", {"workspace_id": self.id()})
        return list(answer["users"])

    def add_user(self, user: str) -> Workspace:
        """Make a user (by name) a collaborator: they see and act on what is in it."""
        return self._member("workspaces/add_user", user, "Collaborator")

    def add_owner(self, user: str) -> Workspace:
        """Make a user (by name) an owner: a collaborator who also manages the members."""
        return self._member("workspaces/add_user", user, "Owner")

    def remove_user(self, user: str) -> Workspace:
        """Remove a user (by name) from the members."""
        return self._member("workspaces/remove_user", user, None)

    def _member(self, endpoint: str, user: str, kind: str | None) -> Workspace:
        body: dict[str, Any] = {"workspace_id": self.id(), "user_id": user}
        if kind is not None:
            body["user_type"] = kind
        self._client._post(endpoint, body)
        return self

    def fields(self) -> list[tuple[str, str]]:
        """Fields shown when displayed."""
        return [
            ("name", self.name()),
            ("created", display.short_time(self._data.get("created_at"))),
            ("created by", display.cell(self._data.get("created_by"))),
        ]

    def row(self) -> list[str]:
        """Cells of a workspace table."""
        return [self._key, *(value for _, value in self.fields())]

    def add_connection(self, name: str) -> None:
        """Add the connection of this name to the workspace."""
        body = {"workspace_id": self.id(), "connection_id": connection_id(self._client, name)}
        self._client._post("connections/add_to_workspace", body)

    def remove_connection(self, name: str) -> None:
        """Remove the connection of this name from the workspace."""
        body = {"workspace_id": self.id(), "connection_id": connection_id(self._client, name)}
        self._client._post("connections/remove_from_workspace", body)

    def list_connections(self) -> ConnectionList:
        """The connections added to the workspace."""
        return connections_of(self._client, self.id())


class WorkspaceList(ResourceList[Workspace]):
    """Workspaces, displayed as a table."""

    columns = Workspace.columns
    empty = "(no workspaces)"
