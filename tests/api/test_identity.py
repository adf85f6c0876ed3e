"""Contact identity (seed 001) and stitching of identifiers seen together.

The contract: docs/api.md, Contacts and stitching.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import pytest

from gateway.redis.constants import LIST_DIGITS
from gateway.redis.keys import list_entry_event


def ev(
    event_type: str, key_value: str | None = None, visitor: str | None = None, **params: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventTypeKey": event_type,
        "params": [{"name": k, "value": v} for k, v in params.items()],
    }
    if key_value is not None:
        body["keyValue"] = key_value
    if visitor is not None:
        body["visitorId"] = visitor
    return body


def product(pid: str, price: float = 10) -> str:
    return orjson.dumps({"productId": pid, "price": price, "isInStock": 1}).decode()


async def test_identifier_params_are_found_case_insensitively(api):
    for name, value in [
        ("EMAILADDRESS", "x@example.com"),
        ("userEmail", "x@example.com"),
        ("SMS", "+380501234567"),
        ("PushToken", "tok-1"),
        ("contact_key", "ck-1"),
        ("ContactId", "cid-1"),
    ]:
        assert (await api.event(ev("login", **{name: value}))).status_code == 200
    # each identifier came in its own event: only the two email events share a contact
    assert (await api.contact("x@example.com"))["identifiers"] == {"email": ["x@example.com"]}
    for value, kind in [
        ("+380501234567", "phone"),
        ("tok-1", "pushToken"),
        ("ck-1", "contactKey"),
        ("cid-1", "contactId"),
    ]:
        assert (await api.contact(value))["identifiers"] == {kind: [value]}


async def test_emails_ignore_case_and_space_other_values_do_not(api):
    await api.event(ev("login", Email="  Ann@Example.COM "))
    await api.event(ev("login", key_value="ann@example.com"))
    contact = await api.contact("ANN@example.com")
    assert contact["identifiers"]["email"] == ["ann@example.com"]
    events = (await api.get(f"/v1/events?contact={contact['id']}")).json()["events"]
    assert len(events) == 2
    await api.event(ev("login", ContactKey="Key-A"))
    await api.event(ev("login", ContactKey="key-a"))
    assert (await api.contact("Key-A"))["id"] != (await api.contact("key-a"))["id"]


async def test_key_value_is_classified_by_shape(api):
    await api.event(ev("login", key_value="380501234567"))
    await api.event(ev("login", phone="380501234567", email="p@example.com"))
    contact = await api.contact("p@example.com")
    assert contact["identifiers"]["phone"] == ["380501234567"]
    await api.event(ev("login", key_value="loyalty-77"))
    assert (await api.contact("loyalty-77"))["identifiers"] == {"keyValue": ["loyalty-77"]}


async def test_anonymous_visitor_is_stitched_into_the_known_contact(api):
    # an anonymous browser views and fills a cart ...
    await api.event(ev("productViewed", visitor="v-1", product=product("P1", 12.5)))
    await api.event(
        ev("productCategoryViewed", visitor="v-1", category='{"productCategoryId":"Mugs"}')
    )
    cart = '[{"productId":"P1","quantity":2,"price":12.5}]'
    await api.event(ev("cartUpdated", visitor="v-1", products=cart, recycleStateId="rs-1"))
    # ... the same person is already known by email from another device ...
    await api.event(ev("productViewed", key_value="ann@example.com", product=product("P2")))
    known = await api.contact("ann@example.com")
    # ... and then logs in on the first browser: both become one contact
    await api.event(ev("login", key_value="ann@example.com", visitor="v-1"))
    merged = await api.contact("ann@example.com")
    assert merged["id"] == known["id"]
    assert (await api.contact("v-1"))["id"] == known["id"]
    assert merged["identifiers"]["visitorId"] == ["v-1"]
    assert merged["cart"]["recycleStateId"] == "rs-1"
    assert merged["cart"]["total"] == 25.0
    assert [p["productId"] for p in merged["recentProducts"]] == ["P2", "P1"]
    assert [c["productCategoryId"] for c in merged["recentCategories"]] == ["Mugs"]
    events = (await api.get(f"/v1/events?contact={merged['id']}")).json()["events"]
    assert [e["eventTypeKey"] for e in events] == [
        "login",
        "productViewed",
        "cartUpdated",
        "productCategoryViewed",
        "productViewed",
    ]


async def test_a_stitched_away_contact_id_still_leads_to_its_contact(api):
    """The stream keeps the contact an event had: the tenant's list named a contact id that no
    read could find once the visitor had been stitched into the known contact."""
    await api.event(ev("known", key_value="kim@example.com"))
    await api.event(ev("anon", visitor="v-kim"))
    anonymous = (await api.contact("v-kim"))["id"]
    await api.event(ev("login", key_value="kim@example.com", visitor="v-kim"))
    await api.event(ev("anon2", visitor="v-other"))
    await api.event(ev("login2", key_value="kim@example.com", visitor="v-other"))  # a second stitch
    kim = (await api.contact("kim@example.com"))["id"]
    assert anonymous != kim
    assert (await api.contact(anonymous))["id"] == kim
    listed = (await api.get("/v1/events?limit=10")).json()["events"]
    assert {e["eventTypeKey"]: e["contactId"] for e in listed} == dict.fromkeys(
        ["known", "anon", "login", "anon2", "login2"], kim
    )
    by_old_id = (await api.get(f"/v1/events?contact={anonymous}")).json()["events"]
    assert len(by_old_id) == 5


async def test_anonymous_visitor_that_identifies_keeps_its_contact(api):
    await api.event(ev("productViewed", visitor="v-2", product=product("P9")))
    anonymous = await api.contact("v-2")
    await api.event(ev("login", visitor="v-2", email="new@example.com"))
    identified = await api.contact("new@example.com")
    assert identified["id"] == anonymous["id"]
    assert [p["productId"] for p in identified["recentProducts"]] == ["P9"]


@pytest.mark.both_transports
async def test_unknown_contact_is_404(api):
    response = await api.get("/v1/contacts/nobody@example.com")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert (await api.get("/v1/events?contact=nobody@example.com")).status_code == 404
    assert (await api.get("/v1/events?limit=0")).status_code == 400


async def test_recent_views_are_capped(make_api):
    api, _ = await make_api(gateway={"recent_views": 3})
    for n in range(5):
        await api.event(ev("productViewed", key_value="cap@example.com", product=product(f"P{n}")))
    contact = await api.contact("cap@example.com")
    assert [p["productId"] for p in contact["recentProducts"]] == ["P4", "P3", "P2"]


async def test_identifiers_with_line_breaks_are_read_back_as_stored(api):
    # A path parameter once stopped at a line break, and `$` let a trailing one go unmatched:
    # "trail\n" read the contact "trail", and "line\nbreak" got the router's 404.
    await api.event(ev("login", key_value="trail"))
    for value in ("trail\n", "line\nbreak"):  # params keep what they are sent
        assert (await api.event(ev("login", ContactKey=value))).status_code == 200
    assert (await api.contact("trail"))["identifiers"] == {"keyValue": ["trail"]}
    for value in ("trail\n", "line\nbreak"):
        contact = await api.contact(quote(value, safe=""))
        assert contact["identifiers"] == {"contactKey": [value]}
    # keyValue is stored stripped: " key-9\n" is read back with or without the space around it
    await api.event(ev("login", key_value=" key-9\n"))
    for value in ("key-9", " key-9\n"):
        assert (await api.contact(quote(value, safe="")))["identifiers"] == {"keyValue": ["key-9"]}


async def test_a_contacts_event_list_reads_both_of_its_entry_forms(api, sync_redis):
    """keys.py: the list names a productViewed by an integer (8 bytes in Redis), a custom event
    by `<type>|<stream id>`, and a productViewed whose id does not fit the integer by `*pv|<id>`:
    the API lists all three forms the same, filter by type included."""
    await api.event(ev("productViewed", key_value="eve@example.com", product=product("P1")))
    await api.event(ev("login", key_value="eve@example.com"))
    contact = await api.contact("eve@example.com")
    key = api.keys.contact(contact["id"], ":ev")
    login, viewed = (entry.decode() for entry in sync_redis.lrange(key, 0, -1))
    ((viewed_id, _),) = sync_redis.xrevrange(api.keys.events, "+", "-", count=2)[1:]
    assert login.startswith("login|")
    assert viewed.isdigit() and len(viewed) == 17 and viewed[0] == LIST_DIGITS["productViewed"]
    assert list_entry_event(viewed) == (LIST_DIGITS["productViewed"], viewed_id.decode())

    async def listed(event_type: str = "") -> list[str]:
        path = f"/v1/events?contact={contact['id']}&type={event_type}"
        return [e["eventTypeKey"] for e in (await api.get(path)).json()["events"]]

    assert await listed() == ["login", "productViewed"]
    sync_redis.lset(key, 1, f"*pv|{viewed_id.decode()}")
    assert await listed() == ["login", "productViewed"]
    assert await listed("productViewed") == ["productViewed"]
