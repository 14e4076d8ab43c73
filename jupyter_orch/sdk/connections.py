"""Connections in the SDK: named, typed settings and credentials (Wallaroo's `Connection`).

`details()` gives the secret settings; displaying a connection never shows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import display
from .base import Resource, ResourceList, moment

if TYPE_CHECKING:
    from .client import Client


class Connection(Resource):
    """A named connection: its type and its (secret) details."""

    kind = "Connection"
    columns = ("id", "name", "type", "created", "workspaces")

    def id(self) -> str:
        """The connection's id."""
        return self._key

    def name(self) -> str:
        """The connection's name."""
        return str(self._data["name"])

    def connection_type(self) -> str:
        """Its type, as given at creation (`ODBC`, `HTTP` …)."""
        return str(self._data["type"])

    def details(self) -> dict[str, Any]:
        """The settings and credentials (secret: never displayed)."""
        return dict(self._data.get("details") or {})

    def created_at(self) -> datetime | None:
        """When the connection was made."""
        return moment(self._data.get("created_at"))

    def workspace_names(self) -> list[str]:
        """The names of the workspaces it was added to."""
        return list(self._data.get("workspace_names") or [])

    def add_connection_to_workspace(self, workspace_id: int) -> None:
        """Add it to a workspace (its tasks' runs may then read it)."""
        body = {"workspace_id": workspace_id, "connection_id": self.id()}
        self._client._post("connections/add_to_workspace", body)
        self._refresh()

    def remove_connection_from_workspace(self, workspace_id: int) -> None:
        """Remove it from a workspace."""
        body = {"workspace_id": workspace_id, "connection_id": self.id()}
        self._client._post("connections/remove_from_workspace", body)
        self._refresh()

    def delete_connection(self) -> None:
        """Delete it (and remove it from every workspace)."""
        self._client._post("connections/delete", {"name": self.name()})

    def _refresh(self) -> None:
        self._data = self._client._post("connections/get_by_id", {"id": self.id()})

    def fields(self) -> list[tuple[str, str]]:
        """Fields shown when displayed (never the details)."""
        return [
            ("name", self.name()),
            ("type", self.connection_type()),
            ("details", "*****"),
            ("created", display.short_time(self._data.get("created_at"))),
            ("workspaces", ", ".join(self.workspace_names())),
        ]

    def row(self) -> list[str]:
        """Cells of a connection table."""
        shown = dict(self.fields())
        return [self._key, shown["name"], shown["type"], shown["created"], shown["workspaces"]]


class ConnectionList(ResourceList[Connection]):
    """Connections, displayed as a table (without their details)."""

    columns = Connection.columns
    empty = "(no connections)"


def connections_of(client: Client, workspace_id: int | None) -> ConnectionList:
    """The connections of a workspace, or every one."""
    body = {} if workspace_id is None else {"workspace_id": workspace_id}
    answer = client._post("connections/list", body)
    return ConnectionList(Connection(client, c) for c in answer["connections"])


def connection_id(client: Client, name: str) -> str:
    """The id of the connection of this name (NotFoundError when none)."""
    return str(client._post("connections/get", {"name": name})["id"])
