"""Helpers of the privacy tests (docs/privacy.md): waiting for an erasure, and every key of the
tenant, its name and its value dumped by type, searched for what an erasure must leave nowhere."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.support.gateways import Api
from tests.support.waiting import wait_for


async def erase(api: Api, identifier: str, query: str = "") -> dict[str, Any]:
    """DELETE the contact, then wait until its erasure is done: the erasure's last answer."""
    response = await api.http.delete(f"/v1/contacts/{identifier}{query}", headers=api.server())
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "running"
    answer: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal answer
        reply = await api.get(f"/v1/erasures/{started['erasure']}")
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        return bool(answer["status"] == "done")

    await wait_for(done, 30, "the erasure to finish")
    return answer


def tenant_dump(client: Any, api: Api) -> dict[str, str]:
    """Every key of the tenant -> its name and its whole value as text (SCAN over every
    primary): an index key's name holds an identifier value, a product's watchers hold contact
    ids as members."""
    dumped: dict[str, str] = {}
    for raw in client.scan_iter(match=api.keys.prefix + "*", count=1000):
        key = raw.decode()
        kind = client.type(key).decode()
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = kind
        dumped[key] = f"{key} = {value!r}"
    return dumped


def holding(dump: dict[str, str], needles: Iterable[str]) -> dict[str, list[str]]:
    """Each needle found in the dump (without regard to case) -> the keys whose name or value
    holds it."""
    found: dict[str, list[str]] = {}
    for needle in needles:
        keys = [key for key, text in dump.items() if needle.lower() in text.lower()]
        if keys:
            found[needle] = keys
    return found
