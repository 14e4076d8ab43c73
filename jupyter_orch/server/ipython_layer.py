"""The server's IPython, made importable in the environments of notebook orchestrations.

A notebook run needs IPython: `jupyter_orch.nbrun` runs the cells in IPython's shell. An
environment whose requirements.txt does not name `ipython` gets the server's own rather than
one installed: nothing to download (the index of an air-gapped server may have no IPython), and
nothing the requirements pin is changed. `envs/.ipython` holds links to the server's IPython
and to every package it needs (their top-level modules and packages, and their `.dist-info`
folders), and a `.pth` file in the environment's site-packages names it. A `.pth` entry comes
after site-packages on `sys.path`, so a package the requirements install (a pinned `traitlets`,
say) wins over the server's. Requirements that name `ipython` install their own: nothing is
layered, and the environment is the one a script with the same requirements gets.

A layered environment has a key of its own (`KEY_LINE` is part of it): a script orchestration
with the same requirements never shares an environment in which IPython is importable, nor a
notebook one in which it is not.

`envs/.ipython` is a link to `.ipython-<digest>/`, a folder named after what it links to: a
server whose IPython changed (an upgrade) makes a new folder and swaps the link atomically;
environments name the link, so they follow.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

LAYER_DIR = ".ipython"  # envs/.ipython -> .ipython-<digest>/
LAYER_PTH = "_jupyter_orch_ipython.pth"
KEY_LINE = "layer=server-ipython"  # in the key of every layered environment
ROOT = "ipython"
_COMPLETE = ".complete"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")  # a normalised requirement line's name


def wanted(lines: Iterable[str], notebook: bool) -> bool:
    """Whether an environment gets the server's IPython: for a notebook, unless its (normalised)
    requirements name ipython."""
    return notebook and ROOT not in requirement_names(lines)


def requirement_names(lines: Iterable[str]) -> set[str]:
    """The package names of normalised requirement lines (options left out)."""
    names = set()
    for line in lines:
        match = _NAME.match(line)
        if match is not None:
            names.add(match.group(0))
    return names


def version() -> str | None:
    """The server's IPython version; None when it has none."""
    try:
        return importlib.metadata.version(ROOT)
    except importlib.metadata.PackageNotFoundError:
        return None


def closure(root: str = ROOT) -> dict[str, Path]:
    """What to link: the top-level modules, packages and `.dist-info` folders of the server's
    `root` distribution and of every one it requires (markers evaluated for this Python,
    extras left out), by name."""
    seen: set[str] = set()
    todo, found = [root], dict[str, Path]()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement this platform does not install
        for top in _top_level(dist):
            found.setdefault(top, Path(str(dist.locate_file(top))))
        todo += _requirements(dist)
    return found


def _top_level(dist: importlib.metadata.Distribution) -> set[str]:
    """The first parts of a distribution's installed files: its modules, packages, dist-info."""
    tops = set()
    for file in dist.files or []:
        top = file.parts[0]
        # Scripts (`../../bin`), caches and .pth files (an editable install's) are not code
        # to import.
        if top.startswith("..") or top == "__pycache__" or top.endswith(".pth"):
            continue
        tops.add(top)
    return tops


def _requirements(dist: importlib.metadata.Distribution) -> list[str]:
    names = []
    for text in dist.requires or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def link_layer(envs_dir: Path) -> Path | None:
    """`envs/.ipython`, linking what the server's IPython is now; None when it has none.

    Folders of an earlier IPython are removed (at start, when no build runs)."""
    links = {name: path for name, path in closure().items() if path.exists()}
    if "IPython" not in links:
        return None
    listing = "".join(f"{name}={path}\n" for name, path in sorted(links.items()))
    folder = envs_dir / f"{LAYER_DIR}-{hashlib.sha256(listing.encode()).hexdigest()[:16]}"
    if not (folder / _COMPLETE).exists():
        _make_folder(folder, links)
    link = envs_dir / LAYER_DIR
    if not (link.is_symlink() and os.readlink(link) == folder.name):
        tmp = envs_dir / f"{LAYER_DIR}-link-{uuid.uuid4().hex}"
        tmp.symlink_to(folder.name, target_is_directory=True)  # relative: envs/ may move
        os.replace(tmp, link)  # a run starting meanwhile sees the old folder or the new one
    return link


def remove_stale(envs_dir: Path) -> None:
    """Remove the layer folders the link no longer names (at start)."""
    link = envs_dir / LAYER_DIR
    current = os.readlink(link) if link.is_symlink() else None
    for entry in envs_dir.glob(f"{LAYER_DIR}-*"):
        if entry.name != current and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _make_folder(folder: Path, links: dict[str, Path]) -> None:
    tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir(parents=True)
    for name, target in links.items():
        (tmp / name).symlink_to(target, target_is_directory=target.is_dir())
    (tmp / _COMPLETE).touch()
    shutil.rmtree(folder, ignore_errors=True)  # one left incomplete by a crash
    try:
        tmp.rename(folder)
    except OSError:  # made meanwhile by another server of the data directory
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / _COMPLETE).exists():
            raise


def add_layer(env: Path, layer: Path) -> None:
    """Append the layer to the environment's `sys.path`, after its own site-packages."""
    site_packages = sorted(env.glob("lib/*/site-packages"))
    if not site_packages:
        raise FileNotFoundError(f"no site-packages in {env}")
    # The link, not its target: environments follow when the server's IPython changes.
    (site_packages[0] / LAYER_PTH).write_text(f"{layer.absolute()}\n", encoding="utf-8")


def has_own(env: Path) -> bool:
    """Whether the environment installed an IPython of its own (a requirement needed it)."""
    return any((sp / "IPython" / "__init__.py").exists() for sp in env.glob("lib/*/site-packages"))
