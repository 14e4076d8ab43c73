"""Uploads over HTTP: Wallaroo's client shapes, hostile archives, limits, nothing half-written."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from .conftest import API, Api, make_zip, multipart

MAIN = "print('hi')\n"


def zip_of(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    """A zip written entry by entry (ZipInfo lets a test set modes and odd names)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    """A zip entry that is a symbolic link."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def assert_nothing_written(data_dir: Path) -> None:
    """No orchestration, archive, scratch folder or temporary upload is left behind."""
    for sub in ("orchestrations", "archives", "tmp"):
        assert list((data_dir / sub).iterdir()) == [], sub


HOSTILE: list[tuple[str, bytes, str]] = [
    ("not a zip", b"PK\x03\x04 definitely not a zip file", "not a zip archive"),
    ("empty zip", make_zip({}), "empty"),
    ("no main.py", make_zip({"app.py": MAIN}), "main.py"),
    (
        "two requirements",
        make_zip({"main.py": MAIN, "requirements.txt": "", "sub/requirements.txt": ""}),
        "requirements.txt",
    ),
    ("absolute path", zip_of([("main.py", b""), ("/etc/evil.py", b"")]), "/etc/evil.py"),
    ("parent path", zip_of([("main.py", b""), ("../evil.py", b"")]), "../evil.py"),
    ("link", zip_of([("main.py", b""), symlink("data", "/etc/passwd")]), "symbolic link"),
    ("long name", zip_of([("main.py", b""), ("a" * 300, b"")]), "over the limit of 255"),
    (
        "deep path",
        zip_of([("main.py", b""), ("/".join(["d"] * 2100) + "/x.py", b"")]),
        "has 2101 path components, over the limit of 64",
    ),
    (
        "requirement option",
        make_zip({"main.py": MAIN, "requirements.txt": "--index-url http://x\nsix\n"}),
        "--index-url",
    ),
    (
        "requirement url",
        make_zip({"main.py": MAIN, "requirements.txt": "pkg @ https://example.invalid/p.whl"}),
        "direct reference",
    ),
]


@pytest.mark.parametrize(("label", "archive", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_or_broken_archives_are_rejected(
    api: Api, data_dir: Path, label: str, archive: bytes, message: str
) -> None:
    response = await api.upload_raw(archive)
    assert response.code == 400, response.body
    assert message in json.loads(response.body)["message"]
    assert_nothing_written(data_dir)
    assert await api.ok("orchestration/list", {"workspace_id": 1}) == []


async def test_empty_file_part_is_rejected(api: Api, data_dir: Path) -> None:
    response = await api.upload_raw(b"")
    assert response.code == 400
    assert "empty" in json.loads(response.body)["message"]
    assert_nothing_written(data_dir)


@pytest.mark.parametrize("orch_config", [{"max_archive_files": 3, "max_archive_bytes": 1000}])
async def test_archive_limits(api: Api, data_dir: Path) -> None:
    many = make_zip({"main.py": MAIN, **{f"f{i}.txt": "x" for i in range(3)}})
    response = await api.upload_raw(many)
    assert response.code == 400 and "over the limit of 3" in json.loads(response.body)["message"]
    big = make_zip({"main.py": MAIN, "data.bin": bytes(5000)})
    response = await api.upload_raw(big)
    assert response.code == 400 and "1000" in json.loads(response.body)["message"]
    assert_nothing_written(data_dir)


@pytest.mark.parametrize("orch_config", [{"max_upload_bytes": 20_000}])
async def test_body_over_the_upload_limit_is_413(api: Api, data_dir: Path) -> None:
    archive = zip_of([("main.py", MAIN.encode()), ("noise.bin", os.urandom(60_000))])
    response = await api.upload_raw(archive)
    assert response.code == 413
    assert "20000" in json.loads(response.body)["message"]
    assert_nothing_written(data_dir)


@pytest.mark.parametrize("orch_config", [{"max_upload_bytes": 20_000}])
async def test_chunked_body_over_the_limit_is_413(
    jp_fetch: Callable[..., Any], data_dir: Path
) -> None:
    body, ctype = multipart([("file", "big.zip", b"x" * 30_000, "application/octet-stream")])

    async def produce(write: Callable[[bytes], Any]) -> None:
        for start in range(0, len(body), 4096):
            await write(body[start : start + 4096])

    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            API,
            "orchestration",
            "upload",
            method="POST",
            body_producer=produce,
            headers={"Content-Type": ctype},
        )
    assert caught.value.code == 413
    assert_nothing_written(data_dir)


@pytest.mark.parametrize(
    "server_config", [{"max_body_size": 256 * 1024, "max_buffer_size": 256 * 1024}]
)
async def test_uploads_are_streamed_not_buffered(api: Api) -> None:
    # The server may buffer at most 256 KiB of a body; a 2 MiB upload still goes through.
    payload = bytes(range(256)) * 8192
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("main.py", MAIN)
        zf.writestr("blob.bin", payload)
    archive = buf.getvalue()
    assert len(archive) > 2 * 1024 * 1024
    response = await api.upload_raw(archive)
    assert response.code == 202, response.body
    orch_id = json.loads(response.body)["id"]
    downloaded = await api.fetch(API, "orchestration", "download", params={"id": orch_id})
    assert downloaded.body == archive


async def test_metadata_part_without_a_file_name(api: Api) -> None:
    body, ctype = multipart(
        [
            ("metadata", None, b'{"workspace_id": 1, "name": "plain"}', "application/json"),
            ("file", "hello.zip", make_zip({"main.py": MAIN}), "application/octet-stream"),
        ]
    )
    response = await api.fetch(
        API, "orchestration", "upload", method="POST", body=body, headers={"Content-Type": ctype}
    )
    assert response.code == 202
    orch = await api.ok("orchestration/get_by_id", {"id": json.loads(response.body)["id"]})
    assert orch["name"] == "plain" and orch["file_name"] == "hello.zip"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("not json", "metadata: is not valid JSON"),
        ("{}", "workspace_id: is required"),
        ('{"workspace_id": "one"}', "workspace_id: must be an integer"),
    ],
)
async def test_bad_metadata_is_400(api: Api, data_dir: Path, metadata: str, message: str) -> None:
    response = await api.upload_raw(make_zip({"main.py": MAIN}), metadata)
    assert response.code == 400
    assert message in json.loads(response.body)["message"]
    assert_nothing_written(data_dir)


async def post_upload(api: Api, body: bytes, ctype: str) -> tuple[int, str]:
    """POST a raw upload body; the status and the answer's message."""
    response = await api.fetch(
        API,
        "orchestration",
        "upload",
        method="POST",
        body=body,
        headers={"Content-Type": ctype},
        raise_error=False,
    )
    return response.code, json.loads(response.body)["message"]


