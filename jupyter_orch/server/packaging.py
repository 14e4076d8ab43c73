"""Task environments: from an orchestration's requirements.txt to a Python that can run it.

An environment is keyed by a hash of the normalised requirements, the Python version, the
platform and whether it is layered, built once (with uv, its cache shared by every build;
`python -m venv` + pip when uv is missing), and shared by every orchestration that asks for the
same thing. By default it is **layered**: the server's site-packages come after its own on
`sys.path` (a `.pth` file), so what the server's kernel imports a run imports, and the versions
the requirements pin win. An **isolated** one (`OrchApp.isolated_environments`) sees only what
it installed. Either way the project's SDK and its dependencies come after its own packages
(`envs/.sdk`, another `.pth` file): `import jupyter_orch` always works. A notebook's environment
whose requirements do not name ipython also gets the server's IPython the same way
(`ipython_layer.py`), and a key of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import platform
import shutil
import site
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._proc import runfiles
from . import ipython_layer
from .pipconfig import redact, uv_settings

READY_MARK = ".ready"
LAST_USED = ".last_used"
SDK_DIR = ".sdk"  # envs/.sdk/jupyter_orch -> the server's package: only the SDK, nothing else
UV_CACHE = ".uv-cache"
SDK_PTH = "_jupyter_orch_sdk.pth"
# After SDK_PTH (.pth files are read in name order): the server's own SDK comes first.
SERVER_PTH = "_jupyter_orch_server.pth"
SERVER_KEY_LINE = "layer=server-site-packages"  # in the key of every layered environment
SDK_NEEDS = "requests"  # the SDK's one dependency (and what it needs) linked beside it
# Part of every key: environments of an older layout (they saw the server's site-packages)
# are never reused, only collected.
LAYOUT = "isolated-sdk-pth-1"
INSTALLERS = ("auto", "uv", "pip")
# Variables that put other folders before an environment's own site-packages: a run with an
# environment of its own must not inherit them from the server.
ISOLATING_VARS = ("PYTHONPATH", "PYTHONHOME")

log = logging.getLogger(__name__)
_CROSS = "\u00d7"


@dataclass
class BuildResult:
    """The outcome of preparing an environment: a failure is data."""

    key: str
    python: str | None
    log: str
    seconds: float
    error: str | None = None


def env_key(
    lines: list[str],
    python_version: str | None = None,
    layered: bool = False,
    server_layer: bool = False,
) -> str:
    """The environment's identity: requirements, Python version, platform, and whether the
    server's IPython (`layered`) or its whole site-packages (`server_layer`) are layered in."""
    version = python_version or ".".join(map(str, sys.version_info[:3]))
    ident = [
        f"layout={LAYOUT}",
        f"python={version}",
        f"platform={sys.platform}-{platform.machine()}",
    ]
    if layered:
        ident.append(ipython_layer.KEY_LINE)
    if server_layer:
        ident.append(SERVER_KEY_LINE)
    return hashlib.sha256(("\n".join(ident) + "\n" + "\n".join(lines)).encode()).hexdigest()[:32]


def env_python(env_dir: Path) -> Path:
    """The interpreter of an environment."""
    return env_dir / "bin" / "python"


def isolate(run_env: Mapping[str, str]) -> dict[str, str]:
    """A run's variables without those that would hide its environment's packages."""
    return {k: v for k, v in run_env.items() if k not in ISOLATING_VARS}


# -- the SDK inside every environment ----------------------------------------------------------


def _link_sdk(envs_dir: Path) -> Path:
    """`envs/.sdk/`: links to the server's package and to what its client needs (requests and
    its dependencies, their modules and `.dist-info`); the folder to put on sys.path."""
    sdk = envs_dir / SDK_DIR
    links = {"jupyter_orch": Path(__file__).resolve().parents[1]}  # the package
    links.update(ipython_layer.closure(SDK_NEEDS))
    sdk.mkdir(parents=True, exist_ok=True)
    for name, target in links.items():
        link = sdk / name
        if (link.is_symlink() and Path(os.readlink(link)) == target) or not target.exists():
            continue
        # Replaced atomically: a run starting meanwhile sees the old link or the new one.
        tmp = sdk / f".{name}-{uuid.uuid4().hex}"
        tmp.symlink_to(target, target_is_directory=target.is_dir())
        os.replace(tmp, link)
    return sdk


