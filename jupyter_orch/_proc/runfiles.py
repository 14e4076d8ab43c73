"""A run's folder, as the supervisor and the server share it: the names of its files, the
spec, flat JSON records written atomically, the copy of the orchestration, small input files.

Standard library only, and only built-in or already loaded modules, like `supervise` (no
``json``: records are written by `encode_json`; no ``shutil``: `copy_tree`).

``RUN_DIR`` holds:

- ``spec.bin`` (marshal) and ``spec.json`` (for people): what to run, without its secrets (the
  run's token), which reach the supervisor in memory or through its environment (`on_disk`);

The folder is private to its owner (0700) and so is every file the supervisor writes (0600).
- ``supervisor.json``: the supervisor's pid and kernel start time (to re-attach after a server
  restart); ``supervisor.err``: its own output, if any;
- ``child.json``: the run process's pid, which is also its process group;
- ``log``: every line the process prints, as ``<RFC 3339 ns>Z <stream> F|P <text>``;
- ``exit.json``: the end of the run (status, exit code, reason, times), written atomically
  into ``exit.json.tmp``, whose disk space is reserved when the run starts (a full disk does
  not keep the run's end from being recorded);
- the files the server hands the run (``args.json``), and ``work/``, its working directory;
- ``output.ipynb``: a notebook run's executed copy (written by `jupyter_orch.nbrun` as each cell
  starts and at the end, atomically through ``.~output.ipynb``).
"""

from __future__ import annotations

import marshal
import os
import stat

TYPE_CHECKING = False  # see `supervise`: `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Record = dict[str, str | int | None]

SPEC_BIN = "spec.bin"
SPEC_JSON = "spec.json"
SUPERVISOR = "supervisor.json"
SUPERVISOR_ERR = "supervisor.err"
CHILD = "child.json"
LOG = "log"
EXIT = "exit.json"
ARGS = "args.json"
WORK = "work"
OUTPUT_NOTEBOOK = "output.ipynb"
CHUNK = 1 << 16
#: A spec's secrets (the run's token): variables added to the run's environment, never
#: written to disk; the spec on disk names them (`SECRET_NAMES`) and the supervisor's own
#: environment carries their values.
SECRETS, SECRET_NAMES = "secrets", "secret_names"
RESERVE = 4096  # bytes set aside for the exit record: it fits many times over


def make_run_dir(run_dir: str) -> None:
    """Create a run's folder, private to its owner (0700, whatever the umask)."""
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    os.chmod(run_dir, 0o700)


def on_disk(spec: dict[str, Any]) -> dict[str, Any]:
    """What of a spec is written to disk: all but its secrets' values (their names stay, so
    that a supervisor started from the files takes the values from its own environment)."""
    kept = {key: value for key, value in spec.items() if key != SECRETS}
    kept[SECRET_NAMES] = sorted(spec.get(SECRETS) or ())
    return kept


