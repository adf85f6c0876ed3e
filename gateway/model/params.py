"""Reading the `params` of an event: names, stringified JSON, and the typed values inside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import ApiError, invalid
from gateway.model.decoding import (
    MAX_DEPTH,
    NotJson,
    RepeatedParams,
    TooDeep,
    decode_param,
    looks_like_json,
    nested_deeper_than,
    number_text,
)

MAX_PARAM_NAME = 100
MAX_PARAMS = 200
MAX_STRING = 65_536
_OPENERS = frozenset("{[")
_INFINITIES = (float("inf"), float("-inf"))


@dataclass(slots=True)
class Params:
    by_lower: dict[str, Any]  # lower-cased name -> decoded value
    names: dict[str, str]  # lower-cased name -> name as sent
    stored: dict[str, Any]  # name as sent -> decoded value
    repaired: bool


def number(value: Any, field: str, minimum: float | None = 0) -> float:
    """A number, also from a numeric string (eSputnik params are often strings)."""
    if isinstance(value, bool):
        raise invalid(field, f"{field} must be a number.")
    if isinstance(value, str):
        try:
            value = number_text(value)
        except ValueError:
            raise invalid(field, f"{field} must be a number.") from None
    if not isinstance(value, (int, float)) or value != value or value in _INFINITIES:
        raise invalid(field, f"{field} must be a number.")
    if minimum is not None and value < minimum:
        raise invalid(field, f"{field} must be at least {minimum:g}.")
    return value


def text_id(value: Any, field: str, limit: int = 256) -> str:
    """An id that may be sent as a string or a whole number."""
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(field, f"{field} must be a string.")
    else:
        text = str(value).strip()
    if not text:
        raise invalid(field, f"{field} must not be empty.", code="missing_field")
    if len(text) > limit:
        raise invalid(field, f"{field} is longer than {limit} characters.")
    return text


def read_params(raw: Any) -> Params:
    """One pass over the params, reporting errors as if entries' shapes and count came first."""
    params = Params({}, {}, {}, False)
    if raw is None:
        return params
    listed = isinstance(raw, list)
    if not listed and not isinstance(raw, dict):
        raise invalid("params", "params must be a list of {name, value} or an object.")
    if type(raw) is RepeatedParams:
        raise invalid(
            f"params.{raw.repeated}",
            f"The param {raw.repeated!r} is given more than once.",
            code="duplicate_param",
        )
    if len(raw) > MAX_PARAMS:
        raise (_malformed(raw) if listed else None) or invalid(
            "params", f"params has more than {MAX_PARAMS} entries."
        )
    by_lower, names, stored = params.by_lower, params.names, params.stored
    try:
        for i, entry in enumerate(raw if listed else raw.items()):
            if listed:
                if not isinstance(entry, dict) or "name" not in entry:
                    raise _entry_error(i)
                name = entry["name"]
                value = entry.get("value")
            else:
                name, value = entry
            if not isinstance(name, str) or not 0 < len(name) <= MAX_PARAM_NAME:
                if listed:
                    where = f"params[{i}].name"
                    message = f"{where} must be a string of 1-{MAX_PARAM_NAME} characters."
                else:  # the name is the field: a JSON object's keys are strings
                    where = f"params.{name}" if name else "params"
                    message = f"Param names must be 1-{MAX_PARAM_NAME} characters, not {len(name)}."
                raise invalid(where, message)
            lower = name.lower()
            if lower in by_lower:
                raise invalid(
                    f"params.{name}",
                    f"The param {name!r} is given more than once.",
                    code="duplicate_param",
                )
            if isinstance(value, str):
                if len(value) > MAX_STRING:
                    raise invalid(
                        f"params.{name}", f"params.{name} is over {MAX_STRING} characters."
                    )
                # The first character settles it, unless it is white space.
                head = value[:1]
                if head in _OPENERS or (head.isspace() and looks_like_json(value)):
                    try:
                        value, repaired = decode_param(value)
                    except TooDeep:
                        raise too_deep(f"params.{name}") from None
                    except NotJson:
                        raise invalid(
                            f"params.{name}",
                            f"params.{name} is not valid JSON.",
                            code="invalid_json",
                        ) from None
                    if repaired:
                        params.repaired = True
            elif nested_deeper_than(value, MAX_DEPTH):
                raise too_deep(f"params.{name}")
            by_lower[lower] = value
            names[lower] = name
            stored[name] = value
    except ApiError as error:
        # A malformed entry anywhere in the list is reported before a name's or value's error.
        raise (_malformed(raw) if listed else None) or error from None
    return params


def too_deep(field: str) -> ApiError:
    return invalid(field, f"{field} nests deeper than {MAX_DEPTH} levels.", code="invalid_json")


def _entry_error(index: int) -> ApiError:
    return invalid(f"params[{index}]", f"params[{index}] must be an object with name and value.")


def _malformed(entries: list[Any]) -> ApiError | None:
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry:
            return _entry_error(i)
    return None


def require_object(params: Params, lower: str, what: str) -> tuple[dict[str, Any], str]:
    field = f"params.{params.names.get(lower, lower)}"
    if lower not in params.by_lower:
        raise invalid(field, f"{what} events need the param {lower!r}.", code="missing_field")
    value = params.by_lower[lower]
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be a JSON object.")
    return value, field


def currency_code(params: Params) -> str | None:
    value = params.by_lower.get("currencycode")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 16:
        raise invalid("params.currencyCode", "params.currencyCode must be a code like 'USD'.")
    return value