async def test_metadata_over_64_kib_is_400(api: Api, data_dir: Path) -> None:
    padding = " " * (64 * 1024)
    body, ctype = multipart(
        [
            ("metadata", None, f'{{"workspace_id": 1{padding}}}'.encode(), "application/json"),
            ("file", "hello.zip", make_zip({"main.py": MAIN}), "application/octet-stream"),
        ]
    )
    code, message = await post_upload(api, body, ctype)
    assert code == 400 and message == "metadata: is larger than 65536 bytes"
    assert_nothing_written(data_dir)


async def test_two_file_parts_are_400(api: Api, data_dir: Path) -> None:
    archive = make_zip({"main.py": MAIN})
    body, ctype = multipart(
        [
            ("file", "one.zip", archive, "application/octet-stream"),
            ("file", "two.zip", archive, "application/octet-stream"),
            ("metadata", None, b'{"workspace_id": 1}', "application/json"),
        ]
    )
    code, message = await post_upload(api, body, ctype)
    assert code == 400 and message == "file: more than one 'file' part was sent"
    assert_nothing_written(data_dir)


async def test_malformed_multipart_is_400(api: Api, data_dir: Path) -> None:
    boundary = "7c5156fb04a2177cf9e322ad31ebde44"
    body = f"--{boundary}\r\nNone--{boundary}--\r\n".encode()
    code, message = await post_upload(api, body, f"multipart/form-data; boundary={boundary}")
    assert code == 400 and message.startswith("body: is not multipart/form-data"), message
    assert_nothing_written(data_dir)


