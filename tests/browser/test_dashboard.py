"""The dashboard at /ui/ in real headless Chromium against a real gateway (docs/dashboard.md):
key entry, the live tail of accepted and refused events, the charts, and the key kept out of
every URL. Screenshots at a laptop's and a phone's size are saved in test-artifacts/dashboard/
(or $GATEWAY_TEST_ARTIFACTS/dashboard/) for a person to look at."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.support.gateways import ROOT, serving, unique, write_config
from tests.support.orders import order

pytestmark = pytest.mark.browser

ARTIFACTS = Path(os.environ.get("GATEWAY_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Gateway:
    base: str
    tenant: str
    process: subprocess.Popen[bytes]

    @property
    def server_key(self) -> str:
        return f"sk_{self.tenant}"

    def send(self, body: object, site: bool = False) -> httpx.Response:
        if site:
            return httpx.post(
                f"{self.base}/v1/event?key=pk_{self.tenant}",
                json=body,
                headers={"origin": "https://shop.example"},
            )
        auth = {"authorization": f"Bearer {self.server_key}"}
        return httpx.post(f"{self.base}/v1/event", json=body, headers=auth)

    def post_orders(self, *orders: object) -> httpx.Response:
        auth = {"authorization": f"Bearer {self.server_key}"}
        return httpx.post(f"{self.base}/v1/orders", json={"orders": orders}, headers=auth)


@pytest.fixture
def gateway(redis_url: str, tmp_path: Path) -> Iterator[Gateway]:
    tenant = unique("ui")
    config = write_config(tmp_path / "gateway.toml", [tenant])
    with serving(config, redis_url, tmp_path / "data") as (port, process):
        yield Gateway(f"http://127.0.0.1:{port}", tenant, process)


@dataclass
class Session:
    page: Page
    urls: list[str]  # every request the page made
    errors: list[str]  # script errors and CSP violations (not an API's 4xx answers)


@pytest.fixture
async def session(browser: Browser) -> AsyncIterator[Session]:
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    found = Session(page, [], [])
    page.on("request", lambda request: found.urls.append(request.url))
    page.on("console", lambda m: found.errors.append(m.text) if is_error(m.type, m.text) else None)
    page.on("pageerror", lambda error: found.errors.append(str(error)))
    try:
        yield found
    finally:
        await context.close()


def is_error(kind: str, text: str) -> bool:
    """A console message that is a fault of the page: the browser logs every 4xx answer too."""
    return kind == "error" and not text.startswith("Failed to load resource")


async def sign_in(page: Page, key: str) -> None:
    await page.fill("#key", key)
    await page.click("#login-form button")


async def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("1280x800", LAPTOP), ("390x844", PHONE)):
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(300)  # uPlot redraws on resize
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
        # readable at that width: nothing makes the page scroll sideways
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {size} is {overflow} px wider than the window"
    await page.set_viewport_size(LAPTOP)


async def test_no_key_shows_the_form_and_a_wrong_key_says_unknown_key(
    gateway: Gateway, session: Session
) -> None:
    page = session.page
    response = await page.goto(f"{gateway.base}/ui/")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert "access-control-allow-origin" not in response.headers
    await page.wait_for_selector("#key", state="visible")
    await shoot(page, "key-form")

    await sign_in(page, "sk_not-a-key")
    await page.wait_for_selector("#login-error:has-text('Unknown key')")
    await shoot(page, "unknown-key")
    await sign_in(page, f"pk_{gateway.tenant}")
    await page.wait_for_selector("#login-error:has-text('needs a server key')")
    assert await page.evaluate("sessionStorage.length") == 0
    assert session.errors == []


async def test_live_view_shows_accepted_and_refused_events_within_two_seconds(
    gateway: Gateway, session: Session
) -> None:
    page = session.page
    await page.goto(f"{gateway.base}/ui/")
    await sign_in(page, gateway.server_key)
    await page.wait_for_selector("#live-empty:has-text('No events yet')")
    await page.wait_for_selector("#live-empty:has-text('/js/tracker.js')")
    await shoot(page, "live-empty")

    email = f"{unique('ann')}@example.com"
    assert gateway.send({"eventTypeKey": "helloWorld", "keyValue": email}).status_code == 200
    sent = time.monotonic()
    await page.wait_for_selector(f"#live-list li.accepted:has-text('{email}')", timeout=5000)
    assert time.monotonic() - sent < 2.5  # refreshed every 1.5 s, plus the page's own work

    refused = gateway.send({"eventTypeKey": "bad type", "keyValue": email}, site=True)
    assert refused.status_code == 400
    row = page.locator("#live-list li.refused").first
    await row.wait_for(timeout=5000)
    text = await row.inner_text()
    assert "invalid_field" in text and "eventTypeKey" in text
    assert refused.json()["message"] in text
    assert "site key" in text and "https://shop.example" in text
    for n in range(3):
        gateway.send(
            {
                "eventTypeKey": "productViewed",
                "keyValue": f"v{n}@example.com",
                "params": [{"name": "product", "value": '{"productId": "P1", "price": 5}'}],
            }
        )
    await page.wait_for_selector("#live-list li.accepted:has-text('v2@example.com')")

    # Filters: by type, and by contact.
    await page.fill("#f-type", "helloWorld")
    assert await page.locator("#live-list li").count() == 1
    await page.fill("#f-type", "")
    await page.fill("#f-contact", "v1@example")
    assert await page.locator("#live-list li").count() == 1
    await page.fill("#f-contact", "")
    await shoot(page, "live")

    await page.click("a[data-view=triggers]")  # before the order below makes one
    await page.wait_for_selector("#trigger-empty:has-text('No triggers')")
    await page.wait_for_selector("#dead-empty:has-text('No dead letters')")
    await page.click("a[data-view=live]")

    # The contact behind an event, one click away, with its views, cart and orders.
    product = '{"productId": "WS01", "price": 45.5}'
    viewed = [{"name": "product", "value": product}, {"name": "currencyCode", "value": "USD"}]
    cart = '{"products": [{"productId": "WS01", "quantity": 2, "price": 45.5}], "total": 91}'
    cart_params = [{"name": "cart", "value": cart}, {"name": "recycleStateId", "value": "rs-d1"}]
    for body in (
        {"eventTypeKey": "productViewed", "keyValue": email, "params": viewed},
        {"eventTypeKey": "cartUpdated", "keyValue": email, "params": cart_params},
    ):
        assert gateway.send(body).status_code == 200
    bought = order(
        "web-1001",
        "DELIVERED",
        totalCost=91,
        currency="USD",
        email=email,
        date="2026-12-01T10:11:00",
    )
    assert gateway.post_orders(bought).json()["failedOrders"] == []
    await page.locator(f"#live-list li:has-text('{email}') a.contact-link").click()
    await page.wait_for_selector(f"#contact-out dd:has-text('{email}')")
    await page.wait_for_selector("#contact-out td:has-text('helloWorld')")
    orders = page.locator("#contact-out .card:has-text('Orders (newest first)')")
    assert "web-1001" in await orders.inner_text() and "91 USD" in await orders.inner_text()
    await page.wait_for_selector("#contact-out td:has-text('WS01')")  # a recent view
    await shoot(page, "contact")

    assert session.urls, "the page made no request"
    leaked = [url for url in session.urls if gateway.server_key in url]
    assert leaked == []
    assert gateway.server_key not in page.url
    assert session.errors == []


async def test_charts_render(gateway: Gateway, session: Session) -> None:
    for n in range(5):
        gateway.send({"eventTypeKey": "helloWorld", "keyValue": f"c{n}@example.com"})
    gateway.send({"eventTypeKey": "pageViewed", "keyValue": "c0@example.com"})  # refused
    page = session.page
    await page.goto(f"{gateway.base}/ui/#charts")
    await sign_in(page, gateway.server_key)
    canvas = page.locator("#chart-events canvas")
    await canvas.wait_for()
    box = await canvas.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    legend = await page.locator("#chart-events .u-legend").inner_text()
    assert "helloWorld" in legend and "refused" in legend
    # No trigger yet: an empty state says why.
    await page.wait_for_selector("#triggers-empty:has-text('No triggers in the last 14 days')")

    # An order is a trigger (orderINITIALIZED): its type gets a chart of its own.
    placed = order(
        unique("o"),
        totalCost=45.5,
        currency="USD",
        email="c0@example.com",
        date="2026-01-01T10:00:00",
    )
    stored = gateway.post_orders(placed)
    assert stored.status_code == 200 and stored.json()["failedOrders"] == []
    await page.click("a[data-view=live]")
    await page.click("a[data-view=charts]")
    chart = page.locator("#chart-triggers .chart:has-text('orderINITIALIZED') canvas")
    await chart.wait_for()
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    assert await page.locator("#triggers-empty").is_hidden()
    await shoot(page, "charts")
    assert [url for url in session.urls if gateway.server_key in url] == []
    assert session.errors == []
