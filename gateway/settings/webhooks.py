"""`[[tenants.webhooks]]`: where triggers are delivered, how they are signed and retried."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.model.orders import STATUSES
from gateway.redis.constants import PRODUCT_TRIGGERS, TRIGGER_CONVERTED, VISIT_TRIGGERS
from gateway.settings.checks import ConfigError, number, strings, unknown
from gateway.signing import SCHEMES, standard_key

WEBHOOK_URL = re.compile(r"https?://[^/?#\s]+([/?#]\S*)?")


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secrets: tuple[str, ...]  # each signs every delivery: old and new during a rotation
    types: frozenset[str] | None  # None: every trigger type
    signature: str = "gateway"  # or "standard": the scheme, see gateway/signing.py
    timeout_seconds: float = 10.0  # one delivery attempt; longer counts as a failure
    retry_initial_seconds: float = 5.0  # first retry delay, doubled per attempt (with jitter)
    retry_budget_seconds: float = 86_400.0  # age of a trigger after which it is dead-lettered


WEBHOOK_KEYS = {"url", "secret", "secrets", "signature", "types"}
# Every trigger type the gateway emits, so a webhook's `types` can be checked at start-up (a typo
# would otherwise match nothing, silently). The visit triggers are chosen by close_visit in
# lua/lib.lua; lua/lib_orders.lua emits order<STATUS> for each order status, and
# lua/lib_attribution.lua triggerConverted; lua/fanout.lua the product triggers.
TRIGGER_TYPES = (
    VISIT_TRIGGERS
    + PRODUCT_TRIGGERS
    + tuple(f"order{status}" for status in STATUSES)
    + (TRIGGER_CONVERTED,)
)
# name -> lower bound of the webhook's retry settings (defaults in Webhook)
WEBHOOK_RETRY_KEYS = {
    "timeout_seconds": 0.05,
    "retry_initial_seconds": 0.01,
    "retry_budget_seconds": 0.1,
}


def trigger_types(where: str, value: Any) -> frozenset[str]:
    types = strings(where, value)
    if not types:
        # An empty list would read as "no filter" downstream and deliver every type.
        raise ConfigError(f"{where}: empty list; omit types for every trigger type")
    for name in types:
        if name not in TRIGGER_TYPES:
            raise ConfigError(
                f"{where}: unknown trigger type {name!r}; valid: {', '.join(TRIGGER_TYPES)}"
            )
    return frozenset(types)


def parse_webhook(where: str, raw: Any) -> Webhook:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown(where, raw, WEBHOOK_KEYS | WEBHOOK_RETRY_KEYS.keys())
    url = raw.get("url")
    if not isinstance(url, str) or not WEBHOOK_URL.fullmatch(url):
        raise ConfigError(f"{where}.url: expected an http(s) URL with a host")
    signature, secrets = _signing(where, raw)
    types = trigger_types(f"{where}.types", raw["types"]) if "types" in raw else None
    retry = {
        name: number(f"{where}.{name}", raw[name], float, minimum)
        for name, minimum in WEBHOOK_RETRY_KEYS.items()
        if name in raw
    }
    return Webhook(url=url, secrets=secrets, types=types, signature=signature, **retry)


def _signing(where: str, raw: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A webhook's scheme and its secrets: `secret = "..."` or, to rotate, `secrets = [new, old]`
    (docs/triggers.md, Rotating a secret)."""
    signature = raw.get("signature", "gateway")
    if signature not in SCHEMES:
        raise ConfigError(f'{where}.signature: expected "gateway" or "standard", got {signature!r}')
    if "secrets" in raw:
        if "secret" in raw:
            raise ConfigError(f"{where}.secrets: give secret or secrets, not both")
        listed = strings(f"{where}.secrets", raw["secrets"])
        if not listed:
            raise ConfigError(f"{where}.secrets: empty list; a webhook needs a secret")
        named: list[tuple[str, Any]] = [(f"{where}.secrets[{i}]", s) for i, s in enumerate(listed)]
    else:
        named = [(f"{where}.secret", raw.get("secret"))]
    for name, secret in named:
        if not isinstance(secret, str) or len(secret) < 8:
            raise ConfigError(f"{name}: expected a string of at least 8 characters")
        if signature == "standard":
            try:
                standard_key(secret)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
    return signature, tuple(secret for _, secret in named)
