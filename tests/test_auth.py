"""Keys, tenants and origins (SPEC §4), and that no tenant ever sees another's data."""

from __future__ import annotations

import base64

import pytest

from gateway.redis.keys import TenantKeys

PAGE = {
    "eventTypeKey": "pageViewed",
    "keyValue": "ann@example.com",
    "params": [{"name": "page", "value": '{"location":"https://shop.example/"}'}],
}


def basic(key: str, user: str = "any-user") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


async def test_basic_bearer_and_query_keys(api):
    assert (
        await api.http.post("/v1/event", json=PAGE, headers=basic(api.server_key))
    ).status_code == 200
    assert (
        await api.http.post(
            "/v1/event", json=PAGE, headers={"authorization": f"Bearer {api.site_key}"}
        )
    ).status_code == 200
    assert (await api.http.post(f"/v1/event?key={api.site_key}", json=PAGE)).status_code == 200
    response = await api.http.get("/v1/contacts/ann@example.com", headers=basic(api.server_key))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer nope"},
        {"authorization": "Basic !!!"},
        {"authorization": "Token abc"},
        {"authorization": "Bearer "},
    ],
)
async def test_missing_or_unknown_keys_are_401(api, headers):
    response = await api.http.post("/v1/event", json=PAGE, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert (await api.http.get("/v1/contacts/x", headers=headers)).status_code == 401


async def test_server_key_in_the_url_is_refused(api):
    response = await api.http.post(f"/v1/event?key={api.server_key}", json=PAGE)
    assert response.status_code == 401
    assert "Authorization header" in response.json()["message"]


async def test_site_keys_send_behaviour_events_only(api):
    order = {"eventTypeKey": "orderCreated", "keyValue": "ann@example.com", "params": []}
    response = await api.event(order, site=True)
    assert (response.status_code, response.json()["field"]) == (403, "eventTypeKey")
    batch = await api.http.post(f"/v1/events?key={api.site_key}", json=[PAGE, order])
    assert batch.status_code == 200
    assert batch.json()["accepted"] == 1
    assert batch.json()["failed"][0]["error"] == "forbidden"
    site = {"authorization": f"Bearer {api.site_key}"}
    for path in ("/v1/contacts/ann@example.com", "/v1/events?contact=ann@example.com"):
        assert (await api.http.get(path, headers=site)).status_code == 403


async def test_origins_and_preflight(api):
    allowed = {"origin": "https://shop.example"}
    response = await api.http.post(f"/v1/event?key={api.site_key}", json=PAGE, headers=allowed)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    evil = await api.http.post(
        f"/v1/event?key={api.site_key}", json=PAGE, headers={"origin": "https://evil.example"}
    )
    assert (evil.status_code, evil.json()["error"]) == (403, "origin_not_allowed")
    preflight = await api.http.options(
        f"/v1/event?key={api.site_key}",
        headers={**allowed, "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    refused = await api.http.options(
        f"/v1/event?key={api.site_key}", headers={"origin": "https://evil.example"}
    )
    assert refused.status_code == 403


async def test_wildcard_origin(make_api):
    api, _ = await make_api(allowed_origins=["*"])
    response = await api.http.post(
        f"/v1/event?key={api.site_key}", json=PAGE, headers={"origin": "https://anything.example"}
    )
    assert response.status_code == 200


async def test_tenants_are_isolated(make_api, sync_redis):
    a, b = await make_api()
    assert (await a.event(PAGE)).status_code == 200
    a_contact = await a.contact("ann@example.com")
    # b's key reads nothing of a: not by email, not by a's contact id, not in the event feed
    for path in (
        "/v1/contacts/ann@example.com",
        f"/v1/contacts/{a_contact['id']}",
        "/v1/events?contact=ann@example.com",
    ):
        assert (await b.get(path)).status_code == 404
    assert (await b.get("/v1/events")).json()["events"] == []
    # the same email at b is a different contact, and a's data is unchanged by it
    assert (await b.event(PAGE)).status_code == 200
    assert (await b.contact("ann@example.com"))["id"] != a_contact["id"]
    assert len((await a.get("/v1/events?contact=ann@example.com")).json()["events"]) == 1
    # everything stored for a's contact lives under a's prefix
    keys = [k.decode() for k in sync_redis.scan_iter(match=f"*{a_contact['id']}*")]
    prefix = TenantKeys.for_tenant(a.tenant_id).prefix + ":"
    assert keys and all(k.startswith(prefix) for k in keys)


async def test_rate_limit_per_key(make_api):
    api, _ = await make_api(rate_limit_per_second=2)
    statuses = [(await api.event(PAGE)).status_code for _ in range(5)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses
    limited = await api.event(PAGE)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/contacts/ann@example.com",
        "/v1/events",
        "/v1/events?contact=ann@example.com",
        "/v1/orders/o-1",
        "/v1/carts/rs-1",
        "/v1/triggers",
        "/v1/webhooks/dead",
    ],
)
async def test_rate_limit_covers_every_read(make_api, path):
    """Reads cost Redis work too: they count against the key like writes, with the same 429."""
    api, other = await make_api(rate_limit_per_second=2)
    statuses = [(await api.get(path)).status_code for _ in range(4)]
    assert 429 not in statuses[:2] and statuses[2:] == [429, 429]
    limited = await api.get(path)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # the key's bucket is spent for writes too; another key's is not
    assert (await api.event(PAGE)).status_code == 429
    assert (await other.get(path)).status_code != 429
