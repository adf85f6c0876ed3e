"""The checks every config table shares: tables without unknown keys, numbers with bounds, lists
of strings, type filters, http(s) URLs.

Each raises ConfigError naming the key (`tenants[0].rate_limit_per_second`), so a typo or a bad
value stops start-up with a message instead of falling back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any


class ConfigError(ValueError):
    pass


# Every number's upper bound: TOML takes inf, nan and 64-bit integers, which crashed start-up or
# overflowed Redis' integers (a TTL plus its slack) on every request. 10^9 s is over 31 years.
MAXIMUM = 1_000_000_000


def number(where: str, value: Any, kind: type, minimum: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: must be at least {minimum:g}, got {value!r}")
    if not value <= MAXIMUM:  # nan too
        raise ConfigError(f"{where}: must be at most {MAXIMUM:,}, got {value!r}")
    return kind(value)


def strings(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def keys(where: str, value: Any) -> tuple[str, ...]:
    listed = strings(where, value)
    for key in listed:
        if not key.isprintable() or " " in key:  # every other white space is not printable
            # A key with spaces can never arrive intact in an Authorization header or a URL.
            raise ConfigError(f"{where}: {key!r} has white space or control characters")
    return listed


def unknown(where: str, table: dict[str, Any], known: set[str] | dict[str, Any]) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown config key")


def table(where: str, raw: Any, known: set[str] | dict[str, Any]) -> dict[str, Any]:
    """A config table that has no key but those `known`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown(where, raw, known)
    return raw


def numbers(
    where: str, raw: dict[str, Any], bounds: dict[str, tuple[type, float]]
) -> dict[str, Any]:
    """The numbers of `bounds` (name -> its kind and lower bound) that the table sets."""
    return {
        name: number(f"{where}.{name}", raw[name], kind, minimum)
        for name, (kind, minimum) in bounds.items()
        if name in raw
    }


def type_filter(where: str, value: Any, valid: Collection[str], what: str) -> frozenset[str]:
    """A `types` list: names of `valid` (`what`: "trigger" or "event"), checked at start-up since
    a typo would otherwise match nothing, silently."""
    types = strings(where, value)
    if not types:
        # An empty list would read as "no filter" downstream and pass every type.
        raise ConfigError(f"{where}: empty list; omit types for every {what} type")
    for name in types:
        if name not in valid:
            raise ConfigError(f"{where}: unknown {what} type {name!r}; valid: {', '.join(valid)}")
    return frozenset(types)


HTTP_URL = re.compile(r"https?://[^/?#\s]+([/?#]\S*)?")


def http_url(where: str, value: Any) -> str:
    if not isinstance(value, str) or not HTTP_URL.fullmatch(value):
        raise ConfigError(f"{where}: expected an http(s) URL with a host")
    return value
