"""The tracker in real headless Chromium, on a page of another origin, against a real gateway
(docs/snippet.md, Delivery).

Each test runs `gateway serve` (on the session's Redis) with a tenant whose allowed origin is the
test page's server, and reads what arrived with the server key, as a shop's back-end would.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Request, Route, async_playwright

from tests.support.gateways import free_port, start_gateway, unique

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE = """<!doctype html>
<html><head><title>shop</title>
<script>window.gw=window.gw||function(){{(gw.q=gw.q||[]).push(arguments)}}</script>
<script async src="http://127.0.0.1:{port}/js/tracker.js" data-key="{key}"></script>
<script>{calls}</script>
</head><body><h1>shop</h1></body></html>"""


class Site:
    """A shop's pages on their own origin: every path serves `html`."""

    def __init__(self) -> None:
        self.html = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.html.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@dataclass
class Shop:
    """One tenant on a running gateway, and the site allowed to send it events."""

    site: Site
    port: int
    tenant: str
    config: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def site_key(self) -> str:
        return f"pk_{self.tenant}"

    def page(self, calls: str = "") -> str:
        self.site.html = PAGE.format(port=self.port, key=self.site_key, calls=calls)
        return self.site.origin + "/product/ws01"

    def start(self) -> None:
        self.process = start_gateway(self.port, self.env, "--config", str(self.config))

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        assert self.process.wait(timeout=20) == 0
        self.process = None

    async def read(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            return await http.get(path, headers={"authorization": f"Bearer sk_{self.tenant}"})

    async def contact_when(
        self, identifier: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        """The contact once `ready(contact)` holds; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            response = await self.read(f"/v1/contacts/{identifier}")
            if response.status_code == 200:
                last = response.json()
                if ready(last):
                    return dict(last)
            await asyncio.sleep(0.1)
        raise AssertionError(f"contact {identifier} never got there; last seen: {last}")


def allowed_only(site: Site, tenant: str, path: Path) -> Path:
    path.write_text(
        f'[[tenants]]\nid = "{tenant}"\nserver_keys = ["sk_{tenant}"]\n'
        f'site_keys = ["pk_{tenant}"]\nallowed_origins = ["{site.origin}"]\n'
    )
    return path


@pytest.fixture
def shop(redis_url: str, tmp_path: Path) -> Iterator[Shop]:
    site = Site()
    tenant = unique("web")
    config = allowed_only(site, tenant, tmp_path / "gateway.toml")
    env = {"REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    shop = Shop(site, free_port(), tenant, config, env)
    shop.start()
    try:
        yield shop
    finally:
        if shop.process is not None:
            shop.process.kill()
            shop.process.wait()
        site.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context()
    try:
        yield context
    finally:
        await context.close()


LOADED = "window.gw && window.gw.loaded"


async def test_identify_product_view_and_cart_reach_the_contact(
    shop: Shop, context: BrowserContext
) -> None:
    email = f"{unique('ann')}@example.com"
    page = await context.new_page()
    url = shop.page(
        f"gw('identify', {{email: '{email}'}});"
        "gw('productViewed', {productId: 'WS01-L-Green', price: 45.5, isInStock: 1},"
        " {currencyCode: 'USD'});"
    )
    await page.goto(url)
    await page.wait_for_function(LOADED)
    await page.evaluate(
        "gw('cartUpdated', [{productId: 'WS01-L-Green', quantity: 2, price: 45.5}],"
        " {currencyCode: 'USD'})"
    )
    rsid = await page.evaluate("gw('recycleStateId')")
    visitor = await page.evaluate("localStorage.getItem('gw_vid')")

    contact = await shop.contact_when(email, lambda c: c["cart"] is not None)
    assert contact["cart"]["recycleStateId"] == rsid
    assert contact["cart"]["currencyCode"] == "USD"
    assert contact["cart"]["total"] == 91.0
    assert [p["productId"] for p in contact["cart"]["products"]] == ["WS01-L-Green"]
    assert contact["recentProducts"][0]["productId"] == "WS01-L-Green"
    assert contact["recentProducts"][0]["price"] == 45.5
    assert contact["identifiers"]["email"] == [email]
    assert contact["identifiers"]["visitorId"] == [visitor]
    # The cookie lets the shop's back-end put the cart's id on the order.
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    assert cookies["gw_rsid"] == rsid

    # A single-page-app navigation is a page view too.
    await page.evaluate("history.pushState({}, '', '/cart')")
    for _ in range(200):
        views = (await shop.read(f"/v1/events?contact={email}&type=pageViewed")).json()["events"]
        if len(views) == 2:
            break
        await asyncio.sleep(0.1)
    locations = [e["params"]["page"]["location"] for e in views]
    assert locations == [shop.site.origin + "/cart", url]
    assert {e["channel"] for e in views} == {"web"}


async def test_an_event_right_before_the_page_closes_arrives(
    shop: Shop, context: BrowserContext
) -> None:
    page = await context.new_page()
    await page.goto(shop.page("gw('identify', {phone: '+380 50 123 45 67'})"))
    await page.wait_for_function(LOADED)
    await page.evaluate("gw('productViewed', {productId: 'LAST-CLICK', price: 9.99})")
    await page.close()

    contact = await shop.contact_when(
        "+380501234567",
        lambda c: any(p["productId"] == "LAST-CLICK" for p in c["recentProducts"]),
    )
    assert contact["identifiers"]["phone"] == ["+380501234567"]


def has_product(product_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda c: any(p["productId"] == product_id for p in c["recentProducts"])


async def test_events_queued_while_the_gateway_is_down_arrive_after_restart(
    shop: Shop, context: BrowserContext
) -> None:
    email = f"{unique('bo')}@example.com"
    page = await context.new_page()
    await page.goto(shop.page(f"gw('identify', {{email: '{email}'}})"))
    await page.wait_for_function(LOADED)
    await shop.contact_when(email, lambda c: True)

    shop.stop()

    def sends(product_id: str) -> Callable[[Request], bool]:
        return lambda r: "/v1/events" in r.url and product_id in (r.post_data or "")

    # The page tries at once, while the gateway is away: that attempt fails ...
    async with page.expect_event("requestfailed", sends("WHILE-DOWN")) as attempt:
        await page.evaluate("gw('productViewed', {productId: 'WHILE-DOWN', price: 1})")
    assert (await attempt.value).failure == "net::ERR_CONNECTION_REFUSED"
    await page.wait_for_function("localStorage.getItem('gw_q').includes('WHILE-DOWN')")
    shop.start()
    # The open page retries with backoff (1 s, 2 s, 4 s, ...).
    await shop.contact_when(email, has_product("WHILE-DOWN"))

    # Down again, and the page is closed: the next page view on the site delivers the rest.
    shop.stop()
    await page.evaluate("gw('productViewed', {productId: 'CLOSED-WHILE-DOWN', price: 2})")
    await page.wait_for_function("localStorage.getItem('gw_q').includes('CLOSED-WHILE-DOWN')")
    await page.close()
    shop.start()
    again = await context.new_page()
    await again.goto(shop.page())
    await shop.contact_when(email, has_product("CLOSED-WHILE-DOWN"))
    await again.wait_for_function("localStorage.getItem('gw_q') === '[]'")
    views = (await shop.read(f"/v1/events?contact={email}&type=productViewed")).json()["events"]
    assert sorted(e["params"]["product"]["productId"] for e in views) == [
        "CLOSED-WHILE-DOWN",
        "WHILE-DOWN",
    ]


async def test_a_site_not_in_allowed_origins_is_refused(
    shop: Shop, context: BrowserContext
) -> None:
    other = Site()
    try:
        other.html = PAGE.format(port=shop.port, key=shop.site_key, calls="")
        page = await context.new_page()
        async with page.expect_event("requestfailed", lambda r: "/v1/events" in r.url) as failed:
            await page.goto(other.origin + "/landing")
        # The gateway answered 403 without CORS headers, so Chromium kept the answer from the page.
        assert (await failed.value).failure == "net::ERR_FAILED"
        refused = f'reason="origin_not_allowed",tenant="{shop.tenant}"'
        for _ in range(100):
            if refused in (await shop.read("/metrics")).text:
                break
            await asyncio.sleep(0.05)
        assert refused in (await shop.read("/metrics")).text
        visitor = await page.evaluate("localStorage.getItem('gw_vid')")
        assert (await shop.read(f"/v1/contacts/{visitor}")).status_code == 404
        # The same key from the allowed site works.
        await page.goto(shop.page())
        await shop.contact_when(
            await page.evaluate("localStorage.getItem('gw_vid')"), lambda c: True
        )
    finally:
        other.close()


async def events_when(
    shop: Shop, contact: str, ready: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
) -> list[dict[str, Any]]:
    """The contact's stored events once `ready(events)` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = await shop.read(f"/v1/events?contact={contact}&limit=1000")
        if response.status_code == 200:
            events = response.json()["events"]
            if ready(events):
                return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"events of {contact} never got there; last seen: {len(events)}")


async def test_a_batch_over_64_kib_of_utf8_arrives(shop: Shop, context: BrowserContext) -> None:
    # ~31,000 characters of JSON but ~91,000 bytes: Chromium refuses it as a keepalive fetch.
    email = f"{unique('cjk')}@example.com"
    page = await context.new_page()
    await page.goto(
        shop.page(
            f"gw('identify', {{email: '{email}'}});"
            "for (let i = 0; i < 20; i++)"
            " gw('productViewed', {productId: 'P' + i, name: '陶瓷马克杯'.repeat(300)});"
        )
    )
    await page.wait_for_function(LOADED)
    await page.evaluate("gw('track', 'later')")
    events = await events_when(shop, email, lambda events: len(events) == 22)
    assert sorted(e["eventTypeKey"] for e in events).count("productViewed") == 20
    await page.wait_for_function("localStorage.getItem('gw_q') === '[]'")


async def test_the_tracker_starts_in_a_sandboxed_frame(shop: Shop, context: BrowserContext) -> None:
    # Without allow-same-origin both localStorage and document.cookie throw a SecurityError.
    inner = PAGE.format(port=shop.port, key=shop.site_key, calls="").replace('"', "&quot;")
    shop.site.html = f'<!doctype html><iframe sandbox="allow-scripts" srcdoc="{inner}"></iframe>'
    page = await context.new_page()
    async with page.expect_request(lambda r: "/v1/events" in r.url, timeout=5000) as sent:
        await page.goto(shop.site.origin + "/framed")
    # The frame's origin is opaque ("null"), so the gateway refuses it; it did start and send.
    [event] = (await sent.value).post_data_json
    assert event["eventTypeKey"] == "pageViewed"
    assert event["params"] == [{"name": "page", "value": '{"location":"about:srcdoc"}'}]


async def test_a_closed_page_hands_all_queued_events_to_beacons(
    shop: Shop, context: BrowserContext
) -> None:
    email = f"{unique('close')}@example.com"
    page = await context.new_page()

    async def no_fetch(route: Route) -> None:
        # The gateway cannot be reached during the visit; beacons at close get through.
        if route.request.resource_type == "fetch":
            await route.abort("connectionrefused")
        else:
            await route.continue_()

    await page.route("**/v1/events*", no_fetch)
    await page.goto(shop.page(f"gw('identify', {{email: '{email}'}})"))
    await page.wait_for_function(LOADED)
    # 60 events of ~600 bytes: more than a batch, within the 64 KiB that Chromium lets a page
    # have in beacons (and keepalive requests) in flight at once.
    await page.evaluate(
        "for (let i = 0; i < 60; i++) gw('track', 'tick', {i, pad: 'x'.repeat(400)})"
    )
    await page.wait_for_function("JSON.parse(localStorage.getItem('gw_q')).length === 61")
    await page.evaluate("dispatchEvent(new Event('pagehide'))")
    await page.close()
    await events_when(shop, email, lambda events: len(events) == 61, timeout=10)


async def test_two_tabs_sending_at_once_lose_no_event(shop: Shop, context: BrowserContext) -> None:
    # Each tab writes the shared queue in localStorage, sometimes from a copy that does not have
    # the other tab's latest events yet.
    url = shop.page()
    tabs = [await context.new_page(), await context.new_page()]
    for tab in tabs:
        await tab.goto(url)
        await tab.wait_for_function(LOADED)
    visitor = await tabs[0].evaluate("localStorage.getItem('gw_vid')")
    burst = (
        "(tab) => new Promise((done) => { let i = 0; const every = setInterval(() => {"
        " gw('track', 'tick', {tab, i}); if (++i === 100) { clearInterval(every); done(); } },"
        " 3) })"
    )
    await asyncio.gather(*(tab.evaluate(burst, n) for n, tab in enumerate(tabs)))
    events = await events_when(
        shop, visitor, lambda events: sum(e["eventTypeKey"] == "tick" for e in events) >= 200
    )
    ticks = {(e["params"]["tab"], e["params"]["i"]) for e in events if e["eventTypeKey"] == "tick"}
    assert len(ticks) == 200
