"""`[gateway] metrics_token` (docs/operations.md, Metrics): `/metrics` then answers only
`Authorization: Bearer <token>`, with 401 otherwise; without it `/metrics` is open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.settings import ConfigError, parse_config

TOKEN = "mt_0123456789abcdef-é"


@pytest.mark.both_transports
async def test_metrics_need_the_token_when_one_is_set(make_api: Any) -> None:
    api, _ = await make_api(gateway={"metrics_token": TOKEN})
    for headers in (
        {},
        {"authorization": b"Bearer mt_0123456789abcdef"},
        {"authorization": f"Bearer {TOKEN}x".encode()},
        {"authorization": f"Basic {TOKEN}".encode()},
        {"authorization": b"Bearer"},
        {"authorization": f"Bearer {api.server_key}".encode()},  # an API key is not the token
    ):
        refused = await api.http.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert refused.json()["error"] == "unauthorized"
        assert refused.json()["field"] == "authorization"
        assert TOKEN not in refused.text
    for scheme in ("Bearer", "bearer"):
        answer = await api.http.get(
            "/metrics", headers={"authorization": f"{scheme} {TOKEN}".encode()}
        )
        assert answer.status_code == 200
        assert "gateway_request_duration_seconds" in answer.text


async def test_metrics_are_open_without_a_token(api: Any) -> None:
    assert (await api.http.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "gateway.metrics_token: expected a non-empty string"),
        (5, "gateway.metrics_token: expected a non-empty string"),
        ("two words", "gateway.metrics_token: has white space or control characters"),
    ],
)
def test_a_bad_token_names_the_key(value: object, message: str) -> None:
    raw = {"gateway": {"metrics_token": value}, "tenants": [{"id": "t", "server_keys": ["k"]}]}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, Path("data"), None)


def test_the_token_is_not_in_the_settings_repr() -> None:
    raw = {"gateway": {"metrics_token": TOKEN}, "tenants": [{"id": "t", "server_keys": ["k"]}]}
    settings = parse_config(raw, Path("data"), None)
    assert settings.metrics_token == TOKEN
    assert TOKEN not in repr(settings)
