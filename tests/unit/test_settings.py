"""Config: unknown keys and bad values stop start-up with a message naming them.

The contract: docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.settings import ConfigError, load_settings, parse_config

TENANT = {"id": "shop-a", "server_keys": ["sk_1"], "site_keys": ["pk_1"]}
WEBHOOK = {"url": "https://crm.example/hook", "secret": "whsec_123"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tenants": [TENANT], "extra": 1}, "config.extra: unknown config key"),
        (
            {"tenants": [TENANT], "gateway": {"max_batch": 0}},
            "gateway.max_batch: must be at least 1",
        ),
        (
            {"tenants": [TENANT], "gateway": {"max_batch": "10"}},
            "gateway.max_batch: expected a number",
        ),
        (
            {"tenants": [TENANT], "gateway": {"max_batch": 1.5}},
            "gateway.max_batch: expected a whole",
        ),
        ({"tenants": [TENANT], "gateway": {"maxbatch": 1}}, "gateway.maxbatch: unknown config key"),
        # each once a crash at start-up or a 500 on every request (Redis' integers overflowed)
        (
            {"tenants": [TENANT], "gateway": {"dedup_window_seconds": 2**63 - 1}},
            "gateway.dedup_window_seconds: must be at most 1,000,000,000",
        ),
        (
            {"tenants": [{**TENANT, "visit_timeout_seconds": float("inf")}]},
            "tenants[0].visit_timeout_seconds: must be at most",
        ),
        (
            {"tenants": [{**TENANT, "rate_limit_per_second": float("nan")}]},
            "tenants[0].rate_limit_per_second: must be at most",
        ),
        ({"tenants": []}, "tenants: at least one"),
        ({"tenants": [{**TENANT, "id": "bad id"}]}, "tenants[0].id"),
        ({"tenants": [{**TENANT, "id": "a\n"}]}, "tenants[0].id"),
        # each accepted once, then matching nothing
        (
            {"tenants": [{**TENANT, "allowed_origins": ["https://shop.example/"]}]},
            "tenants[0].allowed_origins: 'https://shop.example/' is not an origin",
        ),
        (
            {"tenants": [{**TENANT, "server_keys": [" "]}]},
            "tenants[0].server_keys: ' ' has white space",
        ),
        (
            {"tenants": [{**TENANT, "site_keys": ["pk_1\n"]}]},
            "tenants[0].site_keys: 'pk_1\\n' has white space",
        ),
        (
            {"tenants": [{**TENANT, "webhooks": [{"url": "https://", "secret": "whsec_123"}]}]},
            "tenants[0].webhooks[0].url: expected an http(s) URL with a host",
        ),
        ({"tenants": [{**TENANT, "server_keys": "sk"}]}, "tenants[0].server_keys: expected a list"),
        ({"tenants": [{"id": "x"}]}, "tenants[0].server_keys: a tenant needs at least one key"),
        ({"tenants": [TENANT, TENANT]}, "tenants[1].id: duplicate tenant id"),
        ({"tenants": [TENANT, {**TENANT, "id": "b"}]}, "tenants[1]: a key is used twice"),
        (
            {"tenants": [{**TENANT, "visit_timeout_seconds": -1}]},
            "tenants[0].visit_timeout_seconds: must be at least",
        ),
        (
            {"tenants": [{**TENANT, "webhooks": [{"url": "ftp://x", "secret": "whsec_123"}]}]},
            "tenants[0].webhooks[0].url",
        ),
        (
            {"tenants": [{**TENANT, "webhooks": [{"url": "https://x", "secret": "s"}]}]},
            "tenants[0].webhooks[0].secret",
        ),
        (
            {
                "tenants": [
                    {
                        **TENANT,
                        "webhooks": [{"url": "https://x", "secret": "whsec_123", "typez": []}],
                    }
                ]
            },
            "tenants[0].webhooks[0].typez: unknown config key",
        ),
        (
            {
                "tenants": [
                    {**TENANT, "webhooks": [WEBHOOK, {**WEBHOOK, "types": ["abandonedcart"]}]}
                ]
            },
            "tenants[0].webhooks[1].types: unknown trigger type 'abandonedcart'",
        ),
        (
            {
                "tenants": [
                    {
                        **TENANT,
                        "webhooks": [{**WEBHOOK, "types": ["abandonedCart", "orderSHIPPED"]}],
                    }
                ]
            },
            "tenants[0].webhooks[0].types: unknown trigger type 'orderSHIPPED'",
        ),
        (
            {"tenants": [{**TENANT, "webhooks": [{**WEBHOOK, "types": []}]}]},
            "tenants[0].webhooks[0].types: empty list; omit types for every trigger type",
        ),
    ],
)
def test_config_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, Path("/tmp"), None)
    assert message in str(error.value)


def test_full_config_is_read(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text("""
[gateway]
max_body_bytes = 2048
dedup_window_seconds = 60

[[tenants]]
id = "shop-a"
server_keys = ["sk_live_a1"]
site_keys = ["pk_live_a1"]
allowed_origins = ["https://shop-a.example"]
visit_timeout_seconds = 0.5
rate_limit_per_second = 10

