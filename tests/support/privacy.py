"""Helpers of the privacy tests (docs/privacy.md): waiting for an erasure, and every value the
tenant's keys hold, dumped by type."""

from __future__ import annotations

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
    """Every key of the tenant -> its whole value as text (SCAN over every primary)."""
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
        dumped[key] = repr(value)
    return dumped
