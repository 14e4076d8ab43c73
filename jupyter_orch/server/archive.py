"""Safe inspection and extraction of uploaded zip archives (no path escapes, links or bombs)."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from jupyter_orch.bundle import ArchiveLimits
from jupyter_orch.server.errors import ArchiveError

# ArchiveLimits is defined with the zip builder, which keeps to the same limits.
__all__ = ["ArchiveInfo", "ArchiveLimits", "extract_archive", "inspect_archive"]

_CHUNK = 64 * 1024
_BOMB_MIN_SIZE = 1 << 20
_BOMB_MAX_RATIO = 1000
# A script or a notebook: both names compete by the same rule (see _choose_entrypoint).
_ENTRYPOINTS = ("main.py", "main.ipynb")
_REQUIREMENTS = "requirements.txt"
_MACOS_JUNK = "__MACOSX"
_FILE_MODE = 0o644
_DIR_MODE = 0o755

# Bounds of an entry's path (after normalising): far under what file systems allow (255 bytes
# a name, 4096 a path on Linux), with room for the folder an archive is extracted into, and
# shallow enough for every recursive walk of the tree (copying, removing) to stay in bounds.
MAX_PATH_PARTS = 64  # folders and file name
MAX_NAME_BYTES = 255  # one component, UTF-8
MAX_PATH_BYTES = 1024  # the whole path, UTF-8
_SHOWN_CHARS = 80  # of a name in a message

# bzip2 and LZMA are left out on purpose: zipfile decompresses their reads with no cap on the
# output, so a member lying about its size could take much memory before any check sees it.
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_SPECIAL_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}

# Errors a decompressing member stream raises on damaged data (bad CRC, truncation, garbage).
_READ_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
with contextlib.suppress(ImportError):  # lzma is absent only from stripped-down Pythons
    import lzma

    _READ_ERRORS += (lzma.LZMAError,)


@dataclass(frozen=True)
class ArchiveInfo:
    """What inspection learned about a valid archive."""

    entrypoint: str  # posix path inside the archive: "main.py", "pkg/main.py", "main.ipynb"
    requirements: str | None  # posix path of the single requirements.txt, or None
    file_count: int
    total_bytes: int  # sum of declared uncompressed sizes


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    path: str  # normalised posix path: never empty, no "", "." or ".." components
    is_dir: bool

    @property
    def parts(self) -> list[str]:
        return self.path.split("/")

    @property
    def name(self) -> str:
        return self.info.orig_filename


def inspect_archive(path: Path, limits: ArchiveLimits) -> ArchiveInfo:
    """Validate the zip at `path` from its central directory alone, writing nothing."""
    with _open_zip(path) as zf:
        info, _ = _scan(zf, limits)
    return info


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits) -> ArchiveInfo:
    """Validate the zip at `path`, then extract it into `dest`, which must not exist yet."""
    # One open handle for validation and extraction, so the entries written are exactly the
    # entries checked (re-opening the path could read a different file).
    with _open_zip(path) as zf:
        info, entries = _scan(zf, limits)
        _create_dest(dest)
        try:
            _extract_entries(zf, entries, dest.resolve(), limits)
        except BaseException:
            # Never leave a half-written tree behind for anything to pick up.
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return info


# --- inspection ----------------------------------------------------------------------------


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    # ValueError covers undecodable names flagged as UTF-8 in a damaged central directory.
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ArchiveError("not a zip archive (or its central directory is corrupt)") from exc


def _scan(zf: zipfile.ZipFile, limits: ArchiveLimits) -> tuple[ArchiveInfo, list[_Entry]]:
    entries = [_normalise(info) for info in zf.infolist()]
    for entry in entries:
        _check_entry(entry)
    _check_unique(entries)
    files = [entry for entry in entries if not entry.is_dir]
    total = _check_totals(files, limits)
    info = ArchiveInfo(
        entrypoint=_choose_entrypoint(files),
        requirements=_find_requirements(files),
        file_count=len(files),
        total_bytes=total,
    )
    return info, entries


def _normalise(info: zipfile.ZipInfo) -> _Entry:
    # orig_filename keeps what zipfile's `filename` silently cuts at a NUL byte.
    raw = info.orig_filename
    if "\x00" in raw:
        raise ArchiveError(f"archive entry {_shown(raw)} contains a NUL byte")
    name = raw.replace("\\", "/")  # archives made on Windows may use either separator
    if name.startswith("/") or _has_drive(name):
        raise ArchiveError(f"archive entry {_shown(raw)} has an absolute path")
    if ".." in name.split("/"):
        raise ArchiveError(f"archive entry {_shown(raw)} escapes the archive (contains '..')")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts:
        raise ArchiveError(f"archive entry {_shown(raw)} has an empty path")
    path = "/".join(parts)
    _check_path_size(raw, path, parts)
    is_dir = name.endswith("/") or stat.S_ISDIR(info.external_attr >> 16)
    return _Entry(info=info, path=path, is_dir=is_dir)


def _check_path_size(raw: str, path: str, parts: list[str]) -> None:
    if len(parts) > MAX_PATH_PARTS:
        problem = f"{len(parts)} path components, over the limit of {MAX_PATH_PARTS}"
    elif (longest := max(len(part.encode()) for part in parts)) > MAX_NAME_BYTES:
        problem = f"a name of {longest} bytes, over the limit of {MAX_NAME_BYTES}"
    elif (size := len(path.encode())) > MAX_PATH_BYTES:
        problem = f"a path of {size} bytes, over the limit of {MAX_PATH_BYTES}"
    else:
        return
    raise ArchiveError(f"archive entry {_shown(raw)} has {problem}")


def _shown(name: str) -> str:
    """An entry name for a message: quoted, and cut short when long."""
    return repr(name if len(name) <= _SHOWN_CHARS else name[:_SHOWN_CHARS] + "...")


def _has_drive(name: str) -> bool:
    return len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha()


def _check_entry(entry: _Entry) -> None:
    info = entry.info
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = _SPECIAL_KINDS.get(kind, "a special file")
        raise ArchiveError(f"archive entry {_shown(entry.name)} is {what}; only files are allowed")
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"archive entry {_shown(entry.name)} is encrypted, which is not supported"
        )
    if info.compress_type not in _SUPPORTED_METHODS:
        raise ArchiveError(
            f"archive entry {_shown(entry.name)} uses unsupported compression method "
            f"{info.compress_type} (use stored, deflate, bzip2 or lzma)"
        )
    _check_ratio(entry)


def _check_ratio(entry: _Entry) -> None:
    size = entry.info.file_size
    ratio = size / max(entry.info.compress_size, 1)
    # Real files rarely compress past 1000:1; a large one that does is a zip bomb signature.
    if size > _BOMB_MIN_SIZE and ratio > _BOMB_MAX_RATIO:
        raise ArchiveError(
            f"archive entry {_shown(entry.name)} has a compression ratio of {ratio:.0f}:1, "
            f"over the limit of {_BOMB_MAX_RATIO}:1 (looks like a zip bomb)"
        )


def _check_unique(entries: list[_Entry]) -> None:
    seen: dict[str, _Entry] = {}
    for entry in entries:
        previous = seen.get(entry.path)
        if previous is not None:
            raise ArchiveError(
                f"archive has two entries for {entry.path!r}: "
                f"{_shown(previous.name)} and {_shown(entry.name)}"
            )
        seen[entry.path] = entry
    # A file used as a parent folder of another entry could not be extracted either.
    files = {entry.path for entry in entries if not entry.is_dir}
    for entry in entries:
        for depth in range(1, len(entry.parts)):
            parent = "/".join(entry.parts[:depth])
            if parent in files:
                raise ArchiveError(
                    f"archive entry {_shown(entry.name)} is inside {parent!r}, which is a file"
                )


def _check_totals(files: list[_Entry], limits: ArchiveLimits) -> int:
    if not files:
        raise ArchiveError("archive is empty (it contains no files)")
    if len(files) > limits.max_files:
        raise ArchiveError(f"archive has {len(files)} files, over the limit of {limits.max_files}")
    total = sum(entry.info.file_size for entry in files)
    if total > limits.max_bytes:
        raise ArchiveError(
            f"archive expands to {total} bytes, over the limit of {limits.max_bytes} bytes"
        )
    return total


def _candidates(files: list[_Entry], basename: str) -> list[str]:
    # macOS Finder adds __MACOSX/ resource-fork copies of every file; they are never code.
    return [
        entry.path
        for entry in files
        if entry.parts[-1] == basename and entry.parts[0] != _MACOS_JUNK
    ]


def _choose_entrypoint(files: list[_Entry]) -> str:
    candidates = [path for name in _ENTRYPOINTS for path in _candidates(files, name)]
    if not candidates:
        raise ArchiveError("archive has no main.py or main.ipynb (put one at the top level)")
    # The shallowest folder wins, then plain string order, so the choice never depends on
    # entry order; the root has depth 0 and so always wins.
    place = min(_place(path) for path in candidates)
    chosen = sorted(path for path in candidates if _place(path) == place)
    if len(chosen) > 1:  # main.ipynb sorts before main.py
        raise ArchiveError(
            f"archive has both {chosen[1]!r} and {chosen[0]!r}: keep one entrypoint, "
            "the script or the notebook"
        )
    return chosen[0]


def _place(path: str) -> tuple[int, str]:
    """An entrypoint's folder, as the choice orders them: depth, then name."""
    return path.count("/"), path.rpartition("/")[0]


