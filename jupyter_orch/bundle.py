"""The one zip builder: a folder, a script, a notebook or a notebook cell as an archive.

Every way code comes in zips here: `Client.upload_orchestration(path=...)`, `jupyter orch
upload`, the `%%orchestrate` magic, the sidebar's "Create orchestration" (the server's
`create_from_path`) and a notebook uploaded as it is (the server zips it). So the same folder
gives the same bytes, hence the same sha, whichever way it came. The rules, and why:

- A `.py` file becomes the archive's `main.py`, a `.ipynb` file its `main.ipynb` (the two
  entrypoints); a folder is zipped as it is.
- Skipped by name, at any depth, folder or file: `.git .hg .svn .ipynb_checkpoints __pycache__
  .venv venv node_modules`. Version control, caches and environments are not code, and one
  virtual environment alone can hold more files than the limits allow.
- Names sorted, entry times fixed (1980-01-01, the first instant a zip can record) and
  permissions fixed (0644): uploading the same code twice gives the same sha, and the server
  keeps one copy. File times change on every checkout or save; they would make every upload new.
- A link inside the folder is refused with an error naming it: following it would silently copy
  whatever it points to, perhaps from outside the project. The path given (the folder itself, a
  `--file`, a `--dir`) may be a link: it names what the user chose.
- File count and total bytes are checked while walking, before anything is read, so a folder
  far too large fails at once (the server passes its configured limits; the SDK the defaults,
  which are the server's).
- Files are streamed into the zip, written to a file object: the server writes scratch space,
  the SDK memory.

Standard library only: the server and the SDK both import it, and neither imports the other.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

#: Names never part of an orchestration, at any depth: version control, caches, environments.
SKIPPED = frozenset(
    {".git", ".hg", ".svn", ".ipynb_checkpoints", "__pycache__", ".venv", "venv", "node_modules"}
)
RESERVED = ("main.py", "requirements.txt")
SCRIPT_ENTRYPOINT, NOTEBOOK_ENTRYPOINT = "main.py", "main.ipynb"
#: What a single file becomes in the archive, by its suffix.
ENTRYPOINTS = {".py": SCRIPT_ENTRYPOINT, ".ipynb": NOTEBOOK_ENTRYPOINT}
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o644 << 16
_CHUNK = 64 * 1024
# A file is opened without following a link, in case one replaced it after the walk.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

#: What an entry holds: a file to stream, or content in hand.
Source: TypeAlias = Path | bytes


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds an archive respects, whether built here or uploaded."""

    max_files: int = 10_000
    max_bytes: int = 1 << 30  # total uncompressed bytes


DEFAULT_LIMITS = ArchiveLimits()


class BundleError(ValueError):
    """Code that cannot become an archive (a link, a special file, nothing to zip ...)."""


class BundleTooLarge(BundleError):
    """More files or bytes than the limits allow."""


def can_bundle(path: Path) -> bool:
    """Whether the builder zips `path`: a folder, a `.py` file (as `main.py`) or a `.ipynb`
    file (as `main.ipynb`)."""
    return path.is_dir() or (path.suffix in ENTRYPOINTS and path.is_file())


def write_bundle(path: Path, out: IO[bytes], limits: ArchiveLimits = DEFAULT_LIMITS) -> str:
    """Zip a folder (as it is), a `.py` file (as `main.py`) or a `.ipynb` file (as
    `main.ipynb`) into `out`; the archive's name."""
    if path.is_dir():
        entries: dict[str, Source] = dict(folder_entries(path, limits=limits))
        if not entries:
            raise BundleError(f"folder {_label(path)!r} holds no files")
        name = path.resolve().name or "root"
    elif can_bundle(path):
        entries, name = {ENTRYPOINTS[path.suffix]: path.resolve()}, path.stem
    else:
        raise BundleError(f"{path.name!r} is neither a folder, a .py file nor a .ipynb file")
    write_zip(entries, out, limits)
    return f"{name}.zip"


