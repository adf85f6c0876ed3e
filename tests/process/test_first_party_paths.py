"""`gateway serve` refuses first-party paths that collide or are not paths, naming the key
(SPEC §15, docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gateways import gateway_command

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('tracker_path = "/metrics"', "gateway.tracker_path: '/metrics' is a path the gateway"),
        ('collect_path = "collect"', "gateway.collect_path: must be a path starting with '/'"),
    ],
)
def test_a_bad_path_stops_start_up_naming_the_key(tmp_path: Path, line: str, message: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\n{line}\n\n[[tenants]]\nid = "t"\nserver_keys = ["sk_t"]\n')
    result = gateway_command("serve", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"gateway: configuration error: {message}"), result.stderr