def _find_requirements(files: list[_Entry]) -> str | None:
    found = sorted(_candidates(files, _REQUIREMENTS))
    if len(found) > 1:
        listed = ", ".join(repr(path) for path in found)
        raise ArchiveError(f"archive has more than one requirements.txt ({listed}); keep one")
    return found[0] if found else None


# --- extraction ----------------------------------------------------------------------------


def _create_dest(dest: Path) -> None:
    try:
        dest.mkdir(parents=True)
    except FileExistsError as exc:
        raise ArchiveError(f"cannot extract into {dest}: it already exists") from exc
    dest.chmod(_DIR_MODE)  # mkdir's mode is filtered by the umask


def _extract_entries(
    zf: zipfile.ZipFile, entries: list[_Entry], root: Path, limits: ArchiveLimits
) -> None:
    total = 0
    for entry in entries:
        target = _target(root, entry)
        if entry.is_dir:
            _make_dirs(root, entry.parts)
            continue
        _make_dirs(root, entry.parts[:-1])
        total += _copy_member(zf, entry, target, limits.max_bytes - total)


def _target(root: Path, entry: _Entry) -> Path:
    target = root.joinpath(*entry.parts)
    # Names were vetted already; this guards against anything on disk redirecting the path.
    if not target.resolve().is_relative_to(root):
        raise ArchiveError(
            f"archive entry {_shown(entry.name)} would be written outside the archive"
        )
    return target