@pytest.mark.parametrize(
    ("ctype", "message"),
    [
        ("multipart/form-data; boundary=" + "b" * 300, "has a boundary the parser refuses"),
        ("multipart/form-data;;;", "must be multipart/form-data with a boundary"),
        ("application/json", "must be multipart/form-data with a boundary"),
    ],
)
async def test_a_refused_content_type_is_a_400_with_a_body_in_flight(
    api: Api, data_dir: Path, ctype: str, message: str
) -> None:
    # Refused before the body is read: the client, still sending, must get the answer.
    code, answer = await post_upload(api, b"\xff" * (2 << 20), ctype)
    assert code == 400 and answer.startswith(f"Content-Type: {message}"), answer
    assert_nothing_written(data_dir)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"workspace_id": 9223372036854775808}', "workspace_id: must be at most"),
        ('{"workspace_id": NaN}', "metadata: NaN is not a finite number"),
        ('{"workspace_id": 1, "name": "\\ud800"}', "name: holds a lone surrogate"),
    ],
)
async def test_metadata_values_are_checked_like_json_bodies(
    api: Api, data_dir: Path, metadata: str, message: str
) -> None:
    response = await api.upload_raw(make_zip({"main.py": MAIN}), metadata)
    assert response.code == 400, response.body
    assert message in json.loads(response.body)["message"]
    assert_nothing_written(data_dir)


async def test_unknown_workspace_is_404(api: Api, data_dir: Path) -> None:
    response = await api.upload_raw(make_zip({"main.py": MAIN}), '{"workspace_id": 42}')
    assert response.code == 404
    assert_nothing_written(data_dir)


async def test_missing_file_part_and_wrong_content_type(api: Api) -> None:
    body, ctype = multipart([("metadata", None, b'{"workspace_id": 1}', "application/json")])
    code, message = await post_upload(api, body, ctype)
    assert code == 400 and "'file'" in message
    code, message = await post_upload(api, b"{}", "application/json")
    assert code == 400 and "multipart/form-data" in message


@pytest.mark.parametrize(
    ("file_name", "fallback", "encoded"),
    [
        ("données ☃.zip", "donn_es _.zip", "donn%C3%A9es%20%E2%98%83.zip"),
        ('a\x01b"c\x7f.zip', "abc.zip", "a%01b%22c%7F.zip"),
        ("日本.zip", "__.zip", "%E6%97%A5%E6%9C%AC.zip"),
    ],
)
async def test_download_names_any_file_name_by_rfc_6266(
    api: Api, file_name: str, fallback: str, encoded: str
) -> None:
    archive = make_zip({"main.py": MAIN})
    quoted = file_name.replace('"', '\\"')
    body, ctype = multipart(
        [
            ("file", quoted, archive, "application/octet-stream"),
            ("metadata", None, b'{"workspace_id": 1}', "application/json"),
        ]
    )
    response = await api.fetch(
        API, "orchestration", "upload", method="POST", body=body, headers={"Content-Type": ctype}
    )
    orch_id = json.loads(response.body)["id"]
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["file_name"] == file_name
    downloaded = await api.fetch(API, "orchestration", "download", params={"id": orch_id})
    assert downloaded.body == archive
    assert downloaded.headers["Content-Disposition"] == (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    )


async def test_same_archive_twice_shares_one_stored_file(api: Api, data_dir: Path) -> None:
    archive = make_zip({"main.py": MAIN})
    first = json.loads((await api.upload_raw(archive)).body)["id"]
    second = json.loads((await api.upload_raw(archive)).body)["id"]
    assert first != second
    assert len(list((data_dir / "archives").iterdir())) == 1
    one = await api.ok("orchestration/get_by_id", {"id": first})
    two = await api.ok("orchestration/get_by_id", {"id": second})
    assert one["sha"] == two["sha"]
