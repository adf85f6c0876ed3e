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
from gateway.settings.checks import ConfigError, http_url, numbers, table, type_filter

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
# name -> kind and lower bound (defaults in Destination)
DESTINATION_NUMBERS: dict[str, tuple[type, float]] = {
    "timeout_seconds": (float, 0.05),
    "max_attempt_seconds": (float, 0.1),
}


def parse_destination(where: str, raw: Any) -> Destination:
    raw = table(where, raw, DESTINATION_KEYS | DESTINATION_NUMBERS.keys())
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    url = http_url(f"{where}.url", raw.get("url"))
    if not url.isascii():  # it goes into the request line and Host header as it is
        raise ConfigError(f"{where}.url: expected ASCII (an international host name in punycode)")
    api_key = raw.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        # The message never quotes the value: it is a secret.
        raise ConfigError(f"{where}.api_key: expected a non-empty string")
    types = (
        type_filter(f"{where}.types", raw["types"], sorted(KNOWN_TYPES), "event")
        if "types" in raw
        else None
    )
    limits = numbers(where, raw, DESTINATION_NUMBERS)
    return Destination(kind, url.rstrip("/"), api_key, types, **limits)
