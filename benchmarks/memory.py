"""`make bench`'s memory row: Redis bytes per active contact."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson

from benchmarks.harness import MEMORY_CONTACTS, ORIGIN
from benchmarks.rows import Bench
from gateway.redis.constants import IDENTIFIER_FIELD
from gateway.redis.keys import TenantKeys
from gateway.redis.reads import fields_under


def memory_per_contact(bench: Bench, base: str) -> dict[str, Any]:
    """Bytes of Redis per active contact: a cart of 5 products and 20 product views."""
    tenant = "memory"
    keys = TenantKeys.for_tenant(tenant)
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(MEMORY_CONTACTS):
            email = f"shopper{n}@example.com"
            events: list[dict[str, Any]] = []
            for v in range(20):
                product = {"productId": f"SKU-{n}-{v}", "price": 45.5, "isInStock": 1}
                events.append(
                    {
                        "eventTypeKey": "productViewed",
                        "keyValue": email,
                        "params": [
                            {"name": "email", "value": email},
                            {"name": "phone", "value": f"+38050{n:07d}"},
                            {"name": "product", "value": json.dumps(product)},
                            {"name": "currencyCode", "value": "USD"},
                        ],
                    }
                )
            cart = [{"productId": f"SKU-{n}-{v}", "quantity": 1, "price": 45.5} for v in range(5)]
            events.append(
                {
                    "eventTypeKey": "cartUpdated",
                    "keyValue": email,
                    "params": [
                        {"name": "email", "value": email},
                        {"name": "products", "value": json.dumps(cart)},
                        {"name": "currencyCode", "value": "USD"},
                        {"name": "recycleStateId", "value": f"rs-{n}"},
                    ],
                }
            )
            answer = client.post(
                f"/v1/events?key=pk_bench_{tenant}",
                content=orjson.dumps(events),
                headers={"content-type": "text/plain", "origin": ORIGIN},
            )
            if answer.status_code != 200 or answer.json()["accepted"] != len(events):
                raise RuntimeError(f"memory events refused: {answer.status_code} {answer.text}")
    contact = identifiers = cart_state = 0
    for n in range(MEMORY_CONTACTS):
        cid = bench.redis.get(keys.identifier("email", f"shopper{n}@example.com"))
        assert cid is not None, "the memory contact was not stored"
        contact_keys = list(bench.redis.scan_iter(match=keys.contact(cid.decode()) + "*"))
        profile = bench.redis.hgetall(keys.contact(cid.decode()))
        ident_keys = [
            keys.identifier(*ident.decode().split(":", 1))
            for ident in fields_under(profile, IDENTIFIER_FIELD)
        ]
        contact += sum(bench.redis.memory_usage(k, samples=0) or 0 for k in contact_keys)
        identifiers += sum(bench.redis.memory_usage(k, samples=0) or 0 for k in ident_keys)
        cart_state += bench.redis.memory_usage(keys.cart(f"rs-{n}"), samples=0) or 0
    result = {
        "contacts": MEMORY_CONTACTS,
        "contact_keys_bytes": contact / MEMORY_CONTACTS,
        "identifier_keys_bytes": identifiers / MEMORY_CONTACTS,
        "cart_state_bytes": cart_state / MEMORY_CONTACTS,
    }
    result["total_bytes"] = (contact + identifiers + cart_state) / MEMORY_CONTACTS
    return result
