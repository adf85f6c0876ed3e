"""The per-key rate limit: a 429 with Retry-After, for writes and every read.

The contract: docs/operations.md, Rate limits.
"""

from __future__ import annotations

import pytest

PAGE = {
    "eventTypeKey": "pageViewed",
    "keyValue": "ann@example.com",
    "params": [{"name": "page", "value": '{"location":"https://shop.example/"}'}],
}


async def test_rate_limit_per_key(make_api):
    api, _ = await make_api(rate_limit_per_second=2)
    answers = [await api.event(PAGE) for _ in range(5)]
    assert [answer.status_code for answer in answers[:2]] == [200, 200]
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/contacts/ann@example.com",
        "/v1/events",
        "/v1/events?contact=ann@example.com",
        "/v1/orders/o-1",
        "/v1/carts/rs-1",
        "/v1/triggers",
        "/v1/webhooks/dead",
    ],
)
async def test_rate_limit_covers_every_read(make_api, path):
    """Reads cost Redis work too: they count against the key like writes, with the same 429."""
    api, other = await make_api(rate_limit_per_second=2)
    # a busy machine may refill a token between two requests: the 429 is looked for, not counted
    answers = [await api.get(path) for _ in range(5)]
    assert 429 not in [answer.status_code for answer in answers[:2]]
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # the key's bucket is spent for writes too; another key's is not
    assert 429 in [(await api.event(PAGE)).status_code for _ in range(3)]
    assert (await other.get(path)).status_code != 429
