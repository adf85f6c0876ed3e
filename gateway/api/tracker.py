"""`GET /js/tracker.js`: the browser tracker built from `js_snippet/` (docs/snippet.md), also
at `tracker_path` when the config sets one (app.py adds that route).

The tracker posts to `collect_batch_path` (SPEC §15): the one `/v1/events?key=` of the built
script is replaced by it, so the page's snippet stays as it is. The bytes are read once and
served from memory, gzipped when the browser accepts it. Any origin
may load the script (it holds no secrets; the site key is on the page's script tag). The URL has
no version in it, so shops never edit their pages: a day of fresh caching plus a week of
stale-while-revalidate keeps page loads free of round trips, the ETag makes the revalidation a
304, and a new tracker reaches every visitor within a day.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.state import gateway_state

TRACKER = Path(__file__).parent.parent / "static" / "tracker.js"
TRACKER_PATH = "/js/tracker.js"
# What the built script posts to, after its endpoint (js_snippet/src/tracker.js).
POSTS_TO = b"/v1/events?key="
CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str


@functools.cache
def tracker_asset(batch_path: str) -> Asset:
    """The tracker posting to `batch_path` (letters, digits and -._~/ only: settings.path)."""
    built = TRACKER.read_bytes()
    if built.count(POSTS_TO) != 1:
        raise RuntimeError(f"{TRACKER} must hold {POSTS_TO!r} once, the path it posts to")
    body = built.replace(POSTS_TO, batch_path.encode() + b"?key=")
    digest = hashlib.sha256(body).hexdigest()[:20]
    return Asset(body, gzip.compress(body, 9, mtime=0), f'"{digest}"')


def _accepts_gzip(request: Request) -> bool:
    return any(
        part.split(";", 1)[0].strip() == "gzip"
        for part in request.headers.get("accept-encoding", "").lower().split(",")
    )


async def tracker_js(request: Request) -> Response:
    asset = tracker_asset(gateway_state(request).settings.collect_batch_path)
    headers = {
        "cache-control": CACHE_CONTROL,
        "etag": asset.etag,
        "vary": "accept-encoding",
        "access-control-allow-origin": "*",
        # Lets pages that set Cross-Origin-Embedder-Policy: require-corp load it too.
        "cross-origin-resource-policy": "cross-origin",
        "x-content-type-options": "nosniff",
    }
    tags = request.headers.get("if-none-match", "")
    if tags.strip() == "*" or asset.etag in (t.strip().removeprefix("W/") for t in tags.split(",")):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if _accepts_gzip(request):
        body = asset.gzipped
        headers["content-encoding"] = "gzip"
    return Response(body, headers=headers, media_type="text/javascript; charset=utf-8")


routes = [Route(TRACKER_PATH, tracker_js)]
