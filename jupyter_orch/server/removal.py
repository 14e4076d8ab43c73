"""Removing a folder tree whatever its depth, without ever raising.

`shutil.rmtree` recurses (a tree a few thousand folders deep raises RecursionError on Python
3.11, even with `ignore_errors`) and names entries by full paths (past PATH_MAX, 4096 bytes,
they cannot be named at all). `remove_tree` walks down and back up holding one folder open at
a time and naming each entry relative to it (`dir_fd`), so neither the depth nor the length of
the paths matters, and it reports what it could not remove instead of raising.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def remove_tree(path: Path) -> str | None:
    """Remove a file or folder tree (links are removed, never followed); None when it is
    gone, else what stopped it (the tree is then partly removed)."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISDIR(mode):
            os.unlink(path)
            return None
        _remove_folder(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def _remove_folder(path: Path) -> None:
    fd = os.open(path, _DIR_FLAGS)
    names: list[str] = []  # the folders walked down into, from `path`
    try:
        while True:
            child = _empty_or_first_folder(fd)
            if child is not None:
                down = os.open(child, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = down
                names.append(child)
                continue
            if not names:
                break
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _empty_or_first_folder(fd: int) -> str | None:
    """Remove every non-folder entry of the open folder; the name of a sub-folder left, if
    any (None: the folder is now empty)."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            os.unlink(entry.name, dir_fd=fd)
    return None


def remove_or_log(path: Path, what: str) -> bool:
    """Remove a tree; if it cannot be, say so in the server's log (never raises). Whether
    it is gone."""
    problem = remove_tree(path)
    if problem is not None:
        log.warning("jupyter_orch: could not remove %s %s (%s); left in place", what, path, problem)
    return problem is None
