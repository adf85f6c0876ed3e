"""Settings: read once from the environment and the TOML config into frozen dataclasses.

An unknown key or a bad value stops start-up with a ConfigError that names it, so a typo in
`visit_timeout_seconds` never silently falls back to a default. Each table has its module beside
this one (`tenants`, `webhooks`), its keys' types, bounds and defaults next to their checks;
docs/configuration.md lists them all.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.settings.checks import ConfigError, numbers, unknown
from gateway.settings.destinations import Destination
from gateway.settings.tenants import Tenant, default_tenant, parse_tenant
from gateway.settings.webhooks import Webhook
from gateway.shared_values import DIR_ENV

__all__ = [
    "Destination",
    "REQUEST_TIMEOUT_SECONDS",
    "ConfigError",
    "Settings",
    "Tenant",
    "Webhook",
    "load_settings",
    "parse_config",
]

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
    # First-party aliases of the ingest paths and the tracker (docs/configuration.md): ad-blockers
    # list `/v1/event`-like paths. The defaults add none.
    collect_path: str = "/v1/event"
    collect_batch_path: str = "/v1/events"
    tracker_path: str = "/js/tracker.js"
    # When set, GET /metrics needs `Authorization: Bearer <it>`; kept out of repr (and logs).
    metrics_token: str | None = field(default=None, repr=False)
    # Where the server's worker processes share their metrics: GATEWAY_METRICS_DIR, which
    # `gateway serve` sets (gateway/shared_values.py). None: each process keeps its own.
    metrics_dir: Path | None = None
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
# The [gateway] keys that name a path: checked here for their form, and against the routes and
# each other by gateway/app.py (check_paths), which knows the routes.
PATH_KEYS = ("collect_path", "collect_batch_path", "tracker_path")
# Letters, digits and `-._~/` only: the tracker's path goes into its script as a string literal,
# and a `?`, `#`, `%` or space would not reach the server as written.
PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,199}")


def path(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{where}: must be a path starting with '/', got {value!r}")
    # `//`, `/./` and `/../` never reach a server as written: clients normalise them away.
    if not PATH.fullmatch(value) or "//" in value or {".", ".."} & set(value.split("/")):
        raise ConfigError(
            f"{where}: {value!r} may hold only letters, digits and -._~/ (no '//', '.' or '..' "
            "segments), at most 200 characters"
        )
    return value


def token(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string")
    if not value.isprintable() or " " in value:  # it could never arrive intact in a header
        raise ConfigError(f"{where}: has white space or control characters")
    return value


def parse_config(raw: dict[str, Any], data_dir: Path, redis_url: str | None) -> Settings:
    unknown("config", raw, {"gateway", "tenants"})
    section = raw.get("gateway", {})
    if not isinstance(section, dict):
        raise ConfigError("config.gateway: expected a table")
    unknown("gateway", section, {*GATEWAY_KEYS, *PATH_KEYS, "metrics_token"})
    limits = numbers("gateway", section, GATEWAY_KEYS)
    texts: dict[str, Any] = {
        name: path(f"gateway.{name}", section[name]) for name in PATH_KEYS if name in section
    }
    if "metrics_token" in section:
        texts["metrics_token"] = token("gateway.metrics_token", section["metrics_token"])
    raw_tenants = raw.get("tenants")
    if not isinstance(raw_tenants, list) or not raw_tenants:
        raise ConfigError("tenants: at least one [[tenants]] table is required")
    tenants = tuple(parse_tenant(f"tenants[{i}]", t) for i, t in enumerate(raw_tenants))
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
    return Settings(tenants=tenants, data_dir=data_dir, redis_url=redis_url, **limits, **texts)


def load_settings(config_path: str | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    data_dir = Path(env.get("GATEWAY_DATA_DIR") or ".gateway-data").resolve()
    redis_url = env.get("REDIS_URL") or None
    config_path = config_path or env.get("GATEWAY_CONFIG") or None
    metrics_dir = Path(env[DIR_ENV]) if env.get(DIR_ENV) else None
    if config_path is None:
        return Settings(
            tenants=(default_tenant(data_dir),),
            data_dir=data_dir,
            redis_url=redis_url,
            generated_keys=True,
            metrics_dir=metrics_dir,
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
    settings = parse_config(raw, data_dir, redis_url)
    return replace(settings, config_path=path.resolve(), metrics_dir=metrics_dir)
