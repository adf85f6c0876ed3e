"""`[tenants.triggers]`: the marketer's policies for every trigger of a tenant (docs/triggers.md,
Trigger policies): how long to wait before re-checking and emitting, what suppresses a trigger,
how long an order counts as earned by one, and the product watch's thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.settings.checks import ConfigError, numbers, table


@dataclass(frozen=True, slots=True)
class TriggerPolicy:
    delay_seconds: float = 0.0  # after a visit closes, wait this long, re-check, then emit
    suppress_after_order_seconds: float = 0.0  # no abandonment trigger this soon after an order
    cooldown_seconds: float = 0.0  # at most one trigger per contact and type in this window
    attribution_window_seconds: float = 432_000.0  # an order this soon after a trigger is its
    watch_days: int = 30  # a product viewed or carted this recently is watched
    price_drop_min_percent: float = 10.0  # the smallest drop that notifies a watcher


# name -> (type, lower bound); the defaults are TriggerPolicy's.
POLICY_KEYS: dict[str, tuple[type, float]] = {
    "delay_seconds": (float, 0),
    "suppress_after_order_seconds": (float, 0),
    "cooldown_seconds": (float, 0),
    "attribution_window_seconds": (float, 0),
    "watch_days": (int, 1),
    "price_drop_min_percent": (float, 0.01),
}


def parse_policy(where: str, raw: Any) -> TriggerPolicy:
    raw = table(where, raw, POLICY_KEYS)
    values = numbers(where, raw, POLICY_KEYS)
    if values.get("price_drop_min_percent", 0) > 100:
        raise ConfigError(
            f"{where}.price_drop_min_percent: must be at most 100, "
            f"got {raw['price_drop_min_percent']!r}"
        )
    return TriggerPolicy(**values)
