"""Webhook signatures: Standard Webhooks deliveries checked with that project's own Python library
(`standardwebhooks`), secret rotation in both schemes, their config errors and `gateway secret`.

Deliveries go to a real local HTTP receiver and are accepted or refused by the library itself;
one test also recomputes a signature from the specification's words."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from gateway.cli import main, parser
from gateway.settings import ConfigError, load_settings, parse_config
from gateway.signing import new_secret, signed_headers, standard_key
from tests.support.triggering import TIMEOUT, Receiver, page, send, triggers
from tests.support.waiting import wait_for


@pytest.fixture
async def receiver():
    server = Receiver()
    server.url = await server.start()  # type: ignore[attr-defined]
    yield server
    await server.stop()


async def received(server: Receiver, count: int) -> list[tuple[dict[str, str], bytes, float]]:
    await wait_for(lambda: len(server.requests) >= count)
    return server.requests


async def test_a_standard_delivery_verifies_with_the_library(make_api, receiver):
    secret = new_secret()
    hook = {"url": receiver.url, "secret": secret, "signature": "standard"}
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT, webhooks=[hook])
    await send(api, page("std@x.io"))
    ((headers, body, _),) = await received(receiver, 1)
    (trigger,) = await triggers(api)
    trigger.pop("deliveries")  # the feed's, not sent
    assert Verifier(secret).verify(body, headers) == trigger
    assert headers["webhook-id"] == trigger["id"]
    assert not [name for name in headers if name.startswith("x-gateway-")]
    # The specification's own words, by hand: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>
    # with the key decoded from the base64 after whsec_.
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    with pytest.raises(WebhookVerificationError):
        Verifier(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(body.replace(b"std@x.io", b"evil@x.io"), headers)


async def test_a_retried_standard_delivery_keeps_its_webhook_id(make_api, receiver):
    receiver.statuses = [500]
    secret = new_secret()
    hook = {"url": receiver.url, "secret": secret, "signature": "standard"}
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT, webhooks=[{**hook, "retry_initial_seconds": 0.1}]
    )
    await send(api, page("again@x.io"))
    first, second = await received(receiver, 2)
    (trigger,) = await triggers(api)
    trigger.pop("deliveries")  # the feed's, not sent
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == trigger["id"]  # dedupe on it
    assert first[1] == second[1]
    for headers, body, _ in (first, second):
        assert Verifier(secret).verify(body, headers) == trigger


async def test_a_rotated_standard_secret_signs_with_each(make_api, receiver):
    new, old = new_secret(), new_secret()
    hook = {"url": receiver.url, "secrets": [new, old], "signature": "standard"}
    api, _ = await make_api(visit_timeout_seconds=TIMEOUT, webhooks=[hook])
    await send(api, page("rotate@x.io"))
    ((headers, body, _),) = await received(receiver, 1)
    assert [s.partition(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    (trigger,) = await triggers(api)
    trigger.pop("deliveries")  # the feed's, not sent
    # A consumer still on the old secret and one already on the new both accept it.
    assert Verifier(new).verify(body, headers) == Verifier(old).verify(body, headers) == trigger
    with pytest.raises(WebhookVerificationError):
        Verifier(new_secret()).verify(body, headers)


async def test_a_rotated_gateway_secret_repeats_the_signature_header(make_api, receiver):
    new, old = "new-secret-1", "old-secret-1"
    api, _ = await make_api(
        visit_timeout_seconds=TIMEOUT, webhooks=[{"url": receiver.url, "secrets": [new, old]}]
    )
    await send(api, page("rotate-gw@x.io"))
    ((headers, body, _),) = await received(receiver, 1)
    # The receiver joins a repeated header's values with ", ", as most frameworks do.
    values = headers["x-gateway-signature"].split(", ")
    signed = headers["x-gateway-timestamp"].encode() + b"." + body
    assert values == [
        "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        for secret in (new, old)
    ]
    assert headers["x-gateway-id"] == json.loads(body)["id"]
    assert "webhook-signature" not in headers


def config(**webhook: object) -> dict[str, object]:
    hook = {"url": "https://crm.example/hook", **webhook}
    return {"tenants": [{"id": "t", "server_keys": ["k"], "webhooks": [hook]}]}


SHORT_KEY = "whsec_" + base64.b64encode(b"8 bytes!").decode()


@pytest.mark.parametrize(
    ("webhook", "message"),
    [
        (
            {"secret": "long-enough", "signature": "svix"},
            'webhooks[0].signature: expected "gateway" or "standard", got \'svix\'',
        ),
        ({"secrets": []}, "webhooks[0].secrets: empty list; a webhook needs a secret"),
        ({"secrets": "long-enough"}, "webhooks[0].secrets: expected a list of non-empty strings"),
        (
            {"secret": "long-enough", "secrets": ["long-enough"]},
            "webhooks[0].secrets: give secret or secrets, not both",
        ),
        ({"secrets": ["long-enough", "short"]}, "webhooks[0].secrets[1]: expected a string of"),
        ({}, "webhooks[0].secret: expected a string of at least 8 characters"),
        (
            {"secret": "long-enough", "signature": "standard"},
            'webhooks[0].secret: signature = "standard" needs a secret of the form '
            "whsec_<base64 key>; `gateway secret` prints a fresh one",
        ),
        (
            {"secret": "whsec_not*base64*at*all", "signature": "standard"},
            "webhooks[0].secret: the part after whsec_ is not valid base64",
        ),
        (
            # unpadded: Python's library would take it, those of other languages not
            {"secret": new_secret().rstrip("="), "signature": "standard"},
            "webhooks[0].secret: the part after whsec_ is not valid base64",
        ),
        (
            {"secret": SHORT_KEY, "signature": "standard"},
            "webhooks[0].secret: the key after whsec_ is 8 bytes, Standard Webhooks asks for 24 "
            "to 64",
        ),
        (
            {"secrets": [new_secret(), "old-gateway-secret"], "signature": "standard"},
            'webhooks[0].secrets[1]: signature = "standard" needs a secret of the form whsec_',
        ),
    ],
)
def test_signing_config_errors_name_the_key(webhook, message, tmp_path):
    with pytest.raises(ConfigError) as error:
        parse_config(config(**webhook), tmp_path, None)
    assert f"tenants[0].{message}" in str(error.value)
    listed = webhook.get("secrets")
    for secret in [webhook.get("secret"), *(listed if isinstance(listed, list) else [listed])]:
        assert not isinstance(secret, str) or secret not in str(error.value)  # never shown


def test_secret_and_secrets_are_read(tmp_path):
    (one,) = parse_config(config(secret="long-enough"), tmp_path, None).tenants[0].webhooks
    assert (one.secrets, one.signature) == (("long-enough",), "gateway")
    new, old = new_secret(), new_secret()
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[[tenants]]\nid = "t"\nserver_keys = ["k"]\n[[tenants.webhooks]]\n'
        f'url = "https://crm.example/hook"\nsignature = "standard"\nsecrets = ["{new}", "{old}"]\n'
    )
    settings = load_settings(str(path), env={"GATEWAY_DATA_DIR": str(tmp_path)})
    (rotated,) = settings.tenants[0].webhooks
    assert (rotated.secrets, rotated.signature) == ((new, old), "standard")


def test_gateway_secret_prints_a_fresh_whsec_secret(capsys):
    assert main(["secret"]) == 0
    assert main(["secret"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first != second
    assert len(standard_key(first)) == 32
    headers = signed_headers("standard", [first], "msg_1", str(int(time.time())), b"{}")
    assert Verifier(first).verify(b"{}", dict(headers)) == {}  # the library reads the same key


def test_gateway_secret_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["secret", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "whsec_" in text and 'signature = "standard"' in text
    assert "print a fresh webhook secret" in parser().format_help()  # listed by gateway --help