def server_site_dirs() -> list[str]:
    """The server's site-packages folders (and the user's, where Python reads it)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if Path(d).is_dir()]


def _add_server(env: Path) -> None:
    """Append the server's site-packages (with their own `.pth` files, an editable install's)
    to the environment's sys.path, after its own site-packages and the SDK."""
    site_packages = sorted(env.glob("lib/*/site-packages"))
    if not site_packages:
        raise FileNotFoundError(f"no site-packages in {env}")
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in server_site_dirs())
    (site_packages[0] / SERVER_PTH).write_text(lines, encoding="utf-8")


def _add_sdk(env: Path, sdk: Path) -> None:
    """Append the SDK folder to the environment's sys.path, after its own site-packages."""
    site_packages = sorted(env.glob("lib/*/site-packages"))
    if not site_packages:
        raise FileNotFoundError(f"no site-packages in {env}")
    (site_packages[0] / SDK_PTH).write_text(f"{sdk.resolve()}\n", encoding="utf-8")


def find_uv() -> str | None:
    """The uv binary: the one the `uv` PyPI package ships, else one on PATH."""
    try:
        import uv

        found: str = uv.find_uv_bin()
        return found
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


# -- building ----------------------------------------------------------------------------------


class Packager:
    """Builds environments off the event loop, a bounded number at a time, each key once."""

    def __init__(
        self,
        envs_dir: Path,
        max_parallel: int = 2,
        python: str = sys.executable,
        *,
        installer: str = "auto",
        max_idle_seconds: float = 30 * 86400.0,
        collect_interval: float = 3600.0,
        isolated: bool = False,
    ) -> None:
        if installer not in INSTALLERS:
            raise ValueError(f"installer must be one of {INSTALLERS}, not {installer!r}")
        self.envs_dir = envs_dir.absolute()  # installers run with the folder as cwd
        self.python = python
        self.uv = None if installer == "pip" else find_uv()
        if installer == "uv" and self.uv is None:
            raise RuntimeError("installer 'uv' asked for, but no uv binary was found")
        self.max_idle_seconds = max_idle_seconds
        self.collect_interval = collect_interval
        self.isolated = isolated  # False: the server's site-packages after the environment's
        self.builds = 0  # builds started: tells a reuse from a build (tests, benchmarks)
        self._slots = asyncio.Semaphore(max_parallel)
        self._building: dict[str, asyncio.Future[BuildResult]] = {}

    def clean_incomplete(self) -> None:
        """Remove environments whose build did not finish (a crash mid-build), and leftovers."""
        if not self.envs_dir.is_dir():
            return
        for entry in self.envs_dir.iterdir():
            if entry.name.startswith(".trash-") or (
                entry.is_dir() and not entry.name.startswith(".") and not _ready(entry)
            ):
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.endswith(".requirements.txt") and entry.name.startswith("."):
                entry.unlink(missing_ok=True)
        _link_sdk(self.envs_dir)  # the server's package may have moved since the last start
        ipython_layer.link_layer(self.envs_dir)  # and its IPython may have changed
        ipython_layer.remove_stale(self.envs_dir)

    async def prepare(self, lines: list[str], notebook: bool = False) -> BuildResult:
        """An environment for these requirements (for a notebook: with IPython importable):
        reused if built, else built once."""
        layered = ipython_layer.wanted(lines, notebook)
        key = env_key(lines, layered=layered, server_layer=not self.isolated)
        env = self.envs_dir / key
        if _ready(env):
            self.mark_used(key)
            # A couple of stats, as _ready's: an environment that installed its own IPython
            # (a requirement needed it) was not given the server's.
            note = _layer_note() if layered and not ipython_layer.has_own(env) else ""
            return BuildResult(key, str(env_python(env)), f"{note}environment {key} reused\n", 0.0)
        pending = self._building.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build(key, env, lines, layered))
            self._building[key] = pending
            pending.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(pending)

    async def ensure(self, lines: list[str], notebook: bool = False) -> BuildResult:
        """Like `prepare`, for a run about to start: rebuilds an environment collected since."""
        return await self.prepare(lines, notebook)

    def mark_used(self, key: str) -> None:
        """Record that a run (or an upload) uses this environment now: it is not idle."""
        # One utime, cheaper than a hop to a thread; an environment collected meanwhile is
        # rebuilt by `ensure`.
        with contextlib.suppress(FileNotFoundError):
            (self.envs_dir / key / LAST_USED).touch()

    async def close(self) -> None:
        """Stop builds under way (their installers are killed; clean_incomplete tidies up)."""
        pending = list(self._building.values())
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _build(self, key: str, env: Path, lines: list[str], layered: bool) -> BuildResult:
        async with self._slots:
            self.builds += 1
            started, out = time.monotonic(), [self._header(key, lines)]
            if layered:
                out.append(_layer_note())
            try:
                error = await self._install(key, env, lines, out, layered)
            except OSError as exc:  # a full disk, a vanished folder: still a failed build
                error = f"could not build the environment: {exc}"
            seconds = time.monotonic() - started
            out.append(f"# {'failed: ' + error if error else 'ready'} ({seconds:.2f} s)\n")
            text = redact("".join(out))
            if error is not None:
                await asyncio.to_thread(shutil.rmtree, env, True)
                return BuildResult(key, None, text, seconds, redact(error))
            return BuildResult(key, str(env_python(env)), text, seconds)

    async def _install(
        self, key: str, env: Path, lines: list[str], out: list[str], layered: bool
    ) -> str | None:
        """Run the installer's steps, appending their output to `out`; an error or None."""
        reqs = await asyncio.to_thread(self._start_build, key, env, lines)
        try:
            steps, extra_env, notes = await asyncio.to_thread(self._steps, env, reqs)
            out += [f"# {note}\n" for note in notes]
            for argv in steps:
                code, output = await _run(argv, extra_env, cwd=self.envs_dir)
                out.append(f"$ {' '.join(argv)}\n{output}")
                if code != 0:
                    return _summarise_failure(output, code)
            return await asyncio.to_thread(self._finish_build, env, layered, out)
        finally:
            await asyncio.to_thread(reqs.unlink, True)

    def _start_build(self, key: str, env: Path, lines: list[str]) -> Path:
        shutil.rmtree(env, ignore_errors=True)
        env.parent.mkdir(parents=True, exist_ok=True)
        reqs = env.parent / f".{key}.requirements.txt"  # the server's alone while it builds
        runfiles.write_files(str(reqs.parent), {reqs.name: "\n".join(lines) + "\n"})
        return reqs

    def _steps(self, env: Path, reqs: Path) -> tuple[list[list[str]], dict[str, str], list[str]]:
        """The installer's commands, the variables they need and notes for the build log."""
        python = str(env_python(env))
        if self.uv is None:
            venv = [self.python, "-m", "venv", str(env)]
            pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
            return [venv, [*pip, "-r", str(reqs)]], {}, ["installer: python -m venv + pip"]
        args, extra, notes = uv_settings(os.environ)
        if args:
            notes.append("from the server's pip configuration: " + " ".join(args))
        extra.setdefault("UV_CACHE_DIR", os.environ.get("UV_CACHE_DIR") or self._uv_cache())
        venv = [self.uv, "venv", "--no-project", "--python", self.python, str(env)]
        install = [self.uv, "pip", "install", "--python", python, *args, "-r", str(reqs)]
        return [venv, install], extra, [f"installer: {self.uv}", *notes]

    def _uv_cache(self) -> str:
        # Beside the environments, on one file system: uv then hard-links files from its
        # cache instead of copying them.
        return str(self.envs_dir / UV_CACHE)

    def _header(self, key: str, lines: list[str]) -> str:
        version = ".".join(map(str, sys.version_info[:3]))
        reqs = "".join(f"#   {line}\n" for line in lines)
        kind = "isolated" if self.isolated else "layered over the server's packages"
        return (
            f"# environment {key} ({kind})\n# python {self.python} ({version})\n"
            f"# requirements:\n{reqs}"
        )

    def _finish_build(self, env: Path, layered: bool, out: list[str]) -> str | None:
        """Make the SDK (and, `layered`, the server's IPython) importable and mark the
        environment ready; an error message or None."""
        try:
            _add_sdk(env, _link_sdk(self.envs_dir))
        except OSError as exc:
            return f"could not make the SDK importable: {exc}"
        if not self.isolated:
            try:
                _add_server(env)
            except OSError as exc:
                return f"could not layer the server's packages: {exc}"
            out.append(
                "# layered: the server's packages come after the environment's own "
                f"({', '.join(server_site_dirs())})\n"
            )
        if layered:
            error = self._add_ipython(env, out)
            if error is not None:
                return error
        (env / READY_MARK).write_text(f"{time.time():.3f}\n", encoding="utf-8")
        (env / LAST_USED).touch()
        return None

    def _add_ipython(self, env: Path, out: list[str]) -> str | None:
        """The server's IPython after the environment's packages, unless a requirement
        installed one; an error message or None."""
        if ipython_layer.has_own(env):
            out.append("# ipython: installed by the requirements; the server's is not added\n")
            return None
        try:
            layer = ipython_layer.link_layer(self.envs_dir)
            if layer is None:
                return (
                    "a notebook needs IPython, and the server has none: list it in requirements.txt"
                )
            ipython_layer.add_layer(env, layer)
        except OSError as exc:
            return f"could not make IPython importable: {exc}"
        return None

    # -- garbage collection --------------------------------------------------------------------

    async def collect(self, in_use: set[str], max_idle_seconds: float | None = None) -> list[str]:
        """Remove environments unused for longer than `max_idle_seconds` and not in `in_use`."""
        idle = self.max_idle_seconds if max_idle_seconds is None else max_idle_seconds
        candidates = await asyncio.to_thread(self._idle_keys, idle)
        removed, trash = [], []
        for key in candidates:
            # Checked again here, on the loop where prepare/ensure run: nothing can start using
            # the environment between this check and the rename.
            if key in in_use or key in self._building or key not in self._idle_keys(idle, key):
                continue
            trash.append(self.envs_dir / f".trash-{key}-{uuid.uuid4().hex[:8]}")
            os.replace(self.envs_dir / key, trash[-1])
            removed.append(key)
        for path in trash:
            await asyncio.to_thread(shutil.rmtree, path, True)
        return removed

    def _idle_keys(self, idle: float, only: str | None = None) -> list[str]:
        """Ready environments last used more than `idle` seconds ago."""
        if not self.envs_dir.is_dir():
            return []
        limit = time.time() - idle
        envs = [self.envs_dir / only] if only else sorted(self.envs_dir.iterdir())
        return [
            env.name
            for env in envs
            if not env.name.startswith(".") and _ready(env) and _last_used(env) < limit
        ]

    async def collect_forever(self, in_use: Callable[[], Awaitable[set[str]]]) -> None:
        """Collect idle environments every `collect_interval` seconds, until cancelled."""
        if self.collect_interval <= 0 or self.max_idle_seconds <= 0:
            return  # collection switched off by the operator
        while True:
            await asyncio.sleep(self.collect_interval)
            try:
                removed = await self.collect(await in_use())
            except Exception:  # one failed sweep must not end collection; the next retries
                log.exception("collecting idle environments failed")
            else:
                if removed:
                    log.info("removed %d idle environments: %s", len(removed), removed)


