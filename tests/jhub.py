"""A real JupyterHub for tests: the Hub, configurable-http-proxy, Unix users and their servers.

The Hub runs as root (as CI does) with its `dummy` authenticator and the local process
spawner, which starts each user's server as that user's Unix account. Those accounts cannot
enter root's home, where the test interpreter lives, so users' servers (and the hub service)
run from a virtual environment of Debian's Python under /var/tmp, with jupyterhub and a wheel
of this working tree: the environment is built once per set of dependencies and kept; the
wheel is rebuilt and reinstalled for every test session (a few seconds).

configurable-http-proxy comes from npm, pinned by `tests/hub/package-lock.json`
(`npm ci --prefix tests/hub`, which `.ci/run` does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

from .servers import free_port, terminate

TREE = Path(__file__).resolve().parent.parent
PROXY = TREE / "tests" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
SYSTEM_PYTHON = "/usr/bin/python3"
VENVS = Path("/var/tmp/jupyter_orch-hub")
PASSWORD = "orch-test-password"  # the dummy authenticator's shared password
SERVICE = "orch"


def skip_reason() -> str | None:
    """Why a real Hub cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "a real JupyterHub with Unix users needs root"
    if not PROXY.exists():
        return f"configurable-http-proxy is not installed (npm ci --prefix {PROXY.parents[2]})"
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    if shutil.which("useradd") is None:
        return "useradd is missing"
    return None


def _quiet(argv: list[str], **kwargs: Any) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"


