"""Keys and origins: which key may call what, and from which origin.

The contract: docs/api.md, Authentication.
"""

from __future__ import annotations

import base64

import pytest

from gateway.model.events import ORDER_TYPES

# Keys and origins are checked by the ingest paths' protocol shortcut too: both ways.
pytestmark = pytest.mark.both_transports

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
async def test_missing_or_unknown_keys_are_401(api, transport, headers):
    if transport == "served":  # on the wire a field value has no white space around it
        headers = {name: value.strip() for name, value in headers.items()}
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


async def test_site_keys_cannot_send_order_events(make_api) -> None:
    a, _ = await make_api()
    for event_type in sorted(ORDER_TYPES):
        event = {"eventTypeKey": event_type, "keyValue": "o@example.com", "params": []}
        response = await a.event(event, site=True)
        assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    response = await a.http.post(f"/v1/orders?key={a.site_key}", json={"orders": []})
    assert response.status_code == 403


async def test_cors_only_for_configured_origins(make_api) -> None:
    a, _ = await make_api()
    good, evil = "https://shop.example", "https://evil.example"
    for path in ("/v1/event", "/v1/events"):
        url = f"{path}?key={a.site_key}"
        ask = {"access-control-request-method": "POST"}
        allowed = await a.http.options(url, headers={"origin": good, **ask})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == good
        refused = await a.http.options(url, headers={"origin": evil, **ask})
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        body = PAGE if path == "/v1/event" else [PAGE]
        sent = await a.http.post(url, json=body, headers={"origin": good})
        assert (sent.status_code, sent.headers["access-control-allow-origin"]) == (200, good)
        blocked = await a.http.post(url, json=body, headers={"origin": evil})
        assert blocked.status_code == 403
        assert "access-control-allow-origin" not in blocked.headers
        # a server key is for back-ends: never a CORS grant, whatever the origin says
        server = await a.http.post(path, json=body, headers={"origin": good, **a.server()})
        assert server.status_code == 200
        assert "access-control-allow-origin" not in server.headers
    read = await a.http.get("/v1/events", headers={"origin": good, **a.server()})
    assert "access-control-allow-origin" not in read.headers
