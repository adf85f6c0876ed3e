"""First-party paths in the config (SPEC §15, docs/configuration.md): a bad or colliding path
stops start-up with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import check_paths
from gateway.settings import ConfigError, parse_config

TENANT = {"id": "t", "server_keys": ["sk_t"]}


def settings_with(**paths: str) -> object:
    settings = parse_config({"gateway": paths, "tenants": [TENANT]}, Path("data"), None)
    check_paths(settings)
    return settings


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({"collect_path": "collect"}, "gateway.collect_path: must be a path starting with '/'"),
        ({"tracker_path": 5}, "gateway.tracker_path: must be a path starting with '/'"),
        ({"collect_path": "/c?x=1"}, "gateway.collect_path: '/c?x=1' may hold only"),
        ({"collect_batch_path": "/a//b"}, "gateway.collect_batch_path: '/a//b' may hold only"),
        ({"collect_path": "/a/../b"}, "gateway.collect_path: '/a/../b' may hold only"),
        ({"collect_path": "/a/."}, "gateway.collect_path: '/a/.' may hold only"),
        ({"tracker_path": '/t";alert(1)//'}, "gateway.tracker_path: '/t\";alert(1)//' may hold"),
        ({"collect_batch_path": "/v1/event"}, "gateway.collect_batch_path: '/v1/event' is a path"),
        ({"collect_path": "/metrics"}, "gateway.collect_path: '/metrics' is a path the gateway"),
        ({"tracker_path": "/v1/contacts/x"}, "gateway.tracker_path: '/v1/contacts/x' is a path"),
        ({"collect_path": "/v1/orders"}, "gateway.collect_path: '/v1/orders' is a path"),
        ({"collect_path": "/api/v1/c"}, "gateway.collect_path: '/api/v1/c' is a spelling of"),
        ({"collect_path": "/v1/c/"}, "gateway.collect_path: '/v1/c/' is a spelling of '/v1/c'"),
        (
            {"collect_path": "/c", "collect_batch_path": "/c"},
            "gateway.collect_batch_path: '/c' is also gateway.collect_path",
        ),
        (
            {"collect_batch_path": "/a.js", "tracker_path": "/a.js"},
            "gateway.tracker_path: '/a.js' is also gateway.collect_batch_path",
        ),
    ],
)
def test_bad_or_colliding_paths_name_the_key(paths: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_with(**paths)  # type: ignore[arg-type]
    assert str(error.value).startswith(message), str(error.value)


def test_new_paths_are_taken_and_the_defaults_add_none() -> None:
    settings = settings_with(collect_path="/c", collect_batch_path="/c/b", tracker_path="/s.js")
    assert (settings.collect_path, settings.collect_batch_path) == ("/c", "/c/b")  # type: ignore[attr-defined]
    assert settings.tracker_path == "/s.js"  # type: ignore[attr-defined]
    # The defaults written out are the paths the gateway serves anyway, not collisions.
    settings_with(collect_path="/v1/event", collect_batch_path="/v1/events")
