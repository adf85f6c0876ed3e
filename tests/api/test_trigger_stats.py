"""`GET /v1/triggers/stats` (docs/triggers.md, Stats): per trigger type and range of UTC days,
what was emitted, suppressed, delivered, dead-lettered, converted and earned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.orders import order, post_orders
from tests.support.triggering import TIMEOUT, Receiver, closed, product, send
from tests.support.waiting import wait_for

BUYER = "buyer@example.com"  # the email of tests/support/orders.py's orders


async def stats(api, **params: str) -> dict[str, object]:
    response = await api.get("/v1/triggers/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_the_figures_of_each_trigger_type(make_api, receiver):
    failing = Receiver(default=500)
    hooks = [
        {"url": receiver.url, "secret": "whsec_ok", "types": ["abandonedBrowse"]},
        {
            "url": await failing.start(),
            "secret": "whsec_failing",
            "types": ["abandonedBrowse"],
            "retry_initial_seconds": 0.05,
            "retry_budget_seconds": 0.2,
        },
    ]
    try:
        api, other = await make_api(
            visit_timeout_seconds=TIMEOUT, webhooks=hooks, triggers={"cooldown_seconds": 3600}
        )
        await send(api, product(BUYER, "P1"))
        await closed(api, 1)
        await send(api, product(BUYER, "P2"))  # a second visit within the cooldown
        await closed(api, 2)
        await post_orders(api, order("o-kept", totalCost=12.5, currency="USD"))
        await post_orders(api, order("o-cancelled", totalCost=20, currency="USD"))
        await post_orders(api, order("o-cancelled", status="CANCELLED", currency="USD"))
        await wait_for(lambda: receiver.requests, 10, "the delivery")
        await wait_for(lambda: dead_letters(api), 10, "the dead letter")
    finally:
        await failing.stop()
    body = await stats(api)
    today = datetime.now(UTC).date()
    assert body["to"] == today.isoformat()
    assert body["from"] == (today - timedelta(days=29)).isoformat()
    types = body["types"]
    assert types["abandonedBrowse"] == {
        "emitted": 1,
        "suppressed": {"cooldown": 1},
        "delivered": 1,
        "failed": 1,
        "converted": 1,  # o-cancelled was converted, then cancelled
        "revenue": {"USD": 12.5},
    }
    assert types["triggerConverted"]["emitted"] == 2
    assert types["orderINITIALIZED"]["emitted"] == 2
    assert types["orderCANCELLED"]["emitted"] == 1
    # one day, given as from and to, holds the same; days long past hold nothing
    day = today.isoformat()
    assert (await stats(api, **{"from": day, "to": day}))["types"] == types
    past = await stats(api, **{"from": "2020-01-01", "to": "2020-01-31"})
    assert past == {"from": "2020-01-01", "to": "2020-01-31", "types": {}}
    assert (await stats(other))["types"] == {}


async def dead_letters(api) -> bool:
    return bool((await api.get("/v1/webhooks/dead")).json()["dead"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-1-1"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-02-05"}, "from"),  # 401 days
    ],
)
async def test_bad_days_are_a_400_naming_the_parameter(make_api, params, field):
    api, _ = await make_api()
    response = await api.get("/v1/triggers/stats", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


async def test_400_days_are_the_longest_range_and_a_site_key_is_refused(make_api):
    api, _ = await make_api()
    body = await stats(api, **{"from": "2025-01-01", "to": "2026-02-04"})
    assert body["types"] == {}
    response = await api.http.get(
        "/v1/triggers/stats", headers={"authorization": f"Bearer {api.site_key}"}
    )
    assert response.status_code == 403