def write_spec(run_dir: str, spec: dict[str, Any], binary: bool = True) -> None:
    """Write a run's spec without its secrets (`on_disk`): `spec.json` for people, and
    `spec.bin` for a supervisor to read."""
    spec = on_disk(spec)
    # No fsync: only a supervisor reads the spec, and none survives a machine crash.
    fd = os.open(os.path.join(run_dir, SPEC_JSON), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as fh:
        fh.write(encode_json(spec).encode("ascii"))
    if binary:
        fd = os.open(os.path.join(run_dir, SPEC_BIN), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as fh:
            marshal.dump(spec, fh)  # built in, so reading it costs the supervisor no import


def read_spec(run_dir: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run's spec: `spec.bin`, else `spec.json` (written by hand, or by another Python);
    its secrets from `environ` (the supervisor's environment), by the names the spec gives."""
    spec = _read_spec_file(run_dir)
    environ = os.environ if environ is None else environ
    names = spec.pop(SECRET_NAMES, None) or ()
    spec[SECRETS] = {name: environ[name] for name in names if name in environ}
    return spec


def _read_spec_file(run_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(run_dir, SPEC_BIN), "rb") as fh:
            spec: dict[str, Any] = marshal.load(fh)
    # marshal's format belongs to a Python version: a supervisor run by another Python than
    # the server's may not read it.
    except (FileNotFoundError, ValueError, EOFError):
        import json

        with open(os.path.join(run_dir, SPEC_JSON), encoding="utf-8") as fh:
            spec = json.load(fh)
    return spec


def write_json(path: str, data: Record, sync: bool = True) -> None:
    """Write a flat JSON object atomically (write then rename); `sync`: fsync it first.

    The temporary file is written over, not truncated first, so that space `reserve`d for
    it is used, even on a full disk.
    """
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        encoded = encode_json(data).encode("ascii")
        write_all(fd, encoded)
        os.ftruncate(fd, len(encoded))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def reserve(path: str, size: int = RESERVE) -> None:
    """Set disk space aside for a record `write_json` writes later (`path`'s temporary
    file), so that it can be written when the disk has filled up meanwhile."""
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def encode_json(data: Mapping[str, object]) -> str:
    """`json.dumps(data)` without `json`: dicts with str keys, lists, str, int, finite float,
    bool and None (TypeError or ValueError for anything else)."""
    return _json_value(data)


def _json_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value - value != 0.0:  # NaN, or infinite (without importing math)
            raise ValueError(f"not a finite number: {value!r}")
        return float.__repr__(value)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError(f"JSON object keys must be str: {list(value)!r}")
        return "{" + ", ".join(f"{_json_str(k)}: {_json_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_json_value, value)) + "]"
    raise TypeError(f"not a JSON value: {value!r}")


_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def _json_str(text: str) -> str:
    """A JSON string in ASCII, escaped as `json.dumps` does (lone surrogates included)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(map(_json_char, text)) + '"'


def _json_char(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if " " <= char <= "~":
        return char
    code = ord(char)
    if code > 0xFFFF:  # beyond 16 bits: a UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"
    return f"\\u{code:04x}"


def copy_tree(src: str, dst: str) -> None:
    """Copy a folder into `dst`, following symbolic links: contents and modes, not times."""
    modes: list[tuple[str, int]] = []
    for folder, _, files in os.walk(src, followlinks=True, onerror=_raise):
        target = os.path.normpath(os.path.join(dst, os.path.relpath(folder, src)))
        os.makedirs(target, exist_ok=True)
        modes.append((target, os.stat(folder).st_mode))
        for name in files:
            copy_file(os.path.join(folder, name), os.path.join(target, name))
    # Folder modes last (as shutil.copytree does), so a read-only folder is still filled.
    for target, mode in reversed(modes):
        os.chmod(target, stat.S_IMODE(mode))


def copy_file(src: str, dst: str) -> None:
    """Copy a regular file's bytes and mode bits (as `shutil.copy`), in the kernel if it can."""
    # O_NONBLOCK: a FIFO must be refused below, not block the open until a writer comes.
    fd_in = os.open(src, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd_in).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"not a regular file: {src!r}")
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _copy_bytes(fd_in, fd_out)
            os.fchmod(fd_out, stat.S_IMODE(mode))  # not filtered by the umask, unlike open's
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _copy_bytes(fd_in: int, fd_out: int) -> None:
    offset = 0
    try:
        while sent := os.sendfile(fd_out, fd_in, offset, 1 << 30):
            offset += sent
    except OSError:
        if offset:
            raise
        # sendfile cannot copy between these two files: copy through user space instead.
        while data := os.read(fd_in, CHUNK):
            write_all(fd_out, data)


def _raise(exc: OSError) -> None:
    raise exc


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_files(run_dir: str, files: dict[str, str]) -> None:
    """Write small files into a folder (the run's arguments into RUN_DIR), each private to
    the writer (0600, also when it was there before)."""
    for name, text in files.items():
        if os.path.basename(name) != name or name in ("", ".", ".."):
            raise OSError(f"not a plain file name: {name!r}")
        fd = os.open(os.path.join(run_dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            write_all(fd, text.encode("utf-8"))
        finally:
            os.close(fd)


def close_files(run_dir: str) -> None:
    """Make every file of a run's folder (not of its `work/`) private to its owner: 0600,
    whoever owns it (the records the supervisor's, the run's own files the run's)."""
    with os.scandir(run_dir) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mode & 0o177:
                os.chmod(entry.path, 0o600)
