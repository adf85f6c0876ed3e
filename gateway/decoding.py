"""Decoding of the stringified JSON inside event params (seed 001).

A string param that starts like JSON is decoded; nesting is kept to the second level inclusive and
anything deeper is re-serialized to a string, as eSputnik does. Decoding is lenient but honest: the
seed's own `productViewed` example has stray closing brackets after a complete object, so when only
closing brackets and white space follow the first complete value, that value is taken and the
event is marked repaired. Anything else that does not parse is the caller's 400.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_TRAILING_JUNK = frozenset("]} \t\r\n")
MAX_DEPTH = 2


class NotJson(ValueError):
    pass


def _bounded_int(text: str) -> int:
    # What orjson (and the Lua side's cjson) can carry: a 64-bit integer. Bigger ones, and
    # Python's own 4300-digit conversion limit, are the caller's 400, not a 500 on storing.
    if len(text.lstrip("-")) > 20:
        raise NotJson("integer out of range")
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise NotJson("integer out of range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NotJson("number out of range")
    return value


def _no_constant(text: str) -> Any:
    raise NotJson(f"{text} is not JSON")


# Only for repairs: the same number rules as orjson, which refuses NaN, Infinity and overflow.
_raw_decoder = json.JSONDecoder(
    parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
)


def _flatten(value: Any, depth: int) -> Any:
    """Keep containers down to MAX_DEPTH; serialize deeper ones back to strings."""
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            return orjson.dumps(value).decode()
        return {k: _flatten(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth > MAX_DEPTH:
            return orjson.dumps(value).decode()
        return [_flatten(v, depth + 1) for v in value]
    return value


def looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    return stripped[:1] in ("{", "[")


def decode_param(text: str) -> tuple[Any, bool]:
    """Decode a stringified JSON object or array: (value, repaired). Raises NotJson."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = _repair(text)
        return _flatten(value, 1), True
    return _flatten(value, 1), False


def _repair(text: str) -> Any:
    stripped = text.lstrip()
    try:
        value, end = _raw_decoder.raw_decode(stripped)
    except (ValueError, RecursionError):  # JSONDecodeError and NotJson are ValueErrors
        raise NotJson("not valid JSON") from None
    rest = stripped[end:]
    if not rest or not set(rest) <= _TRAILING_JUNK or not isinstance(value, (dict, list)):
        raise NotJson("not valid JSON: unexpected text after the value")
    return value
