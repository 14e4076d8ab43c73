"""Packaging a folder or a `.py` file of the Jupyter root as an orchestration archive.

The path is checked before anything is read: relative, inside the root once every link is
resolved, and no link inside the folder (the archive rules refuse links). The zip is written to
scratch space with the same file-count and size limits as an upload, then goes through the
upload's checks like any other archive.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from .archive import ArchiveLimits
from .errors import ArchiveError, InvalidRequest, Missing, TooLarge

#: Folders a project carries that are not part of its code.
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", ".ipynb_checkpoints", "__pycache__", ".venv", "venv", "node_modules"}
)


def resolve_inside(root: Path, relative: str) -> Path:
    """The path under `root` a client names, refused if it escapes the root in any way."""
    if not relative.strip():
        raise InvalidRequest("path", "must name a folder or a .py file under the Jupyter root")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidRequest("path", f"{relative!r} must be relative to the Jupyter root")
    root = root.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise InvalidRequest("path", f"{relative!r} leads outside the Jupyter root")
    if not target.exists():
        raise Missing("path", relative)
    return target


def _files_of(folder: Path, limits: ArchiveLimits) -> list[tuple[Path, str]]:
    """(file, name in the archive) for every file of a folder; links are refused."""
    found: list[tuple[Path, str]] = []
    total = 0
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        for name in list(dirs):
            if name in SKIPPED_DIRS or (here / name).is_symlink():
                if (here / name).is_symlink():
                    raise ArchiveError(f"{(here / name).relative_to(folder)} is a link")
                dirs.remove(name)
        for name in sorted(files):
            path = here / name
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                raise ArchiveError(f"{path.relative_to(folder)} is {kind}")
            total += info.st_size
            found.append((path, path.relative_to(folder).as_posix()))
            if len(found) > limits.max_files:
                raise TooLarge(f"the folder has more than {limits.max_files} files")
            if total > limits.max_bytes:
                raise TooLarge(f"the folder holds more than {limits.max_bytes} bytes")
    return found


def bundle_path(target: Path, dest: Path, limits: ArchiveLimits) -> str:
    """Zip a folder (as it is) or a `.py` file (as `main.py`) into `dest`; the file name."""
    if target.is_dir():
        members = _files_of(target, limits)
        if not members:
            raise ArchiveError(f"folder {target.name!r} holds no files")
    elif target.suffix == ".py" and target.is_file():
        members = [(target, "main.py")]
    else:
        raise InvalidRequest("path", f"{target.name!r} is neither a folder nor a .py file")
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, name in members:
            zf.write(path, name)
    return f"{target.stem or 'root'}.zip"
