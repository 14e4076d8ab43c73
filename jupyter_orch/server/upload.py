"""Receiving an upload: a multipart body streamed to disk, or files of the Jupyter root zipped.

The `file` part goes to a temporary file (hashed on the way); the `metadata` part, small by
nature, is kept in memory up to a bound. A part counts as `metadata` by its name whether or
not it carries a file name (generated API clients send it as a plain field). A body that breaks
a rule is read to its end all the same and answered with a 400 naming the rule: an error
raised while the body streams in would only drop the connection.

A folder, `.py` or `.ipynb` file of the root (`create_from_path`, the sidebar's "Create
orchestration") is checked first (relative, inside the root once every link is resolved), then
zipped to scratch space by the one builder of `jupyter_orch.bundle`, as the SDK zips it: the
same folder gives the same sha either way. The zip then meets every check of an upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..bundle import ArchiveLimits, BundleError, BundleTooLarge, can_bundle, write_bundle
from .errors import (
    ArchiveError,
    InsufficientStorage,
    InvalidRequest,
    Missing,
    OrchError,
    TooLarge,
    disk_full,
)

MAX_METADATA = 64 * 1024
# A path of the Jupyter root a client names: Linux's own bounds (PATH_MAX, NAME_MAX), so that
# the file system answers "not found" rather than "name too long".
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


class MultipartReceiver:
    """Feeds a multipart/form-data body through a streaming parser."""

    def __init__(self, content_type: str, tmp_dir: Path, max_bytes: int) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise InvalidRequest(
                "Content-Type", "must be multipart/form-data with a boundary (parts file, metadata)"
            )
        self.max_bytes = max_bytes
        self.received = 0
        self.tmp_dir = tmp_dir
        self.file_path: Path | None = None
        self.file_name: str | None = None
        self.file_size = 0
        self.sha = hashlib.sha256()
        self.metadata: bytearray | None = None
        self.error: OrchError | None = None  # the first rule the body broke
        self._file: IO[bytes] | None = None
        self._part: str | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                },
            )
        except FormParserError as exc:  # a boundary over the parser's limit
            message = f"has a boundary the parser refuses ({exc})"
            raise InvalidRequest("Content-Type", message) from None

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the body; past the limit or a broken rule, the rest is
        counted and dropped (the answer, 413 or 400, is given at the end)."""
        self.received += len(chunk)
        if self.received > self.max_bytes or self.error is not None:
            self.cleanup()
            return
        self._parse(chunk)

    def finish(self) -> None:
        """The body is complete: check its size, its rules and that a file part came."""
        if self.received > self.max_bytes:
            raise TooLarge(f"upload of {self.received} bytes is over the limit of {self.max_bytes}")
        if self.error is None:
            self._parse(None)
        if self.error is not None:
            raise self.error
        if self._file is not None:
            try:
                self._file.close()  # its buffer's last write
            except OSError as exc:
                self._file = None
                self.cleanup()
                if disk_full(exc):
                    raise InsufficientStorage("the upload could not be stored") from None
                raise
            self._file = None
        if self.file_path is None:
            raise InvalidRequest("file", "the multipart part 'file' (the zip archive) is missing")

    def cleanup(self) -> None:
        """Remove the temporary file, whatever happened."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # its last write, on a full disk
                self._file.close()
            self._file = None
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)
            self.file_path = None

    def _parse(self, chunk: bytes | None) -> None:
        """Give the parser a chunk (None: the body's end), keeping the first broken rule."""
        try:
            if chunk is None:
                self._parser.finalize()
            else:
                self._parser.write(chunk)
        except OrchError as exc:  # raised by a callback below
            self.error = exc
        except FormParserError as exc:
            self.error = InvalidRequest("body", f"is not multipart/form-data ({exc})")
        except OSError as exc:  # writing the file part
            if not disk_full(exc):
                raise
            self.error = InsufficientStorage("the upload could not be stored")
        if self.error is not None:
            self.cleanup()

    # -- parser callbacks -------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers = {}
        self._part = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            if self.file_path is not None:
                raise InvalidRequest("file", "more than one 'file' part was sent")
            self._part = "file"
            raw = options.get(b"filename", b"").decode("utf-8", "replace")
            self.file_name = os.path.basename(raw.replace("\\", "/")) or None
            fd, path = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=self.tmp_dir)
            self.file_path = Path(path)
            self._file = os.fdopen(fd, "wb")
        elif name == "metadata":
            self._part = "metadata"
            self.metadata = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._part == "file" and self._file is not None:
            self._file.write(piece)
            self.sha.update(piece)
            self.file_size += len(piece)
        elif self._part == "metadata" and self.metadata is not None:
            if len(self.metadata) + len(piece) > MAX_METADATA:
                raise InvalidRequest("metadata", f"is larger than {MAX_METADATA} bytes")
            self.metadata += piece

    def _part_end(self) -> None:
        if self._part == "file" and self._file is not None:
            self._file.close()
            self._file = None
        self._part = None


def resolve_inside(root: Path, relative: str) -> Path:
    """The path under `root` a client names, refused if it escapes the root in any way."""
    if not relative.strip():
        raise InvalidRequest("path", "must name a folder, a .py or a .ipynb file under the root")
    pure = PurePosixPath(relative.replace("\\", "/"))
    _check_path_text(relative, pure)
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidRequest("path", f"{relative!r} must be relative to the Jupyter root")
    root = root.resolve()
    try:
        target = (root / pure).resolve()
        exists = target.exists()
    except RuntimeError:  # what pathlib raises for a link loop
        raise InvalidRequest("path", f"{relative!r} cannot be read (a link loop)") from None
    except OSError as exc:  # a link leading to a name too long, ...
        raise InvalidRequest("path", f"{relative!r} cannot be read ({exc.strerror})") from None
    if target != root and root not in target.parents:
        raise InvalidRequest("path", f"{relative!r} leads outside the Jupyter root")
    if not exists:
        raise Missing("path", relative)
    return target


def _check_path_text(relative: str, pure: PurePosixPath) -> None:
    """Refuse what no file system takes: a NUL, a name or a path over Linux's bounds."""
    if "\x00" in relative:
        raise InvalidRequest("path", "must not contain a NUL character")
    size = len(relative.encode())
    if size > MAX_PATH_BYTES:
        raise InvalidRequest("path", f"is {size} bytes long, over the limit of {MAX_PATH_BYTES}")
    longest = max((len(part.encode()) for part in pure.parts), default=0)
    if longest > MAX_NAME_BYTES:
        raise InvalidRequest(
            "path", f"has a name of {longest} bytes, over the limit of {MAX_NAME_BYTES}"
        )


def bundle_path(target: Path, dest: Path, limits: ArchiveLimits) -> str:
    """Zip a folder, `.py` or `.ipynb` file into `dest` with the one builder; the archive's
    file name.

    The builder's refusals become the server's: over a limit is a 413, any other a 400.
    """
    if not can_bundle(target):
        raise InvalidRequest("path", f"{target.name!r} is not a folder, a .py or a .ipynb file")
    try:
        with dest.open("wb") as out:
            return write_bundle(target, out, limits)
    except BundleTooLarge as exc:
        raise TooLarge(str(exc)) from exc
    except BundleError as exc:
        raise ArchiveError(str(exc)) from exc
    except UnicodeEncodeError as exc:  # a name of bytes that are not UTF-8, which no zip holds
        raise ArchiveError(f"a file name is not UTF-8: {exc.object!r}") from exc
