"""The Docker image, as far as the Dockerfile tells."""

from __future__ import annotations

from tests.support.gateways import ROOT


def test_docker_image_runs_unprivileged_with_a_healthcheck() -> None:
    # No Docker daemon in the test environment: check the Dockerfile says so, at least.
    text = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "\nHEALTHCHECK " in text and "/healthz" in text
