"""URLs as the gateway shows them (logs, API answers): without the secrets they may carry.

A Redis URL may hold a password (`redis://:pw@host`, `?password=`), a webhook URL a user and
password or a token in its query (`https://user:pw@crm.example/hook?token=...`). One helper
serves both, so the two never disagree on what is a secret.
"""

from __future__ import annotations

HIDDEN = "***"


def redacted(url: str) -> str:
    """`url` with its userinfo and every query value (and any fragment) replaced by `***`:
    `https://user:pw@host/hook?token=abc` -> `https://***@host/hook?token=***`. Scheme, host,
    port, path and the query's names stay, so the line still says where the URL points.

    Every query value goes, not only those named like a secret: a receiver may take its token
    under any name. Applied twice it changes nothing more, so stored entries redacted already
    can be passed through again."""
    rest, hash_mark, fragment = url.partition("#")
    rest, query_mark, query = rest.partition("?")
    scheme, sep, rest = rest.partition("://")
    # The userinfo is in the authority only (before the first `/`): an `@` further on belongs to
    # the path, which must not be mistaken for it (and the host lost).
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = HIDDEN + "@" + authority.rpartition("@")[2]
    query = "&".join(_hide_value(pair) for pair in query.split("&"))
    return (
        scheme
        + sep
        + authority
        + slash
        + path
        + query_mark
        + query
        + hash_mark
        + (HIDDEN if fragment else "")
    )


def _hide_value(pair: str) -> str:
    name, equals, value = pair.partition("=")
    if equals:
        return f"{name}={HIDDEN}" if value else pair
    return HIDDEN if name else pair  # a bare `?SECRET` is a value without a name
