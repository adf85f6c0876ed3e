"""Decoding of the stringified JSON inside event params (seed 001).

A string param that starts like JSON is decoded; nesting is kept to the second level inclusive and
anything deeper is re-serialized to a string, as eSputnik does. Decoding is lenient but honest: the
seed's own `productViewed` example has stray closing brackets after a complete object, so when only
closing brackets and white space follow the first complete value, that value is taken and the
event is marked repaired. Anything else that does not parse is the caller's 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_TRAILING_JUNK = "]} \t\r\n"
_CONTAINERS = frozenset({dict, list})
# How deep a param's value (or an order's field) may nest. orjson reads 1024 levels but writes only
# 254, and what is stored is written again inside the stored event and inside read answers: well
# below that, a value can be stored and read back (deeper was a 500, losing a whole batch).
MAX_DEPTH = 100
# A number sent as text, as JSON writes one (surrounding space allowed): Python's float() also
# takes "1_000", "inf" and other scripts' digits, which no client means as a number.
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


class NotJson(ValueError):
    pass


class TooDeep(NotJson):
    pass


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels in `value` (itself one, if one)."""
    if type(value) not in _CONTAINERS:
        return False
    level = [value]
    for _ in range(limit):
        deeper = [
            child
            for container in level
            for child in (container.values() if type(container) is dict else container)
            if type(child) in _CONTAINERS
        ]
        if not deeper:
            return False
        level = deeper
    return True


def number_text(text: str) -> float:
    """The number a JSON-like numeric text stands for; ValueError for anything else."""
    if _NUMBER_TEXT.fullmatch(text) is None:
        raise ValueError(f"not a number: {text!r}")
    return float(text)


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
                    if nested_deeper_than(grandchild, MAX_DEPTH - 2):
                        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
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


class RepeatedParams(dict[str, Any]):
    """Params sent as a JSON object that gives a name more than once (`repeated`). orjson reads
    such an object without a word, keeping the last value; a repeated name is refused instead, as
    in the list form."""

    repeated = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    marked = RepeatedParams(found)
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            marked.repeated = name
            break
        seen.add(name)
    return marked


def _events(document: Any, batch: bool) -> list[Any]:
    if not batch:
        return [document]
    if type(document) is dict:
        document = document.get("events")
    return document if type(document) is list else []


def mark_repeated_params(document: Any, body: bytes, batch: bool) -> None:
    """Swap in a RepeatedParams for the object-form params of each event that repeat a name.

    Only a body with object-form params is read again, by the json module (which shows every
    key), so the usual list form costs one type check per event."""
    events = _events(document, batch)
    if not any(type(event) is dict and type(event.get("params")) is dict for event in events):
        return
    try:
        again = _events(json.loads(body, object_pairs_hook=_pairs), batch)
    except (ValueError, RecursionError):  # orjson reads deeper and longer numbers than json
        return
    for event, twin in zip(events, again, strict=True):
        params = twin.get("params") if isinstance(twin, dict) else None
        if type(params) is RepeatedParams:
            event["params"] = params
