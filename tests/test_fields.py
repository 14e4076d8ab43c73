"""Request fields: every value a client can send is a field value or a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_orch.server.errors import InvalidRequest
from jupyter_orch.server.fields import MAX_DEPTH, MAX_INTEGER, Fields, parse_json_object


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, MAX_INTEGER + 1, -MAX_INTEGER - 1])
def test_integers_beyond_the_bounds_are_refused_naming_the_field(value: int) -> None:
    with pytest.raises(InvalidRequest, match="workspace_id: must be at") as caught:
        Fields({"workspace_id": value}).integer("workspace_id")
    assert caught.value.field == "workspace_id"


def test_integer_lists_are_bounded_too() -> None:
    assert Fields({"workspace_ids": [1, MAX_INTEGER]}).integers("workspace_ids", 1) == [
        1,
        MAX_INTEGER,
    ]
    for bad in ([2**63], [0], [1, -5]):
        with pytest.raises(InvalidRequest, match="workspace_ids: items must be at") as caught:
            Fields({"workspace_ids": bad}).integers("workspace_ids", 1)
        assert caught.value.field == "workspace_ids"


def test_explicit_bounds_apply_inside_the_default_ones() -> None:
    fields = Fields({"limit": 101, "timeout": 0})
    with pytest.raises(InvalidRequest, match="limit: must be at most 100"):
        fields.integer("limit", minimum=1, maximum=100)
    with pytest.raises(InvalidRequest, match="timeout: must be at least 1"):
        fields.integer("timeout", minimum=1)


def test_integral_numbers_are_integers_as_in_json_schema() -> None:
    value = Fields({"n": 3.0}).integer("n")
    assert value == 3 and type(value) is int
    assert Fields({"ids": [1.0, 2]}).integers("ids") == [1, 2]
    for bad in (1.5, 1e300, True, "1"):
        with pytest.raises(InvalidRequest, match="n: must be"):
            Fields({"n": bad}).integer("n")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"keep_days": NaN}',
        b'{"keep_days": Infinity}',
        b'{"json": {"a": [-Infinity]}}',
        b'{"keep_days": 1e400}',
        b'{"json": {"big": -1e999}}',
    ],
)
def test_non_finite_numbers_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="not a finite number"):
        parse_json_object(raw)


def test_numbers_have_an_upper_bound() -> None:
    with pytest.raises(InvalidRequest, match="keep_days: must be at most 10"):
        Fields({"keep_days": 11.5}).number("keep_days", minimum=0, maximum=10)


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a": ' * 100_000])
def test_json_nested_past_the_recursion_limit_is_a_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="nested"):
        parse_json_object(raw)


def test_json_nested_past_the_depth_limit_is_refused_naming_the_field() -> None:
    deep: Any = {}
    for _ in range(MAX_DEPTH - 1):
        deep = {"a": deep}
    assert parse_json_object(json.dumps({"json": deep}).encode())["json"] == deep
    with pytest.raises(InvalidRequest, match=f"json: is nested more than {MAX_DEPTH}"):
        parse_json_object(json.dumps({"json": [deep]}).encode())


@pytest.mark.parametrize(
    "raw", [b'{"name": "a\\ud800b"}', b'{"json": {"\\udfff": 1}}', b'{"\\ud800": 1}']
)
def test_lone_surrogates_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="lone surrogate"):
        parse_json_object(raw)
    assert parse_json_object(b'{"name": "\\ud83d\\ude00"}') == {"name": "\U0001f600"}


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:30:00+05:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_times_out_of_range_in_utc_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidRequest, match=r"since: .* out of range") as caught:
        Fields({"since": value}).time("since")
    assert caught.value.field == "since"
    with pytest.raises(InvalidRequest, match=r"time_range: .* out of range"):
        Fields({"time_range": [value, value]}).time_range()


def test_empty_body_is_an_empty_request() -> None:
    assert parse_json_object(b"") == {} and parse_json_object(b" \n") == {}
    with pytest.raises(InvalidRequest, match="id: is required"):
        Fields(parse_json_object(b"")).uuid("id")
