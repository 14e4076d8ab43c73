"""Building orchestration archives: from a folder, a zip, a script, or a notebook cell.

Archives are reproducible (sorted names, fixed times), so uploading the same code twice gives
the same sha and the server keeps one copy.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Folders that are never part of an orchestration: caches and version control.
SKIPPED = frozenset({"__pycache__", ".ipynb_checkpoints", ".git"})
RESERVED = ("main.py", "requirements.txt")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_entries(entries: Mapping[str, bytes]) -> bytes:
    """A zip archive of `name -> content`, byte for byte the same for the same entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name])
    return buf.getvalue()


def folder_entries(folder: Path, prefix: str = "") -> dict[str, bytes]:
    """Every file under `folder` (caches skipped), named by its path below it, after `prefix`."""
    entries: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if SKIPPED.intersection(rel.parts) or not path.is_file():
            continue
        entries[(Path(prefix) / rel).as_posix()] = path.read_bytes()
    return entries


def read_upload(path: Path) -> tuple[bytes, str]:
    """The zip bytes and file name to upload for a zip, a folder, or one script (its main.py)."""
    if path.is_dir():
        return zip_entries(folder_entries(path)), f"{path.resolve().name}.zip"
    if path.suffix == ".py":
        return zip_entries({"main.py": path.read_bytes()}), f"{path.stem}.zip"
    return path.read_bytes(), path.name


def archive_name(path: Path, cwd: Path) -> str:
    """An artifact's name in the archive: its path from `cwd` when inside it, else its own name.

    So code that reads `data/x.csv` in the notebook reads the same path in the run.
    """
    resolved = path.resolve()
    try:
        return resolved.relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return resolved.name


def requirements_text(value: str, cwd: Path) -> str:
    """A requirements file's text, from its path or from `"pkg==1.0; other"`."""
    path = cwd / value
    if path.is_file():
        return path.read_text(encoding="utf-8")
    if _looks_like_path(value):  # a mistyped file name must not become a package name
        raise ValueError(f"--requirements {value}: no such file")
    items = (item.strip() for item in value.replace("\n", ";").split(";"))
    return "".join(f"{item}\n" for item in items if item)


def _looks_like_path(value: str) -> bool:
    plain = not any(c in value for c in " @=;<>~!")
    return value.endswith(".txt") or ("/" in value and plain)


def cell_entries(
    code: str,
    cwd: Path,
    requirements: str | None = None,
    files: Iterable[Path] = (),
    dirs: Iterable[Path] = (),
) -> dict[str, bytes]:
    """A cell as `main.py`, with its requirements and artifacts; ValueError names a bad one."""
    entries: dict[str, bytes] = {}
    for folder in dirs:
        if not (cwd / folder).is_dir():
            raise ValueError(f"--dir {folder}: no such folder")
        name = archive_name(cwd / folder, cwd)
        entries.update(folder_entries(cwd / folder, "" if name == "." else name))
    for file in files:
        if not (cwd / file).is_file():
            raise ValueError(f"--file {file}: no such file")
        entries[archive_name(cwd / file, cwd)] = (cwd / file).read_bytes()
    for name in RESERVED:
        if name in entries:
            raise ValueError(f"an artifact is named {name}: the cell and --requirements make it")
    entries["main.py"] = code.encode("utf-8")
    if requirements:
        entries["requirements.txt"] = requirements.encode("utf-8")
    return entries
