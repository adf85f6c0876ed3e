"""`[[tenants.destinations]]`: where accepted events and orders are forwarded
(docs/destinations.md).

Only eSputnik/Yespo for now (`kind = "esputnik"`): events go to `{url}/v1/event`, orders to
`{url}/v1/orders`, with HTTP Basic and the API key as the password.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from gateway.model.events import KNOWN_TYPES
from gateway.settings.checks import ConfigError, number, strings, unknown
from gateway.settings.webhooks import WEBHOOK_URL

KINDS = ("esputnik",)


@dataclass(frozen=True, slots=True)
class Destination:
    kind: str
    url: str  # the API's base: no trailing slash
    api_key: str  # the Basic password: never logged (__repr__)
    types: frozenset[str] | None  # None: every event type
    timeout_seconds: float = 10.0  # one attempt; longer counts as a failure
    max_attempt_seconds: float = 3600.0  # a job is retried until it is this old, then dead

    def __repr__(self) -> str:
        return f"Destination(kind={self.kind!r}, url={self.url!r}, api_key='***')"

    @property
    def id(self) -> str:
        """Stable across restarts and config reordering: derived from where it sends."""
        return hashlib.sha256(f"{self.kind}|{self.url}".encode()).hexdigest()[:12]


DESTINATION_KEYS = {"kind", "url", "api_key", "types"}
# name -> lower bound (defaults in Destination)
DESTINATION_NUMBERS = {"timeout_seconds": 0.05, "max_attempt_seconds": 0.1}


def parse_destination(where: str, raw: Any) -> Destination:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown(where, raw, DESTINATION_KEYS | DESTINATION_NUMBERS.keys())
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    url = raw.get("url")
    if not isinstance(url, str) or not WEBHOOK_URL.fullmatch(url):
        raise ConfigError(f"{where}.url: expected an http(s) URL with a host")
    if not url.isascii():  # it goes into the request line and Host header as it is
        raise ConfigError(f"{where}.url: expected ASCII (an international host name in punycode)")
    api_key = raw.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        # The message never quotes the value: it is a secret.
        raise ConfigError(f"{where}.api_key: expected a non-empty string")
    types = event_types(f"{where}.types", raw["types"]) if "types" in raw else None
    numbers = {
        name: number(f"{where}.{name}", raw[name], float, minimum)
        for name, minimum in DESTINATION_NUMBERS.items()
        if name in raw
    }
    return Destination(kind, url.rstrip("/"), api_key, types, **numbers)


def event_types(where: str, value: Any) -> frozenset[str]:
    types = strings(where, value)
    if not types:
        # An empty list would read as "no filter" downstream and forward every type.
        raise ConfigError(f"{where}: empty list; omit types for every event type")
    for name in types:
        if name not in KNOWN_TYPES:
            raise ConfigError(
                f"{where}: unknown event type {name!r}; valid: {', '.join(sorted(KNOWN_TYPES))}"
            )
    return frozenset(types)
