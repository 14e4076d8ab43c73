"""Finding the orchestration API with no arguments: a run's callback, the environment, or the
Jupyter server around this process.

Standard library only, so a run can use it whatever its requirements.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..runtime import RUN_ID_VAR, TOKEN_VAR, URL_VAR
from .errors import ServerNotFound

HUB_URL_VAR = "JUPYTERHUB_SERVICE_URL"
HUB_PREFIX_VAR = "JUPYTERHUB_SERVICE_PREFIX"
HUB_TOKEN_VAR = "JUPYTERHUB_API_TOKEN"
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}


@dataclass(frozen=True)
class ServerInfo:
    """Where the API answers (`…/orch`), the token to send, and how it was found."""

    api_url: str
    token: str
    source: str


def api_url_of(url: str) -> str:
    """The API's base URL from a server URL or from the API URL itself (ending in `/orch`)."""
    base = url.strip().rstrip("/")
    base = base.removesuffix("/v1/api")
    return base if base.endswith("/orch") else f"{base}/orch"


def server_api_url(server_url: str) -> str:
    """The API's base URL of a Jupyter server whose own URL (with base_url) is given."""
    return server_url.strip().rstrip("/") + "/orch"


def find_server(
    url: str | None = None, token: str | None = None, environ: Mapping[str, str] | None = None
) -> ServerInfo:
    """The first place that names a server; ServerNotFound lists every place tried."""
    env = os.environ if environ is None else environ
    if url:
        return ServerInfo(api_url_of(url), _token_for(url, token, env), "the url argument")
    tried: list[str] = []
    for finder in (_from_env, _from_parent_server, _from_hub, _from_newest_server):
        found = finder(env, tried)
        if found is not None:
            return ServerInfo(found.api_url, token or found.token, found.source)
    raise ServerNotFound(tried)


def _token_for(url: str, token: str | None, env: Mapping[str, str]) -> str:
    """The token given, else the one of a running server with this URL, else the environment's."""
    if token is not None:
        return token
    wanted = api_url_of(url)
    for info in _server_files(runtime_dir(env)):
        if server_api_url(str(info.get("url", ""))) == wanted and info.get("token"):
            return str(info["token"])
    return env.get(TOKEN_VAR, "")


def _from_env(env: Mapping[str, str], tried: list[str]) -> ServerInfo | None:
    url = env.get(URL_VAR)
    if not url:
        tried.append(f"inside a run or the environment: {URL_VAR} is not set")
        return None
    run_id = env.get(RUN_ID_VAR)
    where = f"inside run {run_id}" if run_id else f"{URL_VAR} in the environment"
    return ServerInfo(api_url_of(url), env.get(TOKEN_VAR, ""), where)


def _from_parent_server(env: Mapping[str, str], tried: list[str]) -> ServerInfo | None:
    folder = runtime_dir(env)
    servers = {int(info["pid"]): info for info in _server_files(folder) if _int(info.get("pid"))}
    chain = list(ancestors())
    for pid in chain:
        if pid in servers:
            info = servers[pid]
            source = f"the Jupyter server that started this process (pid {pid})"
            return ServerInfo(server_api_url(str(info["url"])), _file_token(info, env), source)
    pids = ", ".join(map(str, chain))
    tried.append(f"the Jupyter server that started this process: none of pids {pids} in {folder}")
    return None


def _from_hub(env: Mapping[str, str], tried: list[str]) -> ServerInfo | None:
    url = env.get(HUB_URL_VAR)
    if not url or not env.get(HUB_TOKEN_VAR):
        tried.append(f"JupyterHub: {HUB_URL_VAR} or {HUB_TOKEN_VAR} is not set")
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    # A server bound to every interface is reached on the loopback one.
    local = _WILDCARDS.get(host) or _WILDCARDS.get(f"[{host}]")
    netloc = (f"{local}:{parts.port}" if parts.port else local) if local else parts.netloc
    prefix = env.get(HUB_PREFIX_VAR, "/")
    path = parts.path if parts.path.rstrip("/").endswith(prefix.rstrip("/")) else prefix
    server = urlunsplit((parts.scheme, netloc, path, "", ""))
    return ServerInfo(server_api_url(server), env[HUB_TOKEN_VAR], "JupyterHub's environment")


def _from_newest_server(env: Mapping[str, str], tried: list[str]) -> ServerInfo | None:
    folder = runtime_dir(env)
    live = [info for info in _server_files(folder) if pid_alive(_int(info.get("pid")))]
    if not live:
        tried.append(f"running Jupyter servers: no live jpserver-*.json in {folder}")
        return None
    info = max(live, key=lambda i: float(i["_mtime"]))
    source = f"the newest running Jupyter server (pid {info['pid']})"
    return ServerInfo(server_api_url(str(info["url"])), _file_token(info, env), source)


def server_root(api_url: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The Jupyter root folder of the running server whose API is at `api_url` (from its
    `jpserver-*.json`); None when no such file says."""
    env = os.environ if environ is None else environ
    for info in _server_files(runtime_dir(env)):
        if server_api_url(str(info["url"])) == api_url_of(api_url):
            root = info.get("root_dir") or info.get("notebook_dir")
            return Path(str(root)) if root else None
    return None


def _file_token(info: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """A server file's token; a JupyterHub server has none, and takes the hub's token."""
    return str(info.get("token") or env.get(HUB_TOKEN_VAR, ""))


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def runtime_dir(env: Mapping[str, str]) -> Path:
    """Jupyter's runtime folder, where each server writes its `jpserver-<pid>.json`."""
    if env.get("JUPYTER_RUNTIME_DIR"):
        return Path(env["JUPYTER_RUNTIME_DIR"])
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # a run's environment may lack jupyter_core: use its default place
        data = env.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
        return Path(data, "jupyter", "runtime")
    return Path(jupyter_runtime_dir())


def _server_files(folder: Path) -> Iterator[dict[str, Any]]:
    """The readable `jpserver-*.json` files of a folder, with their modification time."""
    for path in folder.glob("jpserver-*.json"):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # a server writing or removing its file right now
        if isinstance(info, dict) and info.get("url"):
            yield {**info, "_mtime": mtime}


def ancestors(pid: int | None = None) -> Iterator[int]:
    """This process and its parents up to (not including) init."""
    current = os.getpid() if pid is None else pid
    for _ in range(64):
        if current <= 1:
            return
        yield current
        current = parent_pid(current)


def parent_pid(pid: int) -> int:
    """A process's parent, read from /proc (0 when unknown)."""
    if pid == os.getpid():
        return os.getppid()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    # The command name in parentheses may hold spaces and parentheses: fields follow the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else 0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True
