"""Settings: read once from the environment and the TOML config into frozen dataclasses.

An unknown key or a bad value stops start-up with a ConfigError that names it, so a typo in
`visit_timeout_seconds` never silently falls back to a default.

This module is over 300 lines because it is the whole config schema: every key's type, bound and
default sits beside its check, so one file answers "what may I write in gateway.toml".
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from gateway.model.orders import STATUSES
from gateway.redis.constants import VISIT_TRIGGERS
from gateway.signing import SCHEMES, standard_key

TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")  # what a browser sends as Origin
WEBHOOK_URL = re.compile(r"https?://[^/?#\s]+([/?#]\S*)?")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secrets: tuple[str, ...]  # each signs every delivery: old and new during a rotation
    types: frozenset[str] | None  # None: every trigger type
    signature: str = "gateway"  # or "standard": the scheme, see gateway/signing.py
    timeout_seconds: float = 10.0  # one delivery attempt; longer counts as a failure
    retry_initial_seconds: float = 5.0  # first retry delay, doubled per attempt (with jitter)
    retry_budget_seconds: float = 86_400.0  # age of a trigger after which it is dead-lettered


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

    def origin_allowed(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin in self.allowed_origins


REQUEST_TIMEOUT_SECONDS = 60.0  # a request's head and body must arrive within this


@dataclass(frozen=True, slots=True)
class Settings:
    tenants: tuple[Tenant, ...]
    data_dir: Path
    redis_url: str | None = None  # None: the embedded Redis under data_dir
    max_body_bytes: int = 1_048_576
    max_batch: int = 1000
    dedup_window_seconds: int = 86_400
    contact_ttl_seconds: int = 180 * 86_400
    cart_ttl_seconds: int = 30 * 86_400
    events_stream_maxlen: int = 1_000_000
    recent_views: int = 20
    contact_events: int = 200
    request_timeout_seconds: float = REQUEST_TIMEOUT_SECONDS
    replicas_to_ack: int = 0  # WAIT for this many replicas before answering a write (0: none)
    replica_ack_timeout_ms: int = 200
    generated_keys: bool = False  # True when keys were generated (no config file)
    config_path: Path | None = field(default=None)

    @property
    def tenant_ids(self) -> list[str]:
        return [t.id for t in self.tenants]


# name -> (type, lower bound) of every [gateway] key; documented in docs/configuration.md.
GATEWAY_KEYS: dict[str, tuple[type, float]] = {
    "max_body_bytes": (int, 1024),
    "max_batch": (int, 1),
    "dedup_window_seconds": (int, 1),
    "contact_ttl_seconds": (int, 60),
    "cart_ttl_seconds": (int, 60),
    "events_stream_maxlen": (int, 1000),
    "recent_views": (int, 1),
    "contact_events": (int, 1),
    "request_timeout_seconds": (float, 0.1),
    "replicas_to_ack": (int, 0),
    "replica_ack_timeout_ms": (int, 1),
}
TENANT_KEYS = {
    "id",
    "server_keys",
    "site_keys",
    "allowed_origins",
    "visit_timeout_seconds",
    "cart_purchase_window_seconds",
    "rate_limit_per_second",
    "webhooks",
}
WEBHOOK_KEYS = {"url", "secret", "secrets", "signature", "types"}
# Every trigger type the gateway emits, so a webhook's `types` can be checked at start-up (a typo
# would otherwise match nothing, silently). The visit triggers are chosen by close_visit in
# lua/lib.lua; lua/lib_orders.lua emits order<STATUS> for each order status.
TRIGGER_TYPES = VISIT_TRIGGERS + tuple(f"order{status}" for status in STATUSES)
# name -> lower bound of the webhook's retry settings (defaults in Webhook)
WEBHOOK_RETRY_KEYS = {
    "timeout_seconds": 0.05,
    "retry_initial_seconds": 0.01,
    "retry_budget_seconds": 0.1,
}


# Every number's upper bound: TOML takes inf, nan and 64-bit integers, which crashed start-up or
# overflowed Redis' integers (a TTL plus its slack) on every request. 10^9 s is over 31 years.
MAXIMUM = 1_000_000_000


def _number(where: str, value: Any, kind: type, minimum: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: must be at least {minimum:g}, got {value!r}")
    if not value <= MAXIMUM:  # nan too
        raise ConfigError(f"{where}: must be at most {MAXIMUM:,}, got {value!r}")
    return kind(value)


def _strings(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def _keys(where: str, value: Any) -> tuple[str, ...]:
    keys = _strings(where, value)
    for key in keys:
        if not key.isprintable() or " " in key:  # every other white space is not printable
            # A key with spaces can never arrive intact in an Authorization header or a URL.
            raise ConfigError(f"{where}: {key!r} has white space or control characters")
    return keys


def _origins(where: str, value: Any) -> tuple[str, ...]:
    origins = _strings(where, value)
    for origin in origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            # Browsers send scheme://host[:port] exactly, never a path or a trailing slash: such
            # an entry would silently match nothing.
            raise ConfigError(
                f'{where}: {origin!r} is not an origin like https://shop.example (or "*")'
            )
    return origins


def _unknown(where: str, table: dict[str, Any], known: set[str] | dict[str, Any]) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown config key")


def _trigger_types(where: str, value: Any) -> frozenset[str]:
    types = _strings(where, value)
    if not types:
        # An empty list would read as "no filter" downstream and deliver every type.
        raise ConfigError(f"{where}: empty list; omit types for every trigger type")
    for name in types:
        if name not in TRIGGER_TYPES:
            raise ConfigError(
                f"{where}: unknown trigger type {name!r}; valid: {', '.join(TRIGGER_TYPES)}"
            )
    return frozenset(types)


def _webhook(where: str, raw: Any) -> Webhook:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    _unknown(where, raw, WEBHOOK_KEYS | WEBHOOK_RETRY_KEYS.keys())
    url = raw.get("url")
    if not isinstance(url, str) or not WEBHOOK_URL.fullmatch(url):
        raise ConfigError(f"{where}.url: expected an http(s) URL with a host")
    signature, secrets = _signing(where, raw)
    types = _trigger_types(f"{where}.types", raw["types"]) if "types" in raw else None
    retry = {
        name: _number(f"{where}.{name}", raw[name], float, minimum)
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
        listed = _strings(f"{where}.secrets", raw["secrets"])
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


def _tenant(where: str, raw: Any) -> Tenant:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    _unknown(where, raw, TENANT_KEYS)
    tenant_id = raw.get("id")
    if not isinstance(tenant_id, str) or not TENANT_ID.fullmatch(tenant_id):
        raise ConfigError(f"{where}.id: expected 1-64 characters of A-Z a-z 0-9 _ -")
    server_keys = _keys(f"{where}.server_keys", raw.get("server_keys", []))
    site_keys = _keys(f"{where}.site_keys", raw.get("site_keys", []))
    if not server_keys and not site_keys:
        raise ConfigError(f"{where}.server_keys: a tenant needs at least one key")
    hooks = raw.get("webhooks", [])
    if not isinstance(hooks, list):
        raise ConfigError(f"{where}.webhooks: expected an array of tables")
    return Tenant(
        id=tenant_id,
        server_keys=server_keys,
        site_keys=site_keys,
        allowed_origins=_origins(f"{where}.allowed_origins", raw.get("allowed_origins", [])),
        visit_timeout_seconds=_number(
            f"{where}.visit_timeout_seconds", raw.get("visit_timeout_seconds", 1800.0), float, 0.05
        ),
        cart_purchase_window_seconds=_number(
            f"{where}.cart_purchase_window_seconds",
            raw.get("cart_purchase_window_seconds", 86400.0),
            float,
            0,
        ),
        rate_limit_per_second=_number(
            f"{where}.rate_limit_per_second", raw.get("rate_limit_per_second", 0.0), float, 0
        ),
        webhooks=tuple(_webhook(f"{where}.webhooks[{i}]", h) for i, h in enumerate(hooks)),
    )


def parse_config(raw: dict[str, Any], data_dir: Path, redis_url: str | None) -> Settings:
    _unknown("config", raw, {"gateway", "tenants"})
    section = raw.get("gateway", {})
    if not isinstance(section, dict):
        raise ConfigError("config.gateway: expected a table")
    _unknown("gateway", section, GATEWAY_KEYS)
    limits = {
        name: _number(f"gateway.{name}", section[name], kind, minimum)
        for name, (kind, minimum) in GATEWAY_KEYS.items()
        if name in section
    }
    raw_tenants = raw.get("tenants")
    if not isinstance(raw_tenants, list) or not raw_tenants:
        raise ConfigError("tenants: at least one [[tenants]] table is required")
    tenants = tuple(_tenant(f"tenants[{i}]", t) for i, t in enumerate(raw_tenants))
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for i, tenant in enumerate(tenants):
        if tenant.id in seen_ids:
            raise ConfigError(f"tenants[{i}].id: duplicate tenant id {tenant.id!r}")
        seen_ids.add(tenant.id)
        for key in tenant.server_keys + tenant.site_keys:
            if key in seen_keys:
                raise ConfigError(f"tenants[{i}]: a key is used twice (keys must be unique)")
            seen_keys.add(key)
    return Settings(tenants=tenants, data_dir=data_dir, redis_url=redis_url, **limits)


def _default_tenant(data_dir: Path) -> Tenant:
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
            data_dir.mkdir(parents=True, exist_ok=True)
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


def load_settings(config_path: str | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    data_dir = Path(env.get("GATEWAY_DATA_DIR") or ".gateway-data").resolve()
    redis_url = env.get("REDIS_URL") or None
    config_path = config_path or env.get("GATEWAY_CONFIG") or None
    if config_path is None:
        return Settings(
            tenants=(_default_tenant(data_dir),),
            data_dir=data_dir,
            redis_url=redis_url,
            generated_keys=True,
        )
    path = Path(config_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:  # a directory, no permission, ...
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return replace(parse_config(raw, data_dir, redis_url), config_path=path.resolve())
