"""Unit tests of jupyter_orch.archive: every rejection rule and a clean extraction."""

from __future__ import annotations

import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from jupyter_orch.server import archive
from jupyter_orch.server.archive import ArchiveInfo, ArchiveLimits, extract_archive, inspect_archive
from jupyter_orch.server.errors import ArchiveError

LIMITS = ArchiveLimits()
MAIN = b"print('hello')\n"

# Offsets of fields in a central directory header; the local header has each 2 bytes earlier.
_CENTRAL_SIG = b"PK\x01\x02"
_FIELDS = {
    "flags": ("<H", 8),
    "method": ("<H", 10),
    "file_size": ("<I", 24),
}


def make_zip(
    path: Path,
    files: dict[str, bytes] | list[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """Write a zip at `path` holding `files` (names ending in '/' are directories)."""
    items = list(files.items()) if isinstance(files, dict) else files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates some tests want
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in items:
                zf.writestr(name, data)
    return path


def special(name: str, kind: int, data: bytes = b"main.py") -> tuple[zipfile.ZipInfo, bytes]:
    """A member whose Unix mode marks it as `kind` (a symlink, FIFO, ...)."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (kind | 0o777) << 16
    return info, data


def _central_offset(data: bytes | bytearray, name: str) -> int:
    pos = data.find(_CENTRAL_SIG)
    while pos >= 0:
        (name_len,) = struct.unpack_from("<H", data, pos + 28)
        if data[pos + 46 : pos + 46 + name_len] == name.encode():
            return pos
        pos = data.find(_CENTRAL_SIG, pos + 4)
    raise AssertionError(f"{name} not in the central directory")


def patch_header(path: Path, name: str, field: str, value: int) -> None:
    """Overwrite one field of member `name` in both its local and central headers."""
    fmt, offset = _FIELDS[field]
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, local + offset - 2, value)
    struct.pack_into(fmt, data, _central_offset(data, name) + offset, value)
    path.write_bytes(bytes(data))


@pytest.fixture
def zpath(tmp_path: Path) -> Path:
    return tmp_path / "upload.zip"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "out" / "job"


def reject(path: Path, match: str, limits: ArchiveLimits = LIMITS) -> None:
    """Assert inspect_archive rejects `path` with a message matching `match`."""
    with pytest.raises(ArchiveError, match=match):
        inspect_archive(path, limits)


# --- not a zip / empty ---------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", b"PK\x03\x04garbage" * 10])
def test_not_a_zip(zpath: Path, content: bytes) -> None:
    zpath.write_bytes(content)
    reject(zpath, "not a zip archive")


def test_truncated_central_directory(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN})
    data = zpath.read_bytes()
    zpath.write_bytes(data[: data.find(_CENTRAL_SIG) + 10])
    reject(zpath, "not a zip archive")


def test_empty_zip(zpath: Path) -> None:
    make_zip(zpath, {})
    reject(zpath, "archive is empty")


def test_only_directories(zpath: Path) -> None:
    make_zip(zpath, {"a/": b"", "a/b/": b""})
    reject(zpath, "archive is empty")


# --- entry names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../x.py", r"'\.\./x\.py' escapes the archive \(contains '\.\.'\)"),
        ("a/../../x.py", "escapes the archive"),
        ("a\\..\\x.py", "escapes the archive"),
        ("/etc/x.py", "'/etc/x.py' has an absolute path"),
        ("\\x.py", "has an absolute path"),
        ("C:\\x.py", r"'C:\\\\x\.py' has an absolute path"),
        ("c:x.py", "has an absolute path"),
        ("./", "has an empty path"),
        ("././/", "has an empty path"),
    ],
)
def test_bad_names(zpath: Path, name: str, match: str) -> None:
    make_zip(zpath, [("main.py", MAIN), (name, b"x")])
    reject(zpath, match)


def test_nul_byte_in_name(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "evilX.py": b"x"})
    # zipfile cannot write a NUL into a name, so patch it into both headers.
    zpath.write_bytes(zpath.read_bytes().replace(b"evilX.py", b"evil\x00.py"))
    reject(zpath, "contains a NUL byte")


def test_a_deep_path_is_refused_before_anything_is_written(zpath: Path, dest: Path) -> None:
    deep = "/".join(["d"] * 2100) + "/x.py"
    make_zip(zpath, [("main.py", MAIN), (deep, b"x")])
    with pytest.raises(ArchiveError, match="has 2101 path components") as caught:
        extract_archive(zpath, dest, LIMITS)
    message = str(caught.value)
    assert message.startswith("archive entry 'd/d/d/") and len(message) < 200, message
    assert f"over the limit of {archive.MAX_PATH_PARTS}" in message
    assert not dest.exists()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("/".join(["d"] * 64) + "/x.py", "has 65 path components, over the limit of 64"),
        ("a" * 297 + ".py", "has a name of 300 bytes, over the limit of 255"),
        ("é" * 128 + "/x.py", "has a name of 256 bytes"),  # bytes, not characters
        ("/".join(["p" * 200] * 6), "has a path of 1205 bytes, over the limit of 1024"),
    ],
)
def test_long_paths_are_refused(zpath: Path, dest: Path, name: str, match: str) -> None:
    make_zip(zpath, [("main.py", MAIN), (name, b"x")])
    reject(zpath, match)
    with pytest.raises(ArchiveError, match=match):
        extract_archive(zpath, dest, LIMITS)  # never ENAMETOOLONG from the file system


def test_paths_at_the_limits_are_extracted(zpath: Path, dest: Path) -> None:
    deepest = "/".join(["d"] * (archive.MAX_PATH_PARTS - 1)) + "/x.py"
    longest_name = "n" * (archive.MAX_NAME_BYTES - 3) + ".py"
    longest_path = "/".join(["p" * 254] * 4) + "/" + "q" * 4
    assert len(longest_path.encode()) == archive.MAX_PATH_BYTES
    make_zip(
        zpath, [("main.py", MAIN), (deepest, b"1"), (longest_name, b"2"), (longest_path, b"3")]
    )
    extract_archive(zpath, dest, LIMITS)
    assert (dest / deepest).read_bytes() == b"1"
    assert (dest / longest_name).read_bytes() == b"2"
    assert (dest / longest_path).read_bytes() == b"3"


def test_dot_components_are_normalised(zpath: Path) -> None:
    make_zip(zpath, {"./app//main.py": MAIN})
    assert inspect_archive(zpath, LIMITS).entrypoint == "app/main.py"


# --- entry kinds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (stat.S_IFLNK, "a symbolic link"),
        (stat.S_IFIFO, "a FIFO"),
        (stat.S_IFCHR, "a character device"),
        (stat.S_IFBLK, "a block device"),
        (stat.S_IFSOCK, "a socket"),
    ],
)
def test_special_files(zpath: Path, kind: int, what: str) -> None:
    make_zip(zpath, [("main.py", MAIN), special("link.py", kind)])
    reject(zpath, f"'link.py' is {what}")


def test_symlink_named_main(zpath: Path, dest: Path) -> None:
    make_zip(zpath, [special("main.py", stat.S_IFLNK, b"/etc/passwd")])
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_archive(zpath, dest, LIMITS)
    assert not dest.exists()


def test_unix_modes_of_files_and_dirs_are_fine(zpath: Path) -> None:
    info = zipfile.ZipInfo("main.py")
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    make_zip(zpath, [(info, MAIN), special("pkg/", stat.S_IFDIR, b"")])
    assert inspect_archive(zpath, LIMITS).file_count == 1


def test_encrypted_entry(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "secret.py": b"x = 1\n"})
    patch_header(zpath, "secret.py", "flags", 0x1)
    reject(zpath, "'secret.py' is encrypted")


def test_unsupported_compression(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "odd.py": b"x = 1\n"})
    patch_header(zpath, "odd.py", "method", 99)
    reject(zpath, "'odd.py' uses unsupported compression method 99")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_uncapped_compression_methods_are_refused(zpath: Path, method: int) -> None:
    make_zip(zpath, {"main.py": MAIN}, compression=method)
    reject(zpath, f"'main.py' uses unsupported compression method {method}")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_supported_compression(zpath: Path, dest: Path, method: int) -> None:
    make_zip(zpath, {"main.py": MAIN * 100}, compression=method)
    extract_archive(zpath, dest, LIMITS)
    assert (dest / "main.py").read_bytes() == MAIN * 100


def test_zip_bomb_ratio(zpath: Path) -> None:
    # deflate squeezes 8 MiB of zeros about 1030:1, its maximum: past 1000:1.
    make_zip(zpath, {"main.py": MAIN, "bomb.bin": bytes(8 << 20)}, zipfile.ZIP_DEFLATED)
    reject(zpath, "'bomb.bin' has a compression ratio of .* over the limit of 1000:1")


def test_small_file_with_high_ratio_is_fine(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "zeros.bin": bytes(1 << 20)}, zipfile.ZIP_DEFLATED)
    assert inspect_archive(zpath, LIMITS).total_bytes == len(MAIN) + (1 << 20)


# --- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["main.py", "main.py"], "two entries for 'main.py'"),
        (["main.py", "./main.py"], "two entries for 'main.py': 'main.py' and './main.py'"),
        (["main.py", "lib", "lib/"], "two entries for 'lib'"),
        (["main.py", "a\\b.py", "a/b.py"], "two entries for 'a/b.py'"),
        (["main.py", "lib", "lib/x.py"], "'lib/x.py' is inside 'lib', which is a file"),
    ],
)
def test_duplicates(zpath: Path, names: list[str], match: str) -> None:
    make_zip(zpath, [(name, b"" if name.endswith("/") else b"x") for name in names])
    reject(zpath, match)


# --- limits ----------------------------------------------------------------------------------


def test_too_many_files(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "a.py": b"", "b/": b"", "b/c.py": b""})
    reject(zpath, "archive has 3 files, over the limit of 2", ArchiveLimits(max_files=2))
    assert inspect_archive(zpath, ArchiveLimits(max_files=3)).file_count == 3


def test_too_many_bytes(zpath: Path) -> None:
    make_zip(zpath, {"main.py": b"x" * 60, "data.bin": b"y" * 41})
    reject(zpath, "expands to 101 bytes, over the limit of 100 bytes", ArchiveLimits(max_bytes=100))
    assert inspect_archive(zpath, ArchiveLimits(max_bytes=101)).total_bytes == 101


# --- entrypoint and requirements ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["pkg/main.py", "main.py"], "main.py"),
        (["a/main.py", "z/y/main.py", "main.py"], "main.py"),
        (["b/main.py", "a/x/main.py"], "b/main.py"),
        (["a/x/main.py", "b/main.py"], "b/main.py"),
        (["b/main.py", "a/main.py"], "a/main.py"),
        (["__MACOSX/main.py", "app/main.py"], "app/main.py"),
        (["app/main.py/", "app/sub/main.py"], "app/sub/main.py"),
    ],
)
def test_entrypoint_choice(zpath: Path, names: list[str], expected: str) -> None:
    make_zip(zpath, [(name, b"" if name.endswith("/") else MAIN) for name in names])
    assert inspect_archive(zpath, LIMITS).entrypoint == expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["main.ipynb"], "main.ipynb"),
        (["pkg/main.py", "main.ipynb"], "main.ipynb"),
        (["pkg/main.ipynb", "main.py"], "main.py"),
        (["b/main.ipynb", "a/main.py"], "a/main.py"),
        (["a/main.ipynb", "b/main.py"], "a/main.ipynb"),
        (["a/x/main.py", "b/main.ipynb"], "b/main.ipynb"),
        (["__MACOSX/main.ipynb", "app/main.py"], "app/main.py"),
    ],
)
def test_a_notebook_entrypoint_is_chosen_by_the_same_rule(
    zpath: Path, names: list[str], expected: str
) -> None:
    make_zip(zpath, [(name, MAIN) for name in names])
    assert inspect_archive(zpath, LIMITS).entrypoint == expected


@pytest.mark.parametrize(
    ("names", "shown"),
    [
        (["main.py", "main.ipynb"], "'main.py' and 'main.ipynb'"),
        (["app/main.ipynb", "app/main.py", "z/main.py"], "'app/main.py' and 'app/main.ipynb'"),
    ],
)
def test_a_script_and_a_notebook_in_the_chosen_folder_are_refused(
    zpath: Path, names: list[str], shown: str
) -> None:
    make_zip(zpath, [(name, MAIN) for name in names])
    reject(zpath, f"archive has both {shown}: keep one entrypoint")


@pytest.mark.parametrize(
    "names",
    [["app.py"], ["__MACOSX/main.py", "x.py"], ["main.py/", "x.py"], ["main.pyc"], ["x.ipynb"]],
)
def test_no_main(zpath: Path, names: list[str]) -> None:
    make_zip(zpath, [(name, b"" if name.endswith("/") else MAIN) for name in names])
    reject(zpath, "archive has no main.py or main.ipynb")


def test_requirements_found_in_subfolder(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "deps/requirements.txt": b"requests\n"})
    info = inspect_archive(zpath, LIMITS)
    assert info == ArchiveInfo("main.py", "deps/requirements.txt", 2, len(MAIN) + 9)


def test_no_requirements(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "__MACOSX/requirements.txt": b"junk"})
    assert inspect_archive(zpath, LIMITS).requirements is None


def test_two_requirements(zpath: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "requirements.txt": b"", "lib/requirements.txt": b""})
    reject(zpath, "more than one requirements.txt \\('lib/requirements.txt', 'requirements.txt'\\)")


# --- extraction ----------------------------------------------------------------------------------


def test_good_extraction(zpath: Path, dest: Path) -> None:
    files = {
        "main.py": MAIN,
        "requirements.txt": b"numpy\n",
        "pkg/": b"",
        "pkg/__init__.py": b"",
        "pkg/sub/deep/data.bin": bytes(range(256)) * 1000,  # several 64 KiB chunks
        "empty/dir/": b"",
        "win\\style.py": b"x = 2\n",
    }
    info = zipfile.ZipInfo("pkg/tool.py")
    info.external_attr = (stat.S_IFREG | 0o777) << 16  # archive modes are ignored
    make_zip(zpath, [*files.items(), (info, b"tool\n")])

    result = extract_archive(zpath, dest, LIMITS)

    assert result == inspect_archive(zpath, LIMITS)
    assert result.entrypoint == "main.py"
    assert result.requirements == "requirements.txt"
    assert result.file_count == 6
    for name, data in files.items():
        target = dest / name.replace("\\", "/")
        if name.endswith("/"):
            assert target.is_dir()
        else:
            assert target.read_bytes() == data
    assert (dest / "pkg" / "tool.py").read_bytes() == b"tool\n"
    assert stat.S_IMODE((dest / "pkg" / "tool.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "main.py").stat().st_mode) == 0o644
    for folder in (dest, dest / "pkg", dest / "pkg" / "sub", dest / "empty" / "dir"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_inspect_writes_nothing(zpath: Path, tmp_path: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "a/b.py": b""})
    before = sorted(tmp_path.rglob("*"))
    inspect_archive(zpath, LIMITS)
    assert sorted(tmp_path.rglob("*")) == before


def test_rejection_creates_no_dest(zpath: Path, dest: Path) -> None:
    make_zip(zpath, {"main.py": MAIN, "../evil.py": b"x"})
    with pytest.raises(ArchiveError, match="escapes the archive"):
        extract_archive(zpath, dest, LIMITS)
    assert not dest.exists()
    assert not (dest.parent / "evil.py").exists()


def test_dest_must_not_exist(zpath: Path, dest: Path) -> None:
    make_zip(zpath, {"main.py": MAIN})
    dest.mkdir(parents=True)
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="already exists"):
        extract_archive(zpath, dest, LIMITS)
    assert (dest / "keep.txt").read_text() == "mine"  # someone else's folder is left alone


def _lying_zip(zpath: Path, method: int, declared: int) -> None:
    """A zip whose second member holds about 200 KiB but declares only `declared` bytes."""
    make_zip(zpath, {"main.py": MAIN, "pkg/big.py": b"# filler\n" * 22_000}, method)
    patch_header(zpath, "pkg/big.py", "file_size", declared)


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"]
)
@pytest.mark.parametrize("declared", [1000, 64 * 1024], ids=["small", "one-chunk"])
def test_lying_header_is_caught_while_extracting(
    zpath: Path, dest: Path, method: int, declared: int
) -> None:
    _lying_zip(zpath, method, declared)
    assert inspect_archive(zpath, LIMITS).total_bytes == len(MAIN) + declared  # looks fine
    # The message is the byte counter's own: zipfile alone would truncate the member at its
    # declared size and at most report a CRC error, so this fails if the counter is removed.
    with pytest.raises(ArchiveError, match=r"'pkg/big\.py' holds more data than its declared size"):
        extract_archive(zpath, dest, LIMITS)
    assert not dest.exists()  # main.py was already written: the whole tree must be gone


def test_header_overstating_size(zpath: Path, dest: Path) -> None:
    make_zip(zpath, {"main.py": MAIN})
    patch_header(zpath, "main.py", "file_size", len(MAIN) + 5)
    with pytest.raises(ArchiveError, match="less than its declared size"):
        extract_archive(zpath, dest, LIMITS)
    assert not dest.exists()


def test_running_total_is_checked_while_extracting(
    zpath: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Declared sizes already bound the total, so switch that check off to reach the counter.
    monkeypatch.setattr(archive, "_check_totals", lambda files, limits: 0)
    make_zip(zpath, {"main.py": b"x" * 60, "data.bin": b"y" * 60})
    with pytest.raises(ArchiveError, match="past its size limit while extracting"):
        extract_archive(zpath, dest, ArchiveLimits(max_bytes=100))
    assert not dest.exists()


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"]
)
def test_corrupt_data(zpath: Path, dest: Path, method: int) -> None:
    payload = b"payload = 1\n" * 50
    make_zip(zpath, {"main.py": MAIN, "data.py": payload}, method)
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo("data.py")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray(zpath.read_bytes())
    data[start + 10] ^= 0xFF  # flip a byte inside the member's data
    zpath.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"'data\.py' is corrupt"):
        extract_archive(zpath, dest, LIMITS)
    assert not dest.exists()
