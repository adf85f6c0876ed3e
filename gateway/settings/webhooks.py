"""`[[tenants.webhooks]]`: where triggers are delivered, how they are signed and retried."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.model.orders import STATUSES
from gateway.redis.constants import PRODUCT_TRIGGERS, TRIGGER_CONVERTED, VISIT_TRIGGERS
from gateway.settings.checks import ConfigError, http_url, numbers, strings, table, type_filter
from gateway.signing import SCHEMES, standard_key


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
# name -> kind and lower bound of the webhook's retry settings (defaults in Webhook)
WEBHOOK_RETRY_KEYS: dict[str, tuple[type, float]] = {
    "timeout_seconds": (float, 0.05),
    "retry_initial_seconds": (float, 0.01),
    "retry_budget_seconds": (float, 0.1),
}


def parse_webhook(where: str, raw: Any) -> Webhook:
    raw = table(where, raw, WEBHOOK_KEYS | WEBHOOK_RETRY_KEYS.keys())
    url = http_url(f"{where}.url", raw.get("url"))
    signature, secrets = _signing(where, raw)
    types = (
        type_filter(f"{where}.types", raw["types"], TRIGGER_TYPES, "trigger")
        if "types" in raw
        else None
    )
    retry = numbers(where, raw, WEBHOOK_RETRY_KEYS)
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
