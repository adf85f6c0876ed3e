"""`[[tenants]]`: a shop's keys, origins, visit and cart windows, rate limit, webhooks, trigger
policies and destinations, and the generated `default` tenant of a gateway started without a config
file."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.settings.checks import ConfigError, keys, number, strings, table
from gateway.settings.destinations import Destination, parse_destination
from gateway.settings.triggers import TriggerPolicy, parse_policy
from gateway.settings.webhooks import Webhook, parse_webhook

TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")  # what a browser sends as Origin


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    server_keys: tuple[str, ...]
    site_keys: tuple[str, ...]
    allowed_origins: tuple[str, ...] = ()
    visit_timeout_seconds: float = 1800.0
    cart_purchase_window_seconds: float = 86400.0
    rate_limit_per_second: float = 0.0
    webhooks: tuple[Webhook, ...] = ()
    triggers: TriggerPolicy = TriggerPolicy()
    destinations: tuple[Destination, ...] = ()

    def origin_allowed(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin in self.allowed_origins


TENANT_KEYS = {
    "id",
    "server_keys",
    "site_keys",
    "allowed_origins",
    "visit_timeout_seconds",
    "cart_purchase_window_seconds",
    "rate_limit_per_second",
    "webhooks",
    "triggers",
    "destinations",
}


def origins(where: str, value: Any) -> tuple[str, ...]:
    origins = strings(where, value)
    for origin in origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            # Browsers send scheme://host[:port] exactly, never a path or a trailing slash: such
            # an entry would silently match nothing.
            raise ConfigError(
                f'{where}: {origin!r} is not an origin like https://shop.example (or "*")'
            )
    return origins


def parse_tenant(where: str, raw: Any) -> Tenant:
    raw = table(where, raw, TENANT_KEYS)
    tenant_id = raw.get("id")
    if not isinstance(tenant_id, str) or not TENANT_ID.fullmatch(tenant_id):
        raise ConfigError(f"{where}.id: expected 1-64 characters of A-Z a-z 0-9 _ -")
    server_keys = keys(f"{where}.server_keys", raw.get("server_keys", []))
    site_keys = keys(f"{where}.site_keys", raw.get("site_keys", []))
    if not server_keys and not site_keys:
        raise ConfigError(f"{where}.server_keys: a tenant needs at least one key")
    hooks = raw.get("webhooks", [])
    if not isinstance(hooks, list):
        raise ConfigError(f"{where}.webhooks: expected an array of tables")
    destinations = raw.get("destinations", [])
    if not isinstance(destinations, list):
        raise ConfigError(f"{where}.destinations: expected an array of tables")
    return Tenant(
        id=tenant_id,
        server_keys=server_keys,
        site_keys=site_keys,
        allowed_origins=origins(f"{where}.allowed_origins", raw.get("allowed_origins", [])),
        visit_timeout_seconds=number(
            f"{where}.visit_timeout_seconds", raw.get("visit_timeout_seconds", 1800.0), float, 0.05
        ),
        cart_purchase_window_seconds=number(
            f"{where}.cart_purchase_window_seconds",
            raw.get("cart_purchase_window_seconds", 86400.0),
            float,
            0,
        ),
        rate_limit_per_second=number(
            f"{where}.rate_limit_per_second", raw.get("rate_limit_per_second", 0.0), float, 0
        ),
        webhooks=tuple(parse_webhook(f"{where}.webhooks[{i}]", h) for i, h in enumerate(hooks)),
        triggers=parse_policy(f"{where}.triggers", raw.get("triggers", {})),
        destinations=_destinations(f"{where}.destinations", destinations),
    )


def _destinations(where: str, listed: list[Any]) -> tuple[Destination, ...]:
    parsed = tuple(parse_destination(f"{where}[{i}]", d) for i, d in enumerate(listed))
    ids = [d.id for d in parsed]
    for i, found in enumerate(ids):
        if found in ids[:i]:  # one queue per destination: two would share it
            raise ConfigError(f"{where}[{i}].url: the same destination is configured twice")
    return parsed


def default_tenant(data_dir: Path) -> Tenant:
    """One tenant `default` whose keys are generated once and kept in the data dir."""
    path = data_dir / "keys.json"
    try:
        if path.exists():
            keys = orjson.loads(path.read_bytes())
            server_key, site_key = keys["server_key"], keys["site_key"]
            if not (isinstance(server_key, str) and isinstance(site_key, str)):
                raise TypeError("keys are not strings")
        else:
            server_key = "sk_" + secrets.token_urlsafe(24)
            site_key = "pk_" + secrets.token_urlsafe(18)
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the operator's alone
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps({"server_key": server_key, "site_key": site_key}))
            tmp.chmod(0o600)
            tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read or write the generated keys: {exc}") from None
    except (ValueError, TypeError, KeyError):  # orjson's JSONDecodeError is a ValueError
        raise ConfigError(
            f"{path}: not the gateway's generated keys (delete it to generate new ones)"
        ) from None
    return Tenant(
        id="default",
        server_keys=(server_key,),
        site_keys=(site_key,),
        allowed_origins=("*",),
    )
