"""`events.prepare` in-process: the orders in which its single pass must still report and store."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.model import events
from gateway.model.decoding import NotJson, decode_param

RECEIVED = "2026-01-01T00:00:00.000Z"


def error_of(body: Any) -> tuple[int, str, str, str | None]:
    with pytest.raises(ApiError) as caught:
        events.prepare(body, False, RECEIVED)
    return caught.value.status, caught.value.code, caught.value.message, caught.value.field


def custom(params: Any, **body: Any) -> dict[str, Any]:
    return {"eventTypeKey": "custom", "keyValue": "ann@example.com", "params": params, **body}


def test_a_malformed_entry_further_on_is_reported_before_an_earlier_bad_name_or_value():
    bad_name = [{"name": ""}, {"name": "ok", "value": 1}, "not an entry"]
    bad_json = [{"name": "p", "value": "{oops"}, {"value": 1}]
    duplicate = [{"name": "a"}, {"name": "A"}, {"name": 5, "value": 1}, 7]
    for params, where in (
        (bad_name, "params[2]"),
        (bad_json, "params[1]"),
        (duplicate, "params[3]"),
    ):
        assert error_of(custom(params))[3] == where


def test_too_many_params_is_reported_after_a_malformed_entry_and_before_anything_else():
    many = [{"name": f"p{i}", "value": "{oops"} for i in range(201)]
    assert error_of(custom(many))[3] == "params"
    assert error_of(custom([*many, "x"]))[3] == "params[201]"
    assert error_of(custom({f"p{i}": "{oops" for i in range(201)}))[3] == "params"


def test_of_several_bad_identifier_params_the_first_known_name_is_reported():
    # IDENTIFIER_PARAMS lists email before phone and sms, whatever order they are sent in
    params = [{"name": "SMS", "value": "call me"}, {"name": "Email", "value": [5]}]
    assert error_of(custom(params))[1:] == (
        "invalid_field",
        "params.Email must be a string.",
        "params.Email",
    )
    params = [{"name": "sms", "value": "x"}, {"name": "phone", "value": "y"}]
    assert error_of(custom(params))[3] == "params.phone"


def test_identifiers_are_ranked_and_ties_keep_the_known_names_order():
    params = {
        "visitorId": "v",
        "userEmail": "B@x.io",
        "phone": "+123456",
        "Email": " A@x.io ",
        "contactKey": "k",
        "emailAddress": "b@x.io",
    }
    prepared = events.prepare(
        {"eventTypeKey": "custom", "keyValue": "a@x.io", "visitorId": "v1", "params": params},
        False,
        RECEIVED,
    )
    ids = orjson.loads(prepared.envelope)[3]  # the envelope's identifiers (events.py)
    assert ids == ["email:a@x.io", "email:b@x.io", "phone:+123456", "contactKey:k", "visitor:v1"]
    keyed = events.prepare({"eventTypeKey": "c", "keyValue": "K1", "params": params}, False, "t")
    assert orjson.loads(keyed.envelope)[3][-1] == "key:K1"


@pytest.mark.parametrize(
    ("text", "value", "repaired"),
    [
        ('{"k": "}"}', {"k": "}"}, False),  # more closing braces, all inside a string
        ('{"k": "}"} \n', {"k": "}"}, False),
        ('{"k": "}"}]}', {"k": "}"}, True),
        (' {"a": [1, {"b": {"c": 2}}]}}', {"a": [1, '{"b":{"c":2}}']}, True),
        ('[{"a": {"b": 1}}]]', [{"a": '{"b":1}'}], True),
        ('{"n": 18446744073709551615}}', {"n": 18446744073709551615}, True),
        # beyond 64 bits a float, as orjson reads the same value without the stray bracket
        ('{"n": 18446744073709551616}}', {"n": 18446744073709551616.0}, True),
        ('{"n": -9223372036854775809}}', {"n": -9223372036854775809.0}, True),
        ('\u00a0{"a": 1}}', {"a": 1}, True),
        # white space among the junk, brackets inside strings
        ('{"a": [1]} ]}', {"a": [1]}, True),  # white space among the junk
        ('{"a": "]"}}', {"a": "]"}, True),  # a bracket inside a string
        ('{"a": ["}"]}]', {"a": ["}"]}, True),
    ],
)
def test_repairs(text: str, value: Any, repaired: bool):
    assert decode_param(text) == (value, repaired)


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 1e400}}',
        '{"n": 1' + "0" * 400 + "}}",  # an integer beyond a float's range
        '{"n": NaN}}',
        '{"a": 1}} x',
        "\u00a0{}",
        '{"a": 1',
        '{"note": "\\ud800"}]}',  # a lone surrogate, which orjson refuses unrepaired too
    ],
)
def test_unrepairable(text: str):
    with pytest.raises(NotJson):
        decode_param(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


def two_levels(value: Any, depth: int = 1) -> Any:
    if isinstance(value, dict | list) and depth > 2:
        return orjson.dumps(value).decode()
    if isinstance(value, dict):
        return {k: two_levels(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [two_levels(v, depth + 1) for v in value]
    return value


@given(
    st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=4) | st.lists(JSON_VALUES),
    st.text(alphabet="]} \n", max_size=4),
)
def test_stray_closing_brackets_are_repaired_and_only_they(value: Any, tail: str):
    assert decode_param(orjson.dumps(value).decode() + tail) == (
        two_levels(value),
        bool(tail.strip()),
    )
