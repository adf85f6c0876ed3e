"""First-party paths in real Chromium (SPEC §15): a page whose snippet is unchanged, loading the
tracker from `tracker_path` or from `/js/tracker.js`, sends its events to `collect_batch_path`
and to no other path of the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Request

from tests.browser.test_snippet import Site
from tests.support.gateways import serving, unique

pytestmark = pytest.mark.browser

TRACKER_PATH = "/static/app.js"
BATCH_PATH = "/assets/pixel"
# The page's snippet as docs/snippet.md gives it, with only the script's path chosen.
SNIPPET = """<!doctype html>
<html><head><title>shop</title>
<script>window.gw=window.gw||function(){{(gw.q=gw.q||[]).push(arguments)}}</script>
<script async src="http://127.0.0.1:{port}{tracker}" data-key="{key}"></script>
<script>{calls}</script>
</head><body><h1>shop</h1></body></html>"""


class Gateway:
    def __init__(self, port: int, tenant: str) -> None:
        self.port, self.tenant = port, tenant
        self.origin = f"http://127.0.0.1:{port}"

    async def events(self, contact: str, count: int, timeout: float = 20) -> list[str]:
        """The event types of the contact once `count` have arrived."""
        deadline = time.monotonic() + timeout
        found: list[str] = []
        async with httpx.AsyncClient(base_url=self.origin) as http:
            while time.monotonic() < deadline:
                response = await http.get(
                    f"/v1/events?contact={contact}",
                    headers={"authorization": f"Bearer sk_{self.tenant}"},
                )
                if response.status_code == 200:
                    found = [e["eventTypeKey"] for e in response.json()["events"]]
                    if len(found) >= count:
                        return found
                await asyncio.sleep(0.1)
        raise AssertionError(f"{count} events of {contact} never arrived; last seen: {found}")


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def gateway(redis_url: str, tmp_path: Path, site: Site) -> Iterator[Gateway]:
    tenant = unique("fp")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[gateway]\ncollect_path = "/assets/one"\ncollect_batch_path = "{BATCH_PATH}"\n'
        f'tracker_path = "{TRACKER_PATH}"\n\n'
        f'[[tenants]]\nid = "{tenant}"\nserver_keys = ["sk_{tenant}"]\n'
        f'site_keys = ["pk_{tenant}"]\nallowed_origins = ["{site.origin}"]\n'
    )
    with serving(config, redis_url, tmp_path / "data") as (port, _):
        yield Gateway(port, tenant)


@pytest.mark.parametrize("tracker", [TRACKER_PATH, "/js/tracker.js"])
async def test_the_page_sends_only_to_the_configured_paths(
    gateway: Gateway, site: Site, context: BrowserContext, tracker: str
) -> None:
    requests: list[Request] = []
    # Every request of every page of the context.
    context.on("request", lambda request: requests.append(request))
    email = f"{unique('ann')}@example.com"
    calls = (
        f"gw('identify', {{email: '{email}'}});"
        "gw('productViewed', {productId: 'WS01', price: 45.5}, {currencyCode: 'USD'});"
    )
    site.html = SNIPPET.format(
        tracker=tracker, port=gateway.port, key=f"pk_{gateway.tenant}", calls=calls
    )
    page = await context.new_page()
    await page.goto(site.origin + "/product/ws01")
    await page.wait_for_function("window.gw && window.gw.loaded")
    await page.evaluate("gw('track', 'wishlistAdded', {productId: 'WS01'})")
    found = await gateway.events(email, 3)
    assert sorted(found) == ["pageViewed", "productViewed", "wishlistAdded"]
    await page.wait_for_function("localStorage.getItem('gw_q') === '[]'")

    to_gateway = [urlsplit(r.url) for r in requests if r.url.startswith(gateway.origin)]
    assert {(u.path, u.query) for u in to_gateway if u.path != BATCH_PATH} == {(tracker, "")}
    sent = [u for u in to_gateway if u.path == BATCH_PATH]
    assert sent and all(u.query == f"key=pk_{gateway.tenant}" for u in sent)


async def test_the_dashboard_s_help_names_the_configured_paths(
    gateway: Gateway, context: BrowserContext
) -> None:
    """The dashboard's empty Live view gives the snippet and a curl to try: with the server's
    own paths, not the defaults it was configured away from."""
    page = await context.new_page()
    await page.goto(gateway.origin + "/ui/")
    await page.fill("#key", f"sk_{gateway.tenant}")
    await page.click("#login-form button")
    await page.wait_for_selector("#live-empty:has-text('No events yet')")
    help_text = await page.locator("#live-empty").inner_text()
    assert f'src="{gateway.origin}{TRACKER_PATH}"' in help_text
    assert f"curl -X POST {gateway.origin}/assets/one " in help_text
    assert "/js/tracker.js" not in help_text and "/v1/event " not in help_text
