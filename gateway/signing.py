"""How a webhook delivery is signed: the gateway's own scheme and Standard Webhooks.

`signature = "gateway"` (the default) sends `X-Gateway-Signature: sha256=<hex HMAC-SHA256(secret,
timestamp + "." + body)>`, the secret's UTF-8 bytes being the key. `signature = "standard"` signs
as Standard Webhooks does, so consumers verify with that project's libraries:
`webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>`, the key
being what the base64 after `whsec_` in the secret decodes to. With several secrets (a rotation)
every delivery carries one signature per secret; docs/triggers.md (Webhooks) shows both from the
consumer's side.

Settings checks each secret here at start-up, the delivery task signs here, and `gateway secret`
makes new secrets here, so the three never disagree on the format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from secrets import token_bytes

SCHEMES = ("gateway", "standard")
PREFIX = "whsec_"
# The key length Standard Webhooks asks for (docs/triggers.md, Configuring a webhook).
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
NEW_KEY_BYTES = 32
HOW_TO_MAKE_ONE = "`gateway secret` prints a fresh one"


def new_secret() -> str:
    """A random `whsec_<base64 key>`: valid for either scheme."""
    return PREFIX + base64.b64encode(token_bytes(NEW_KEY_BYTES)).decode()


def standard_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError saying what is wrong (never the
    secret itself, which would end up in a log)."""
    if not secret.startswith(PREFIX):
        raise ValueError(
            f'signature = "standard" needs a secret of the form {PREFIX}<base64 key>; '
            + HOW_TO_MAKE_ONE
        )
    try:
        # validate=True: no stray characters, padding required, as the libraries of other
        # languages decode it (Python's alone would let such a secret through).
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError(
            f"the part after {PREFIX} is not valid base64 (A-Z a-z 0-9 + /, padded with =); "
            + HOW_TO_MAKE_ONE
        ) from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"the key after {PREFIX} is {len(key)} bytes, Standard Webhooks asks for "
            f"{MIN_KEY_BYTES} to {MAX_KEY_BYTES}; " + HOW_TO_MAKE_ONE
        )
    return key


def signed_headers(
    scheme: str, secrets: Sequence[str], message_id: str, timestamp: str, body: bytes
) -> list[tuple[str, str]]:
    """The id, timestamp and signature headers of one delivery attempt, signed with every secret
    (the new one and the old during a rotation, so a consumer holding either accepts it)."""
    if scheme == "standard":
        signed = f"{message_id}.{timestamp}.".encode() + body
        signatures = " ".join(  # the specification's list: space-separated, tried in turn
            "v1," + base64.b64encode(_hmac(standard_key(s), signed)).decode() for s in secrets
        )
        return [
            ("webhook-id", message_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signatures),
        ]
    signed = timestamp.encode() + b"." + body
    return [
        ("x-gateway-id", message_id),
        ("x-gateway-timestamp", timestamp),
        # One header per secret, in the configured order: a consumer checks every value.
        *(("x-gateway-signature", "sha256=" + _hmac(s.encode(), signed).hex()) for s in secrets),
    ]


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()
