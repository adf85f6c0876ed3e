"""Decoding of the stringified JSON inside event params (seed 001).

A string param that starts like JSON is decoded; nesting is kept to the second level inclusive and
anything deeper is re-serialized to a string, as eSputnik does. Decoding is lenient but honest: the
seed's own `productViewed` example has stray closing brackets after a complete object, so when only
closing brackets and white space follow the first complete value, that value is taken and the
event is marked repaired. Anything else that does not parse is the caller's 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_TRAILING_JUNK = "]} \t\r\n"
_CONTAINERS = frozenset({dict, list})


class NotJson(ValueError):
    pass


def _int_as_orjson(text: str) -> int | float:
    # As orjson reads an unrepaired text: an integer within 64 bits, a float beyond (also past
    # Python's own 4300-digit conversion limit), the caller's 400 beyond a float's range.
    if len(text.lstrip("-")) <= 20:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return _finite_float(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NotJson("number out of range")
    return value


def _no_constant(text: str) -> Any:
    raise NotJson(f"{text} is not JSON")


# Only for repairs: the number rules of orjson, which reads integers beyond 64 bits as floats
# and refuses NaN, Infinity and overflow.
# Its C scanner, called directly: raw_decode only wraps it in a Python frame (typeshed omits it).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(
    parse_int=_int_as_orjson, parse_float=_finite_float, parse_constant=_no_constant
).scan_once  # type: ignore[attr-defined]


def _flatten(value: Any) -> Any:
    """Keep the top-level container and the ones in it; serialize deeper ones back to strings.

    In place, and only where a container holds a container: most values are flat.
    """
    for child in value.values() if type(value) is dict else value:
        if type(child) in _CONTAINERS:  # parsers make exact dicts and lists
            for key, grandchild in child.items() if type(child) is dict else enumerate(child):
                if type(grandchild) in _CONTAINERS:
                    child[key] = orjson.dumps(grandchild).decode()
    return value


def looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    return stripped[:1] in ("{", "[")


def decode_param(text: str) -> tuple[Any, bool]:
    """Decode a stringified JSON object or array: (value, repaired). Raises NotJson."""
    # More closing than opening braces (the seed's own example): try the repair first, which
    # saves orjson's failure (its JSONDecodeError works out line and column in Python). Only a
    # value followed by a stray bracket is taken, and orjson would have refused that text.
    braces = text.count("{")
    # A container to flatten is a third level: its text has at least three opening brackets.
    flatten = _flatten if braces + text.count("[") > 2 else _as_is
    if text.count("}") > braces:
        try:
            value, rest = _first_value(text)
        except NotJson:
            pass
        else:
            if rest.strip():
                return flatten(value), True
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value, rest = _first_value(text)
        if not rest:
            raise NotJson("not valid JSON") from None
        return flatten(value), True
    return flatten(value), False


def _as_is(value: Any) -> Any:
    return value


def _first_value(text: str) -> tuple[dict[str, Any] | list[Any], str]:
    """The object or array at the start, and what follows it: only closing brackets and space."""
    stripped = text.lstrip()
    try:
        value, end = _scan(stripped, 0)
    except (StopIteration, ValueError, RecursionError):  # NotJson is a ValueError
        raise NotJson("not valid JSON") from None
    rest = stripped[end:]
    if rest.strip(_TRAILING_JUNK) or not isinstance(value, (dict, list)):
        raise NotJson("not valid JSON: unexpected text after the value")
    if "\\u" in stripped[:end]:
        # Python's scanner takes a lone surrogate escape (\ud800), which orjson, like the rest
        # of the pipeline, refuses: such text is no more valid here than unrepaired.
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            raise NotJson("not valid JSON: a lone surrogate") from None
    return value, rest