def build_wheel(out: Path) -> Path:
    """A wheel of this working tree (with the sidebar the editable install built)."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    _quiet([uv, "build", "--wheel", "--quiet", "-o", str(out), str(TREE)])
    (wheel,) = out.glob("jupyter_orch-*.whl")
    return wheel


def users_venv(wheel: Path) -> Path:
    """A virtual environment every user can run: Debian's Python, jupyterhub, the wheel.

    Its dependencies are installed once per (Python, jupyterhub version, our dependencies)
    and kept; the wheel itself is reinstalled every time."""
    uv = shutil.which("uv")
    assert uv
    hub_version = version("jupyterhub")
    pyproject = (TREE / "pyproject.toml").read_bytes()
    key = hashlib.sha256(
        b"\0".join([SYSTEM_PYTHON.encode(), hub_version.encode(), pyproject])
    ).hexdigest()[:16]
    venv = VENVS / key
    python = str(venv / "bin" / "python")
    VENVS.mkdir(mode=0o755, exist_ok=True)
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        _quiet([uv, "venv", "--quiet", "--python", SYSTEM_PYTHON, str(venv)])
        _quiet(
            [uv, "pip", "install", "--quiet", "--link-mode", "copy", "--python", python,
             str(wheel), f"jupyterhub=={hub_version}"]
        )  # fmt: skip
        (venv / ".complete").touch()
    _quiet(
        [uv, "pip", "install", "--quiet", "--link-mode", "copy", "--python", python,
         "--reinstall-package", "jupyter_orch", "--no-deps", str(wheel)]
    )  # fmt: skip
    return venv


def processes_of(uid: int) -> list[int]:
    """The pids of the processes running as `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                found.append(int(entry))
    return found


class UnixUsers:
    """Unix accounts made for a test run (with homes), removed with everything they ran."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)

    def create(self) -> UnixUsers:
        """Make the accounts (first removing leftovers of an earlier run)."""
        self.remove()
        for name in self.names:
            _quiet(["useradd", "--create-home", "--shell", "/bin/bash", name])
            os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
        return self

    def remove(self) -> None:
        """Kill the accounts' processes, then remove them and their homes."""
        for name in self.names:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            uid = pwd.getpwnam(name).pw_uid
            for _ in range(50):
                pids = processes_of(uid)
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
            subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


class Hub:
    """`jupyterhub` with the proxy, the dummy authenticator, local users' servers and,
    optionally, jupyter_orch as a managed service."""

    def __init__(
        self, workdir: Path, venv: Path, users: list[str], admins: list[str], service: bool
    ) -> None:
        self.workdir = workdir
        self.venv = venv
        self.users = users
        self.admins = admins
        self.service = service
        self.port = free_port()
        self.hub_port = free_port()
        self.service_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/hub/api"
        self.token = secrets.token_hex(24)  # the tests' own service, with admin rights
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        self.log_path = workdir / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # The service's data directory: others must pass through it (a run's files are its
        # owner's), so it is not under pytest's private temporary folder.
        self.data_dir = Path(tempfile.mkdtemp(prefix="orch-hub-data-", dir="/var/tmp"))
        os.chmod(self.data_dir, 0o711)

    def config(self) -> str:
        """The jupyterhub_config.py of this Hub."""
        bin_dir = self.venv / "bin"
        services: list[dict[str, Any]] = [{"name": "tester", "api_token": self.token}]
        roles: list[dict[str, Any]] = [
            {
                "name": "tester",
                "scopes": ["admin:users", "admin:servers", "tokens", "list:users"],
                "services": ["tester"],
            },
        ]
        if self.service:
            services.append(
                {
                    "name": SERVICE,
                    "url": f"http://127.0.0.1:{self.service_port}",
                    "command": [
                        str(bin_dir / "jupyter-orch"),
                        "hub-service",
                        f"--OrchApp.data_dir={self.data_dir}",
                        "--OrchApp.kill_grace_seconds=1",
                    ],
                    "environment": {"PATH": f"{bin_dir}:/usr/bin:/bin"},
                    "oauth_no_confirm": True,
                }
            )
            access = f"access:services!service={SERVICE}"
            found = f"read:services!service={SERVICE}"  # users' servers find the service
            server_scopes = ["users:activity!user", "access:servers!server", access, found]
            roles += [
                {"name": "user", "scopes": ["self", access, found]},
                {"name": "server", "scopes": server_scopes},
            ]
        settings = {
            "ip": "127.0.0.1",
            "port": self.port,
            "hub_ip": "127.0.0.1",
            "hub_port": self.hub_port,
            "db_url": f"sqlite:///{self.workdir / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(self.workdir / "cookie_secret"),
            "pid_file": str(self.workdir / "hub.pid"),
            "authenticator_class": "dummy",
            "spawner_class": "localprocess",
            "services": services,
            "load_roles": roles,
            "cleanup_servers": False,
        }
        lines = [f"c.JupyterHub.{key} = {value!r}" for key, value in settings.items()]
        lines += [
            f"c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]",
            f"c.ConfigurableHTTPProxy.pid_file = {str(self.workdir / 'proxy.pid')!r}",
            f"c.DummyAuthenticator.password = {PASSWORD!r}",
            f"c.Authenticator.allowed_users = {set(self.users)!r}",
            f"c.Authenticator.admin_users = {set(self.admins)!r}",
            f"c.Spawner.cmd = [{str(bin_dir / 'jupyterhub-singleuser')!r}]",
            "c.Spawner.default_url = '/lab'",
            "c.Spawner.env_keep = ['LANG', 'LC_ALL']",
            f"c.Spawner.environment = {{'PATH': {f'{bin_dir}:/usr/bin:/bin'!r}}}",
            "c.Spawner.args = ['--ServerApp.shutdown_no_activity_timeout=0']",
            "c.Spawner.http_timeout = 120",
            "c.Spawner.start_timeout = 120",
        ]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 90.0) -> Hub:
        """Start the Hub (it starts the proxy and the managed service) and wait for it."""
        config = self.workdir / "jupyterhub_config.py"
        config.write_text(self.config())
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTER", "JPY_", "ORCH_"))
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.workdir,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"jupyterhub exited:\n{self.log()}"
            with contextlib.suppress(requests.ConnectionError):
                if self.session.get(f"{self.api}/", timeout=5).ok and self._service_up():
                    return self
            assert time.monotonic() < deadline, f"jupyterhub did not start:\n{self.log()}"
            time.sleep(0.2)

    def _service_up(self) -> bool:
        if not self.service:
            return True
        with contextlib.suppress(requests.ConnectionError):
            answer = requests.get(f"http://127.0.0.1:{self.service_port}/", timeout=5)
            return answer.status_code < 500
        return False

    def stop(self) -> None:
        """Stop the Hub cleanly (it stops the proxy and the service), or kill what is left."""
        self.session.close()
        terminate(self.proc)
        # whatever the Hub started and did not stop (the proxy, the service)
        for name in ("proxy.pid",):
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int((self.workdir / name).read_text()), signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def restart(self) -> Hub:
        """Stop the Hub cleanly (it stops its service and proxy; users' servers keep going),
        then start it again on the same ports and database."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        return self.start()

    def remove_data(self) -> None:
        """Remove the service's data directory (after every run in it ended)."""
        from .servers import end_runs

        end_runs(self.data_dir)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log(self) -> str:
        """What the Hub (and its service) printed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """A Hub API request with the tests' admin token; its JSON answer (or None)."""
        answer = self.session.request(method, f"{self.api}{path}", timeout=60, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def token_for(self, user: str) -> str:
        """A new API token of `user` (with the user's own scopes)."""
        token: str = self.call("POST", f"/users/{user}/tokens", 201, json={})["token"]
        return token

    def start_server(self, user: str, timeout: float = 120.0) -> None:
        """Start a user's server through the Hub's API and wait until it is ready."""
        answer = self.session.post(f"{self.api}/users/{user}/server", timeout=60)
        assert answer.status_code in (201, 202, 400), answer.text  # 400: already running
        deadline = time.monotonic() + timeout
        while True:
            model = self.call("GET", f"/users/{user}")
            server = model.get("servers", {}).get("", {})
            if server.get("ready"):
                return
            assert time.monotonic() < deadline, f"{user}'s server did not start:\n{self.log()}"
            time.sleep(0.3)

    def stop_server(self, user: str, timeout: float = 60.0) -> None:
        """Stop a user's server through the Hub's API (as the idle culler does)."""
        answer = self.session.delete(f"{self.api}/users/{user}/server", timeout=60)
        assert answer.status_code in (202, 204), answer.text
        deadline = time.monotonic() + timeout
        while self.call("GET", f"/users/{user}").get("servers"):
            assert time.monotonic() < deadline, f"{user}'s server did not stop"
            time.sleep(0.3)

    def user_url(self, user: str) -> str:
        """The base URL of a user's server, through the proxy."""
        return f"{self.url}/user/{user}/"

    def service_url(self) -> str:
        """The service's base URL, through the proxy."""
        return f"{self.url}/services/{SERVICE}/"


def read_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(path.read_text(encoding="utf-8"))
