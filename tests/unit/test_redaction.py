"""URLs shown in logs and answers without their credentials (webhook and Redis URLs)."""

from __future__ import annotations

import pytest

from gateway.redaction import redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@crm.example/hook?token=abc", "https://***@crm.example/hook?token=***"),
        (
            "https://crm.example:8443/a/@b?x=1&y=&z#frag",
            "https://crm.example:8443/a/@b?x=***&y=&***#***",
        ),
        ("https://crm.example/hook", "https://crm.example/hook"),
        (
            "redis://:pw@10.0.0.1:6379/0?password=pw&db=2",
            "redis://***@10.0.0.1:6379/0?password=***&db=***",
        ),
        ("unix://:pw@/run/redis.sock?db=0", "unix://***@/run/redis.sock?db=***"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert redacted(shown) == shown  # stored entries, redacted already, pass through unchanged
