"""Every API test that stores or reads through Redis runs on both backends: one Redis server
("single") and a real local Redis Cluster of 3 primaries with a replica each ("cluster"), as
test ids say (`test_x[single]`, `test_x[cluster]`). The parametrization is indirect, on the
session-scoped `redis_url` of tests/conftest.py, so pytest runs the tests of one backend
together and the served apps of the other backend are stopped in between."""

from __future__ import annotations

import pytest

from tests.support.cluster import BACKENDS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_url" in metafunc.fixturenames and not _parametrized(metafunc, "redis_url"):
        metafunc.parametrize("redis_url", BACKENDS, indirect=True)


def _parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    return any(name in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize"))
