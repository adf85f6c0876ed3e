"""The keyspace from one table (gateway/redis/keys.py): the Lua scripts, run in a real Redis, build
every key name as Python does, and the layout stays what the stored data has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

import gateway.redis.scripts
from gateway.redis.keys import KEYSPACE, LEGACY_PREFIX, PREFIX, TenantKeys
from gateway.redis.scripts import lua_key_helpers

LUA = Path(gateway.redis.scripts.__file__).parent / "lua"

# KEYSPACE name -> (TenantKeys' name for it, the Lua builder's arguments, the name after the prefix)
CASES: dict[str, tuple[Callable[[TenantKeys], str], tuple[str, ...], str]] = {
    "events": (lambda k: k.events, (), ":events"),
    "dedup": (lambda k: k.dedup("e-1"), ("e-1",), ":dedup:e-1"),
    "identifier": (lambda k: k.identifier("email", "a@b.c"), ("email:a@b.c",), ":id:email:a@b.c"),
    "contact": (lambda k: k.contact("c1"), ("c1",), ":c:{c1}"),
    "contact_pv": (lambda k: k.contact("c1", ":pv"), ("c1",), ":c:{c1}:pv"),
    "contact_pvd": (lambda k: k.contact("c1", ":pvd"), ("c1",), ":c:{c1}:pvd"),
    "contact_cv": (lambda k: k.contact("c1", ":cv"), ("c1",), ":c:{c1}:cv"),
    "contact_ev": (lambda k: k.contact("c1", ":ev"), ("c1",), ":c:{c1}:ev"),
    "contact_rfm": (lambda k: k.contact("c1", ":rfm"), ("c1",), ":c:{c1}:rfm"),
    "contact_rfmo": (lambda k: k.contact("c1", ":rfmo"), ("c1",), ":c:{c1}:rfmo"),
    "merged_into": (lambda k: k.merged_into("c1"), ("c1",), ":c:{c1}:into"),
    "visits": (lambda k: k.visits, (), ":visits"),
    "cart": (lambda k: k.cart("rs-1"), ("rs-1",), ":cart:rs-1"),
    "order": (lambda k: k.order("o-1"), ("o-1",), ":o:{o-1}"),
    "order_fields": (lambda k: k.order("o-1", ":f"), ("o-1",), ":o:{o-1}:f"),
    "order_history": (lambda k: k.order("o-1", ":h"), ("o-1",), ":o:{o-1}:h"),
    "triggers": (lambda k: k.triggers, (), ":triggers"),
    "tally": (lambda k: k.tally, (), ":tally"),
    "rate": (lambda k: k.rate("k1"), ("k1",), ":rate:k1"),
    "webhook_due": (lambda k: k.webhook("h1", "due"), ("h1",), ":wh:h1:due"),
    "webhook_jobs": (lambda k: k.webhook("h1", "jobs"), ("h1",), ":wh:h1:jobs"),
    "webhook_tries": (lambda k: k.webhook("h1", "tries"), ("h1",), ":wh:h1:tries"),
    "dead_letters": (lambda k: k.dead_letters, (), ":wh:dead"),
    "webhook_dead": (lambda k: k.webhook("h1", "dead"), ("h1",), ":wh:h1:dead"),
    "webhook_since": (lambda k: k.webhook("h1", "since"), ("h1",), ":wh:h1:since"),
    "destination_queue": (lambda k: k.destination("d1", "q"), ("d1",), ":dst:d1:q"),
    "destination_due": (lambda k: k.destination("d1", "due"), ("d1",), ":dst:d1:due"),
    "destination_tries": (lambda k: k.destination("d1", "tries"), ("d1",), ":dst:d1:tries"),
    "destination_dead": (lambda k: k.destination_dead, (), ":dst:dead"),
    "pending": (lambda k: k.pending, (), ":pending"),
    "pending_jobs": (lambda k: k.pending_jobs, (), ":pending:jobs"),
    "trigger_times": (lambda k: k.contact("c1", ":tt"), ("c1",), ":c:{c1}:tt"),
    "last_trigger": (lambda k: k.contact("c1", ":lt"), ("c1",), ":c:{c1}:lt"),
    "trigger_stats": (lambda k: k.trigger_stats("2026-12-02"), ("2026-12-02",), ":ts:2026-12-02"),
    "product": (lambda k: k.product("p-1"), ("p-1",), ":p:{p-1}"),
    "product_watchers": (lambda k: k.product("p-1", ":w"), ("p-1",), ":p:{p-1}:w"),
    "fanouts": (lambda k: k.fanouts, (), ":pfq"),
    "fanout": (lambda k: k.product("p-1", ":f"), ("p-1",), ":p:{p-1}:f"),
    "refused": (lambda k: k.refused, (), ":refused"),
    "stats": (lambda k: k.stats(29000000), ("29000000",), ":stats:29000000"),
    "contact_orders": (lambda k: k.contact_orders("c1"), ("c1",), ":c:{c1}:orders"),
    "contact_stitched": (lambda k: k.contact("c1", ":from"), ("c1",), ":c:{c1}:from"),
    "suppressed": (lambda k: k.suppressed, (), ":suppressed"),
    "erasure": (lambda k: k.erasure("e1"), ("e1",), ":erasure:e1"),
    "erasure_copy": (lambda k: k.erasure("e1") + ":copy", ("e1",), ":erasure:e1:copy"),
    "erasures": (lambda k: k.erasures, (), ":erasures"),
}


def lua_key(client: redis.Redis, prefix: str, name: str, parts: tuple[str, ...]) -> str:
    """What the scripts' K_<name> builds, run in Redis."""
    script = (
        f"local P = ARGV[1]\n{lua_key_helpers()}\nlocal key = K_{name}\n"
        "if type(key) == 'function' then return key(unpack(ARGV, 2)) end\nreturn key"
    )
    return str(client.eval(script, 0, prefix, *parts).decode())


def test_every_key_is_in_the_table_and_its_layout_is_unchanged():
    assert set(CASES) == set(KEYSPACE)
    keys = TenantKeys.for_tenant("t1")
    for build, _, name in CASES.values():
        assert build(keys) == keys.prefix + name
    assert keys.prefix == "gw:{t1}"  # the tenant is the Redis Cluster hash tag


def test_the_scripts_build_every_key_as_python_does(sync_redis):
    keys = TenantKeys.for_tenant("t1")
    for name, (build, parts, _) in CASES.items():
        assert lua_key(sync_redis, keys.prefix, name, parts) == build(keys), name


# The prefix as it is (the tenant a Redis Cluster hash tag) and as it was (gw:<tenant>): how the
# tenant is written in it is a change of keys.PREFIX alone.
@pytest.mark.parametrize("prefix", [PREFIX, LEGACY_PREFIX])
def test_the_scripts_read_the_tenant_back_from_its_prefix(sync_redis, monkeypatch, prefix):
    monkeypatch.setattr(gateway.redis.scripts, "PREFIX", prefix)
    script = f"local P = ARGV[1]\n{lua_key_helpers()}\nreturn TENANT"
    assert sync_redis.eval(script, 0, prefix.format(tenant="shop-1")) == b"shop-1"


def test_no_script_puts_a_key_name_together_itself():
    for path in LUA.glob("*.lua"):
        assert "P .." not in path.read_text(), path.name
