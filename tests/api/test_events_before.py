"""`GET /v1/events?before=<cursor>` (docs/api.md, Reading): paging back through the tenant's
stream or a contact's events with each answer's `next`, so an old event of a rare type, past
the 10000 events one request reads, is reachable."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gateways import Api
from tests.support.paging import pages_before


def numbered(n: int, email: str = "ann@example.com") -> dict[str, Any]:
    return {"eventTypeKey": "custom", "keyValue": email, "eventId": f"e{n}"}


async def pages(api: Api, query: str) -> list[list[str]]:
    """The eventIds of every page, following `next` until it is null."""
    return await pages_before(
        api, "/v1/events", query, lambda body: [event["eventId"] for event in body["events"]]
    )


@pytest.mark.parametrize("contact", ["", "&contact=ann@example.com"])
async def test_pages_go_back_to_the_first_event(api: Api, contact: str) -> None:
    for n in range(7):
        assert (await api.event(numbered(n))).status_code == 200
    await api.event(numbered(99, "bob@example.com"))
    found = await pages(api, f"limit=3{contact}")
    newest = [] if contact else ["e99"]
    assert [e for page in found for e in page] == [
        *newest,
        "e6",
        "e5",
        "e4",
        "e3",
        "e2",
        "e1",
        "e0",
    ]
    assert all(len(page) == 3 for page in found[:-1])


async def test_an_old_event_of_a_rare_type_is_reachable(make_api: Any) -> None:
    api, _ = await make_api(gateway={"contact_events": 20_000})
    rare = {"eventTypeKey": "rareThing", "keyValue": "ann@example.com", "eventId": "old"}
    assert (await api.event(rare)).status_code == 200
    common = [{"eventTypeKey": "common", "keyValue": "ann@example.com"}] * 1000
    for _ in range(10):
        assert (await api.events(common)).json()["accepted"] == 1000
    for contact in ("", "&contact=ann@example.com"):
        first = (await api.get(f"/v1/events?type=rareThing{contact}")).json()
        assert first["events"] == [] and first["next"] is not None  # 10000 read, none matched
        assert await pages(api, f"type=rareThing{contact}") == [[], ["old"]]


async def test_the_newest_page_says_where_to_go_on(api: Api) -> None:
    for n in range(3):
        await api.event(numbered(n))
    body = (await api.get("/v1/events?limit=2")).json()
    assert [e["eventId"] for e in body["events"]] == ["e2", "e1"]
    older = (await api.get(f"/v1/events?limit=2&before={body['next']}")).json()
    assert ([e["eventId"] for e in older["events"]], older["next"]) == (["e0"], None)
    for cursor in ("0-0", "0"):  # nothing is older than the stream's first id
        empty = (await api.get(f"/v1/events?before={cursor}")).json()
        assert empty == {"events": [], "next": None}


@pytest.mark.parametrize("cursor", ["abc", "1-2-3", "-1", "18446744073709551616-0", "1.5"])
async def test_a_bad_cursor_is_a_400_naming_it(api: Api, cursor: str) -> None:
    for contact in ("", "&contact=ann@example.com"):
        answer = await api.get(f"/v1/events?before={cursor}{contact}")
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "before"
        assert answer.json()["error"] == "invalid_field"
