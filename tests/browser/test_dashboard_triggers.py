"""The dashboard's Triggers and Charts views with real triggers (docs/dashboard.md): an
abandonedCart delivered to one webhook (a real local receiver) and dead-lettered on another that
always fails, then converted by an order. Screenshots at a laptop's and a phone's size are saved
beside test_dashboard.py's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.test_dashboard import Gateway, Session, session, shoot, sign_in
from tests.support.gateways import serving, unique, write_config
from tests.support.orders import order
from tests.support.triggering import TIMEOUT, Receiver, cart
from tests.support.waiting import wait_for

__all__ = ["session"]  # the fixture, shared with test_dashboard.py

pytestmark = pytest.mark.browser

EMAIL = "ann@example.com"
MUG = {"productId": "MUG-1", "quantity": 2, "price": 22.75}
TOKEN = "s3cret-token"  # in the failing webhook's URL: never shown


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    """A webhook endpoint that takes every delivery, and one that answers 500 to each."""
    taking, failing = Receiver(), Receiver(default=500)
    await taking.start()
    await failing.start()
    try:
        yield taking, failing
    finally:
        await taking.stop()
        await failing.stop()


@pytest.fixture
def hooked(
    redis_url: str, tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> Iterator[Gateway]:
    """A gateway process whose tenant closes visits after TIMEOUT and has the two webhooks for
    abandonedCart, the failing one with a retry budget of a fraction of a second."""
    taking, failing = receivers
    tenant = unique("uitr")
    webhooks: list[dict[str, object]] = [
        {"url": taking.url, "secret": "whsec_taking", "types": ["abandonedCart"]},
        {
            "url": f"{failing.url}?token={TOKEN}",
            "secret": "whsec_failing",
            "types": ["abandonedCart"],
            "retry_initial_seconds": 0.05,
            "retry_budget_seconds": 0.3,
        },
    ]
    config = write_config(
        tmp_path / "gateway.toml", [tenant], webhooks=webhooks, visit_timeout_seconds=TIMEOUT
    )
    with serving(config, redis_url, tmp_path / "data") as (port, process):
        yield Gateway(f"http://127.0.0.1:{port}", tenant, process)


async def feed(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await http.get("/v1/triggers", params={"before": ""})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["triggers"]
    return found


async def test_triggers_show_each_webhooks_delivery_and_charts_the_conversion(
    hooked: Gateway, receivers: tuple[Receiver, Receiver], session: Session
) -> None:
    taking, failing = receivers
    auth = {"authorization": f"Bearer {hooked.server_key}"}
    async with httpx.AsyncClient(base_url=hooked.base, headers=auth) as http:
        sent = await http.post("/v1/event", json=cart(EMAIL, unique("rs"), [MUG]))
        assert sent.status_code == 200, sent.text

        async def settled() -> bool:
            states = [
                [d["state"] for d in t["deliveries"]]
                for t in await feed(http)
                if t["type"] == "abandonedCart"
            ]
            return states == [["delivered", "dead"]]

        await wait_for(settled, 15, "the delivery and the dead letter")
        assert len(taking.requests) == 1 and len(failing.requests) >= 2
        placed = order(
            unique("o"), totalCost=45.5, currency="USD", email=EMAIL, date="2026-01-01T10:00:00"
        )
        stored = await http.post("/v1/orders", json={"orders": [placed]})
        assert stored.status_code == 200 and stored.json()["failedOrders"] == []

        async def converted() -> bool:
            return any(t["type"] == "triggerConverted" for t in await feed(http))

        await wait_for(converted, 10, "the triggerConverted trigger")

    page = session.page
    await page.goto(f"{hooked.base}/ui/#triggers")
    await sign_in(page, hooked.server_key)
    row = page.locator("#trigger-list > li:has(.what:text-matches('^abandonedCart'))")
    await row.wait_for()
    chips = [text.split("\n") for text in await row.locator(".delivery").all_inner_texts()]
    redacted = f"{failing.url}?token=***"
    assert [chip[0].split(" · ")[0] for chip in chips] == ["delivered", "dead"]
    assert [chip[-1] for chip in chips] == [taking.url, redacted]
    assert EMAIL in await row.inner_text()
    # the trigger types no webhook takes show no delivery
    other = page.locator("#trigger-list > li:has(.what:text-is('triggerConverted'))")
    assert await other.locator(".delivery").count() == 0
    dead = page.locator("#dead-list li")
    await dead.first.wait_for()
    text = await dead.first.inner_text()
    assert "abandonedCart" in text and "HTTP 500" in text and redacted in text
    cards = [
        " ".join(text.split()) for text in await page.locator("#webhook-list li").all_inner_texts()
    ]
    assert cards == [
        f"{taking.url} types abandonedCart scheduled 0 dead 0",
        f"{redacted} types abandonedCart scheduled 0 dead 1",
    ]
    assert TOKEN not in await page.content()
    await shoot(page, "triggers-delivered")

    await page.click("a[data-view=charts]")
    chart = page.locator("#chart-triggers .chart:has-text('abandonedCart')")
    await chart.locator("canvas").wait_for()
    box = await chart.locator("canvas").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    legend = await chart.locator(".u-legend").inner_text()
    for label in ("emitted", "delivered", "converted", "revenue USD"):
        assert label in legend
    totals = await chart.locator(".table-wrap tbody").inner_text()
    assert totals.strip().split("\t") == ["1", "1", "1", "45.50 USD"]
    await shoot(page, "charts-converted")
    assert [url for url in session.urls if hooked.server_key in url] == []
    assert session.errors == []
