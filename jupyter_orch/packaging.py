"""Task environments: from an orchestration's requirements.txt to a Python that can run it.

An environment is keyed by a hash of the normalised requirements, the Python version and the
platform, built once, and shared by every orchestration that asks for the same thing. It is a
virtual environment that also sees the server's own packages, so the project's SDK is always
importable, while the versions it installs itself come first on `sys.path` and win.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError

READY_MARK = ".ready"

# Lines that would fetch from elsewhere or run arbitrary build options.
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|\s@\s|^@|^[./~]", re.IGNORECASE)


@dataclass
class BuildResult:
    """The outcome of preparing an environment: a failure is data."""

    key: str
    python: str | None
    log: str
    seconds: float
    error: str | None = None


def _requirement_lines(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def normalise_requirements(text: str) -> list[str]:
    """Requirement lines without comments, blanks, case or order differences."""
    return sorted({re.sub(r"\s+", "", line).lower() for line in _requirement_lines(text)})


def check_requirements(text: str, allow_options: bool) -> None:
    """Reject lines that point the installer elsewhere, unless the operator allows them."""
    if allow_options:
        return
    for line in _requirement_lines(text):
        if line.startswith("-"):
            raise ArchiveError(
                f"requirements.txt: option line {line!r} is not allowed "
                "(indexes, editable installs and nested files are set by the server's operator)"
            )
        if _URL.search(line):
            raise ArchiveError(
                f"requirements.txt: direct reference {line!r} is not allowed; name a package "
                "and version from the configured index instead"
            )


def env_key(lines: list[str], python_version: str | None = None) -> str:
    """The environment's identity: requirements, Python version and platform."""
    version = python_version or ".".join(map(str, sys.version_info[:3]))
    ident = "\n".join([f"python={version}", f"platform={sys.platform}-{platform.machine()}"])
    return hashlib.sha256((ident + "\n" + "\n".join(lines)).encode()).hexdigest()[:32]


def env_python(env_dir: Path) -> Path:
    """The interpreter of an environment."""
    return env_dir / "bin" / "python"


class Packager:
    """Builds environments off the event loop, a bounded number at a time, each key once."""

    def __init__(self, envs_dir: Path, max_parallel: int = 2, python: str = sys.executable) -> None:
        self.envs_dir = envs_dir
        self.python = python
        self._slots = asyncio.Semaphore(max_parallel)
        self._building: dict[str, asyncio.Future[BuildResult]] = {}

    def clean_incomplete(self) -> None:
        """Remove environments whose build did not finish (a crash mid-build)."""
        if not self.envs_dir.is_dir():
            return
        for env in self.envs_dir.iterdir():
            if env.is_dir() and not (env / READY_MARK).exists():
                shutil.rmtree(env, ignore_errors=True)

    async def prepare(self, lines: list[str]) -> BuildResult:
        """An environment for these requirements: reused if built, else built once."""
        key = env_key(lines)
        env = self.envs_dir / key
        if (env / READY_MARK).exists():
            return BuildResult(key, str(env_python(env)), "environment reused\n", 0.0)
        pending = self._building.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build(key, env, lines))
            self._building[key] = pending
            pending.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(pending)

    async def _build(self, key: str, env: Path, lines: list[str]) -> BuildResult:
        async with self._slots:
            started = time.monotonic()
            shutil.rmtree(env, ignore_errors=True)
            env.parent.mkdir(parents=True, exist_ok=True)
            reqs = env.parent / f".{key}.requirements.txt"
            reqs.write_text("\n".join(lines) + "\n", encoding="utf-8")
            log: list[str] = []
            steps = [
                [self.python, "-m", "venv", "--system-site-packages", str(env)],
                [
                    str(env_python(env)),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                    str(reqs),
                ],
            ]
            error = None
            for argv in steps:
                code, output = await _run(argv)
                log.append(f"$ {' '.join(argv)}\n{output}")
                if code != 0:
                    error = _summarise_failure(output, code)
                    break
            reqs.unlink(missing_ok=True)
            seconds = time.monotonic() - started
            if error is not None:
                shutil.rmtree(env, ignore_errors=True)
                return BuildResult(key, None, "".join(log), seconds, error)
            (env / READY_MARK).write_text(f"{seconds:.3f}\n", encoding="utf-8")
            return BuildResult(key, str(env_python(env)), "".join(log), seconds)


async def _run(argv: list[str]) -> tuple[int, str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _summarise_failure(output: str, code: int) -> str:
    """The installer's most telling line (its last ERROR line), for the orchestration's error."""
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR")]
    if errors:
        return errors[-1] if len(errors) == 1 else f"{errors[0]} ({errors[-1]})"
    tail = [line.strip() for line in output.splitlines() if line.strip()]
    return tail[-1] if tail else f"installer exited with code {code}"
