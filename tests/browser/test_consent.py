"""Consent in the tracker, in real headless Chromium against a real gateway (docs/snippet.md,
Consent): before consent no request leaves the page and nothing is stored; a grant delivers what
waited; a withdrawal clears storage and cookies; Global Privacy Control is a denial.

Every request the page makes is recorded. Absence is shown with a barrier: the page fetches a
marker from its own site after its calls, and Chromium reports requests in the order the page made
them, so a tracker request would have been recorded before the marker's.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import BrowserContext, Page

from tests.browser.test_snippet import LOADED, Shop, events_when
from tests.support.gateways import unique

PAGE = """<!doctype html>
<html><head><title>shop</title>
<script>window.gw=window.gw||function(){{(gw.q=gw.q||[]).push(arguments)}}</script>
<script async src="http://127.0.0.1:{port}/js/tracker.js" data-key="{key}" {attributes}></script>
<script>{calls}</script>
</head><body><h1>shop</h1></body></html>"""

STORED = "localStorage.length + ' ' + document.cookie"


def consent_page(shop: Shop, attributes: str, calls: str = "") -> str:
    shop.site.html = PAGE.format(
        port=shop.port, key=shop.site_key, attributes=attributes, calls=calls
    )
    return shop.site.origin + "/product/ws01"


def recorded(page: Page) -> list[str]:
    """The URL of every request the page makes, from now on."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


async def barrier(shop: Shop, page: Page) -> None:
    """Returns once every request the page made before it has been recorded."""
    marker = f"{shop.site.origin}/marker-{unique('m')}"
    async with page.expect_request(marker):
        await page.evaluate("(url) => { fetch(url) }", marker)


def to_gateway(urls: list[str], shop: Shop) -> list[str]:
    gateway = f"http://127.0.0.1:{shop.port}/"
    return [url for url in urls if url.startswith(gateway) and not url.endswith("/js/tracker.js")]


async def test_before_consent_nothing_leaves_the_page_and_nothing_is_stored(
    shop: Shop, context: BrowserContext
) -> None:
    email = f"{unique('ann')}@example.com"
    page = await context.new_page()
    urls = recorded(page)
    url = consent_page(
        shop,
        'data-consent="required"',
        f"gw('identify', {{email: '{email}'}});"
        "gw('productViewed', {productId: 'WS01', price: 45.5}, {currencyCode: 'USD'});",
    )
    await page.goto(url)
    await page.wait_for_function(LOADED)
    await page.evaluate(
        "gw('cartUpdated', [{productId: 'WS01', quantity: 2, price: 45.5}]);"
        "history.pushState({}, '', '/cart');"
        "dispatchEvent(new Event('pagehide'));"  # what would hand the queue to a beacon
    )
    assert await page.evaluate("gw('recycleStateId')") is None
    await barrier(shop, page)
    assert to_gateway(urls, shop) == []
    assert {u.split("/")[2] for u in urls} == {shop.site.origin[7:], f"127.0.0.1:{shop.port}"}
    assert await page.evaluate(STORED) == "0 "
    assert await context.cookies() == []

    # Granted: what waited arrives, in order, and is stored as without data-consent.
    await page.evaluate("gw('consent', 'granted')")
    events = await events_when(shop, email, lambda events: len(events) == 4)
    types = sorted(e["eventTypeKey"] for e in events)
    assert types == ["cartUpdated", "pageViewed", "pageViewed", "productViewed"]
    contact = await shop.contact_when(email, lambda c: c["cart"] is not None)
    assert contact["cart"]["total"] == 91.0
    assert contact["identifiers"]["visitorId"] == [
        await page.evaluate("localStorage.getItem('gw_vid')")
    ]
    rsid = await page.evaluate("gw('recycleStateId')")
    assert {c["name"]: c["value"] for c in await context.cookies()} == {"gw_rsid": rsid}
    await page.wait_for_function("localStorage.getItem('gw_q') === '[]'")

    # Withdrawn: storage and cookies are cleared, and later calls send nothing.
    await page.evaluate("gw('consent', 'denied')")
    assert await page.evaluate(STORED) == "0 "
    assert await context.cookies() == []
    sent = len(to_gateway(urls, shop))
    await page.evaluate("gw('productViewed', {productId: 'AFTER', price: 1}); gw('track', 'x')")
    await barrier(shop, page)
    assert len(to_gateway(urls, shop)) == sent
    assert await page.evaluate(STORED) == "0 "
    events = await events_when(shop, email, lambda events: len(events) == 4)
    assert "x" not in {e["eventTypeKey"] for e in events}


async def gpc_page(context: BrowserContext) -> Page:
    page = await context.new_page()
    await page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    return page


async def test_global_privacy_control_is_a_denial_where_the_site_respects_it(
    shop: Shop, context: BrowserContext
) -> None:
    page = await gpc_page(context)
    urls = recorded(page)
    await page.goto(consent_page(shop, 'data-respect-gpc="true"', "gw('consent', 'granted')"))
    await page.wait_for_function(LOADED)
    assert await page.evaluate("navigator.globalPrivacyControl") is True
    await page.evaluate("gw('consent', 'granted'); gw('track', 'x'); gw('cartUpdated', [])")
    await barrier(shop, page)
    assert to_gateway(urls, shop) == []
    assert await page.evaluate(STORED) == "0 "
    assert await context.cookies() == []

    # Without data-respect-gpc the same browser is tracked: the signal is the site's to weigh.
    other = await gpc_page(context)
    await other.goto(consent_page(shop, ""))
    await other.wait_for_function(LOADED)
    visitor: Any = await other.evaluate("localStorage.getItem('gw_vid')")
    await events_when(shop, visitor, lambda events: len(events) == 1)