def _layer_note() -> str:
    """What the build log says of a notebook's environment that gets the server's IPython."""
    return (
        f"# ipython: not in requirements.txt; a notebook runs in IPython, so the server's "
        f"(IPython {ipython_layer.version()} and the packages it needs) is importable after "
        f"the environment's own packages ({ipython_layer.LAYER_DIR}); list ipython in "
        "requirements.txt to install one instead\n"
    )


def _ready(env: Path) -> bool:
    return (env / READY_MARK).exists()


def _last_used(env: Path) -> float:
    """When an environment was last used (built, reused or run), as a time stamp."""
    for mark in (LAST_USED, READY_MARK):
        try:
            return (env / mark).stat().st_mtime
        except FileNotFoundError:
            continue
    return 0.0


async def _run(argv: list[str], extra: Mapping[str, str], cwd: Path) -> tuple[int, str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1", UV_NO_PROGRESS="1")
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")  # the server's Python, never a download
    env.update(extra)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=cwd,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _summarise_failure(output: str, code: int) -> str:
    """One line naming the cause, from the installer's output (uv's or pip's)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]  # pip's
    if errors:
        return errors[-1] if len(errors) == 1 else f"{errors[0]} ({errors[-1]})"
    for i, line in enumerate(lines):
        # uv: `error: <what>` then `cause: <why>` lines (a cross and arrows on a terminal).
        if line.startswith(("error:", _CROSS)):
            head = line.split(":", 1)[1] if line.startswith("error:") else line[1:]
            causes = [_cause(c) for c in lines[i + 1 :] if _cause(c)]
            head = head.strip().rstrip(":")
            if not causes:
                return head
            return f"{head}: {causes[0]}" + (f" ({causes[-1]})" if len(causes) > 1 else "")
    return lines[-1] if lines else f"installer exited with code {code}"


def _cause(line: str) -> str:
    for prefix in ("cause:", "├─▶", "╰─▶"):
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return ""