def _make_dirs(root: Path, parts: list[str]) -> None:
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise ArchiveError(f"cannot create folder {part!r}: a file of that name exists")
        if not current.exists():
            current.mkdir()
            current.chmod(_DIR_MODE)


def _copy_member(zf: zipfile.ZipFile, entry: _Entry, target: Path, budget: int) -> int:
    declared = entry.info.file_size
    written = 0
    with _open_member(zf, entry) as src, _create_file(target) as out:
        while chunk := _read_chunk(src, entry):
            written += len(chunk)
            if written > declared:
                raise ArchiveError(
                    f"archive entry {_shown(entry.name)} holds more data than its declared size "
                    f"of {declared} bytes"
                )
            if written > budget:
                raise ArchiveError("archive expands past its size limit while extracting")
            out.write(chunk)
    if written < declared:
        raise ArchiveError(
            f"archive entry {_shown(entry.name)} holds {written} bytes, less than its declared "
            f"size of {declared} bytes"
        )
    return written


@contextlib.contextmanager
def _open_member(zf: zipfile.ZipFile, entry: _Entry) -> Iterator[IO[bytes]]:
    # zipfile silently cuts a member off at its declared size (and then usually fails the CRC
    # check), so a header that under-states its data would go unnoticed or look merely
    # corrupt. Declaring more than one chunk extra lets the surplus reach the byte counter in
    # _copy_member; reads stay bounded because that counter stops at the first excess chunk.
    probe = copy.copy(entry.info)
    probe.file_size = entry.info.file_size + _CHUNK + 1
    try:
        src = zf.open(probe)
    except _READ_ERRORS as exc:
        raise ArchiveError(f"archive entry {_shown(entry.name)} is corrupt: {exc}") from exc
    with src:
        yield src


def _read_chunk(src: IO[bytes], entry: _Entry) -> bytes:
    try:
        return src.read(_CHUNK)
    except _READ_ERRORS as exc:
        raise ArchiveError(f"archive entry {_shown(entry.name)} is corrupt: {exc}") from exc


def _create_file(target: Path) -> IO[bytes]:
    # O_EXCL and O_NOFOLLOW: never overwrite or write through anything already there.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(target, flags, _FILE_MODE)
    os.fchmod(fd, _FILE_MODE)  # the mode given to os.open is filtered by the umask
    return os.fdopen(fd, "wb")
