"""First-party paths (SPEC §15): `collect_path`, `collect_batch_path` and `tracker_path` answer as
`/v1/event`, `/v1/events` and `/js/tracker.js` do, which keep working; the tracker served at
either path posts to the configured batch path."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.tracker import TRACKER

PATHS = {"collect_path": "/c", "collect_batch_path": "/assets/b", "tracker_path": "/assets/s.js"}
SHOP = {"origin": "https://shop.example"}


def page_view(email: str) -> dict[str, Any]:
    page = {"name": "page", "value": '{"location":"https://shop.example/"}'}
    return {"eventTypeKey": "pageViewed", "keyValue": email, "params": [page]}


@pytest.mark.both_transports
async def test_events_sent_to_the_aliases_are_stored(make_api: Any) -> None:
    api, _ = await make_api(gateway=PATHS)
    one = await api.http.post("/c", json=page_view("ann@example.com"), headers=api.server())
    assert one.status_code == 200, one.text
    assert one.json()["status"] == "accepted"
    batch = await api.http.post(
        f"/assets/b?key={api.site_key}",
        json=[page_view("bob@example.com"), page_view("bob@example.com")],
        headers=SHOP,
    )
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"accepted": 2, "duplicates": 0, "failed": []}
    old = await api.http.post(
        "/api/v1/event/", json=page_view("cy@example.com"), headers=api.server()
    )
    assert old.json()["status"] == "accepted"  # the /v1/ paths keep working
    listed = await api.get("/v1/events")
    assert [e["keyValue"] for e in listed.json()["events"]] == [
        "cy@example.com",
        "bob@example.com",
        "bob@example.com",
        "ann@example.com",
    ]


@pytest.mark.both_transports
async def test_aliases_answer_preflights_and_refuse_other_methods(make_api: Any) -> None:
    api, _ = await make_api(gateway=PATHS)
    preflight = await api.http.options(
        f"/assets/b?key={api.site_key}",
        headers={**SHOP, "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    read = await api.get("/assets/b")
    assert read.status_code == 405
    assert read.headers["allow"] == "POST, OPTIONS"
    assert read.json()["error"] == "method_not_allowed"
    assert "/assets/b accepts POST, OPTIONS" in read.json()["message"]
    refused = await api.http.post("/c", json=page_view("ann@example.com"))
    assert refused.status_code == 401  # the same checks as /v1/event
    assert (await api.http.post("/c/", json={})).status_code == 404  # no other spelling


async def test_the_tracker_at_either_path_posts_to_the_batch_alias(make_api: Any) -> None:
    api, _ = await make_api(gateway=PATHS)
    built = TRACKER.read_bytes()
    at_alias = await api.http.get("/assets/s.js")
    at_default = await api.http.get("/js/tracker.js", headers={"accept-encoding": "identity"})
    for response in (at_alias, at_default):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.content == built.replace(b"/v1/events?key=", b"/assets/b?key=")
    assert at_alias.headers["etag"] == at_default.headers["etag"] != ""
    again = await api.http.get("/assets/s.js", headers={"if-none-match": at_alias.headers["etag"]})
    assert again.status_code == 304


async def test_without_aliases_nothing_new_is_served(api: Any) -> None:
    assert (await api.http.get("/js/tracker.js")).content == TRACKER.read_bytes()
    assert (await api.http.post("/c", json=page_view("ann@example.com"))).status_code == 404
