"""The dashboard's files at /ui/ (docs/dashboard.md): served from the package with a strict
Content-Security-Policy, to no other origin, and nothing else under /ui/."""

from __future__ import annotations

import re
from typing import Any

from tests.support.gateways import Api

# In the order the page runs them: uPlot and the helpers (core.js) before the views.
SCRIPTS = [
    "vendor/uPlot.iife.min.js",
    "core.js",
    "live.js",
    "contact.js",
    "triggers.js",
    "charts.js",
]


async def test_the_page_and_its_files_have_a_strict_policy_and_no_cors(api: Api) -> None:
    page = await api.http.get("/ui/", headers={"origin": "https://elsewhere.example"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "access-control-allow-origin" not in page.headers
    assert re.findall(r"<script\b[^>]*>", page.text) == [
        f'<script src="{name}" defer>' for name in SCRIPTS
    ]
    assert "<style" not in page.text
    for name, kind in [
        *((name, "text/javascript") for name in SCRIPTS),
        ("app.css", "text/css"),
        ("vendor/uPlot.min.css", "text/css"),
    ]:
        asset = await api.http.get(f"/ui/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith(kind)
        assert asset.headers["content-security-policy"] == csp
    preflight = await api.http.options(
        "/ui/",
        headers={"origin": "https://elsewhere.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_ui_without_its_slash_is_sent_to_the_page(api: Api) -> None:
    answer = await api.http.get("/ui")
    assert answer.status_code == 308 and answer.headers["location"] == "/ui/"


async def test_nothing_else_is_served_under_ui(api: Any) -> None:
    for path in (
        "/ui/nope.js",
        "/ui/../gateway/app.py",
        "/ui/vendor/uPlot.LICENSE",
        "/ui/%2e%2e/x",
    ):
        answer = await api.http.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found"
