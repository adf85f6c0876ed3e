"""`GET /ui/`: the dashboard, static files shipped in the package (gateway/ui/; docs/dashboard.md).

The files are read once and served from memory. The page runs only its own files: the Content-
Security-Policy allows no inline script or style and no other origin, and no CORS header lets
another site read them. The page asks the operator for a server key and sends it to the API in
the Authorization header; nothing here needs one (the files hold no data).
"""

from __future__ import annotations

import functools
import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.http import not_found
from gateway.state import gateway_state

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@functools.cache
def ui_files() -> dict[str, tuple[bytes, str]]:
    """Path under /ui/ -> (bytes, media type), for every file the page is made of."""
    root = resources.files("gateway") / "ui"
    found: dict[str, tuple[bytes, str]] = {}
    for folder, prefix in ((root, ""), (root / "vendor", "vendor/")):
        for entry in folder.iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if entry.is_file() and suffix in MEDIA_TYPES:
                found[prefix + entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    found[""] = found["index.html"]
    return found


# index.html names the default first-party paths (docs/dashboard.md: the help texts give the
# snippet and a curl with them); a server configured with others gets its own in their place.
PAGE_PATHS = {
    "tracker_path": b'data-tracker-path="/js/tracker.js"',
    "collect_path": b'data-collect-path="/v1/event"',
}


async def ui_file(request: Request) -> Response:
    name = request.path_params.get("name", "")
    found = ui_files().get(name)
    if found is None:
        raise not_found("dashboard file")
    body, media_type = found
    if name in ("", "index.html"):
        settings = gateway_state(request).settings
        for setting, default in PAGE_PATHS.items():
            attribute = default.partition(b"=")[0]
            value = html.escape(getattr(settings, setting)).encode()
            body = body.replace(default, attribute + b'="' + value + b'"')
    return Response(body, headers=HEADERS, media_type=media_type)


async def ui_root(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=308)


routes = [
    Route("/ui", ui_root),
    Route("/ui/", ui_file),
    Route("/ui/{name:path}", ui_file),
]