[[tenants.webhooks]]
url = "https://crm.shop-a.example/hooks/gateway"
secret = "whsec_abcdef"
types = ["abandonedCart"]
""")
    settings = load_settings(str(path), env={"GATEWAY_DATA_DIR": str(tmp_path)})
    (tenant,) = settings.tenants
    assert (settings.max_body_bytes, settings.dedup_window_seconds, settings.max_batch) == (
        2048,
        60,
        1000,
    )
    assert tenant.visit_timeout_seconds == 0.5
    assert tenant.webhooks[0].types == frozenset({"abandonedCart"})
    assert settings.config_path == path.resolve()
    assert settings.redis_url is None


def test_webhook_types_must_be_trigger_types(tmp_path):
    path = tmp_path / "gateway.toml"
    config = """
[[tenants]]
id = "shop-a"
server_keys = ["sk_live_a1"]

[[tenants.webhooks]]
url = "https://crm.shop-a.example/hooks/gateway"
secret = "whsec_abcdef"
types = TYPES
"""
    path.write_text(config.replace("TYPES", '["abandonedCart", "orderShipped"]'))
    with pytest.raises(ConfigError) as error:
        load_settings(str(path), env={"GATEWAY_DATA_DIR": str(tmp_path)})
    # the message lists what is valid: every visit trigger, the product triggers, one order
    # trigger per status and the attribution's triggerConverted
    assert str(error.value) == (
        "tenants[0].webhooks[0].types: unknown trigger type 'orderShipped'; valid: abandonedCart,"
        " abandonedBrowse, abandonedCategory, abandonedVisit, priceDrop, backInStock,"
        " orderINITIALIZED, orderIN_PROGRESS,"
        " orderDELIVERED, orderCANCELLED, orderABANDONED_SHOPPING_CART, triggerConverted"
    )
    chosen = ["abandonedCategory", "abandonedVisit", "orderIN_PROGRESS", "orderCANCELLED"]
    path.write_text(config.replace("TYPES", orjson.dumps(chosen).decode()))
    settings = load_settings(str(path), env={"GATEWAY_DATA_DIR": str(tmp_path)})
    assert settings.tenants[0].webhooks[0].types == frozenset(chosen)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(str(tmp_path / "nope.toml"), env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[[tenants]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(str(broken), env={})
    # each once a traceback at start-up instead of a message naming the file
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[[tenants]]\nid = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not valid TOML: the file is not UTF-8"):
        load_settings(str(latin1), env={})
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(str(tmp_path), env={})


def test_damaged_generated_keys_or_data_dir_are_named(tmp_path):
    (tmp_path / "keys.json").write_text('{"server_key": "sk_1"}')
    with pytest.raises(ConfigError, match="keys.json: not the gateway's generated keys"):
        load_settings(env={"GATEWAY_DATA_DIR": str(tmp_path)})
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match="cannot read or write the generated keys"):
        load_settings(env={"GATEWAY_DATA_DIR": str(a_file)})


def test_default_tenant_keys_are_generated_once(tmp_path):
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://example:6379/0"}
    first, second = load_settings(env=env), load_settings(env=env)
    assert first.tenants == second.tenants
    assert first.tenants[0].server_keys[0].startswith("sk_")
    assert first.redis_url == "redis://example:6379/0"
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600


def test_webhook_retry_settings_are_validated(tmp_path):
    raw = {
        "tenants": [
            {
                "id": "t",
                "server_keys": ["k"],
                "webhooks": [{**WEBHOOK, "url": "https://x", "retry_budget": 1}],
            }
        ]
    }
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.retry_budget: unknown config key"):
        parse_config(raw, tmp_path, None)
    raw["tenants"][0]["webhooks"] = [{**WEBHOOK, "url": "https://x", "retry_budget_seconds": 0}]
    with pytest.raises(ConfigError, match="retry_budget_seconds: must be at least"):
        parse_config(raw, tmp_path, None)
    raw["tenants"][0]["webhooks"] = [{**WEBHOOK, "url": "https://x", "retry_budget_seconds": 60}]
    (webhook,) = parse_config(raw, tmp_path, None).tenants[0].webhooks
    assert webhook.retry_budget_seconds == 60.0 and webhook.timeout_seconds == 10.0


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"delay_seconds": -1}, "tenants[0].triggers.delay_seconds: must be at least 0"),
        ({"cooldown_seconds": "1h"}, "tenants[0].triggers.cooldown_seconds: expected a number"),
        ({"watch_days": 1.5}, "tenants[0].triggers.watch_days: expected a whole number"),
        (
            {"price_drop_min_percent": 150},
            "tenants[0].triggers.price_drop_min_percent: must be at most 100",
        ),
        ({"price_drop_min_percent": 0}, "tenants[0].triggers.price_drop_min_percent: must be at"),
        ({"delay": 60}, "tenants[0].triggers.delay: unknown config key"),
    ],
)
def test_trigger_policies_are_validated(policy, message):
    with pytest.raises(ConfigError) as error:
        parse_config({"tenants": [{**TENANT, "triggers": policy}]}, Path("/tmp"), None)
    assert message in str(error.value)


def test_trigger_policies_are_read_with_their_defaults(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text("""
[[tenants]]
id = "shop-a"
server_keys = ["sk_live_a1"]

[tenants.triggers]
delay_seconds = 3600
cooldown_seconds = 604800
""")
    (tenant,) = load_settings(str(path), env={"GATEWAY_DATA_DIR": str(tmp_path)}).tenants
    policy = tenant.triggers
    assert (policy.delay_seconds, policy.cooldown_seconds) == (3600, 604800)
    assert (policy.suppress_after_order_seconds, policy.attribution_window_seconds) == (0, 432000)
    assert (policy.watch_days, policy.price_drop_min_percent) == (30, 10)