def read_upload(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> tuple[bytes, str]:
    """The zip bytes and file name to upload for a folder, one script (its main.py), one
    notebook (its main.ipynb), or a zip."""
    if not can_bundle(path):
        return path.read_bytes(), path.name
    buffer = io.BytesIO()
    name = write_bundle(path, buffer, limits)
    return buffer.getvalue(), name


def zip_entries(entries: Mapping[str, Source], limits: ArchiveLimits = DEFAULT_LIMITS) -> bytes:
    """A zip of `name -> file or content`, in memory; the same bytes for the same entries."""
    buffer = io.BytesIO()
    write_zip(entries, buffer, limits)
    return buffer.getvalue()


def write_zip(
    entries: Mapping[str, Source], out: IO[bytes], limits: ArchiveLimits = DEFAULT_LIMITS
) -> None:
    """Zip `name -> file or content` into `out`: names sorted, fixed times and permissions."""
    if len(entries) > limits.max_files:
        raise BundleTooLarge(f"{len(entries)} files are over the limit of {limits.max_files}")
    spent = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            spent += _write_entry(zf, name, entries[name], limits.max_bytes - spent)
            if spent > limits.max_bytes:
                raise BundleTooLarge(f"the files hold more than {limits.max_bytes} bytes")


def _write_entry(zf: zipfile.ZipFile, name: str, source: Source, room: int) -> int:
    """Stream one entry in, stopping once past `room` bytes; the bytes it took."""
    written = 0
    with _reader(name, source) as (src, size):
        info = zipfile.ZipInfo(name, _EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = _MODE
        info.file_size = size  # zipfile decides on zip64 from it, as writestr does
        with zf.open(info, "w") as dest:
            while written <= room and (chunk := src.read(_CHUNK)):
                written += len(chunk)
                dest.write(chunk)
    return written


@contextmanager
def _reader(name: str, source: Source) -> Iterator[tuple[IO[bytes], int]]:
    """The entry's content as a stream, and its size; content in hand goes the same way."""
    if isinstance(source, bytes):
        yield io.BytesIO(source), len(source)
        return
    try:
        fd = os.open(source, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise BundleError(f"cannot read {name} ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as src:
        yield src, os.fstat(fd).st_size


def folder_entries(
    folder: Path, prefix: str = "", limits: ArchiveLimits = DEFAULT_LIMITS
) -> dict[str, Path]:
    """Every file under `folder`, named by its path below it after `prefix`.

    Skipped names are left out; links and special files are refused; the limits are checked as
    the walk goes, from the files' sizes, before any is read.
    """
    walk = _Walk(folder, prefix, limits)
    walk.visit(folder)
    return walk.found


class _Walk:
    """One walk of a folder, in name order so that the first problem found is always the same."""

    def __init__(self, folder: Path, prefix: str, limits: ArchiveLimits) -> None:
        self.folder = folder
        self.prefix = prefix
        self.limits = limits
        self.found: dict[str, Path] = {}
        self.total = 0

    def visit(self, here: Path) -> None:
        for entry in self._scan(here):
            path = Path(entry.path)
            if entry.name in SKIPPED:
                continue
            if entry.is_symlink():
                raise BundleError(
                    f"{self.shown(path)} is a link; links are not followed, "
                    "put the file or folder itself there"
                )
            if entry.is_dir(follow_symlinks=False):
                self.visit(path)
            elif entry.is_file(follow_symlinks=False):
                self.add(path, entry.stat(follow_symlinks=False).st_size)
            else:
                raise BundleError(f"{self.shown(path)} is not a regular file")

    def add(self, path: Path, size: int) -> None:
        self.total += size
        if len(self.found) >= self.limits.max_files:
            raise BundleTooLarge(
                f"folder {_label(self.folder)!r} has more than {self.limits.max_files} files"
            )
        if self.total > self.limits.max_bytes:
            raise BundleTooLarge(
                f"folder {_label(self.folder)!r} holds more than {self.limits.max_bytes} bytes"
            )
        rel = path.relative_to(self.folder).as_posix()
        self.found[f"{self.prefix}/{rel}" if self.prefix else rel] = path

    def shown(self, path: Path) -> str:
        """A path as errors name it: from the folder's own name down."""
        rel = path.relative_to(self.folder).as_posix()
        return _label(self.folder) if rel == "." else f"{_label(self.folder)}/{rel}"

    def _scan(self, here: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(here) as found:
                return sorted(found, key=lambda entry: entry.name)
        except OSError as exc:
            raise BundleError(f"cannot read folder {self.shown(here)} ({exc.strerror})") from exc


def _label(folder: Path) -> str:
    return folder.resolve().name or "/"


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
        raise BundleError(f"--requirements {value}: no such file")
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
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> dict[str, Source]:
    """A cell as `main.py`, with its requirements and artifacts; BundleError names a bad one.

    A `--dir` goes through the same walk as a folder upload (same skips, links refused).
    """
    entries: dict[str, Source] = {}
    for folder in dirs:
        if not (cwd / folder).is_dir():
            raise BundleError(f"--dir {folder}: no such folder")
        name = archive_name(cwd / folder, cwd)
        entries.update(folder_entries(cwd / folder, "" if name == "." else name, limits))
    for file in files:
        if not (cwd / file).is_file():
            raise BundleError(f"--file {file}: no such file")
        entries[archive_name(cwd / file, cwd)] = (cwd / file).resolve()
    for name in RESERVED:
        if name in entries:
            raise BundleError(f"an artifact is named {name}: the cell and --requirements make it")
    if NOTEBOOK_ENTRYPOINT in entries:
        raise BundleError(
            f"an artifact is named {NOTEBOOK_ENTRYPOINT}: beside the cell's main.py, the archive "
            "would have two entrypoints"
        )
    entries["main.py"] = code.encode("utf-8")
    if requirements:
        entries["requirements.txt"] = requirements.encode("utf-8")
    return entries
