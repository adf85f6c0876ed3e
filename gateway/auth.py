"""API keys: who is calling, for which tenant, and from which browser origin.

Keys are looked up by their SHA-256 digest, so the time a lookup takes says nothing about how much
of a guessed key was right, and the raw keys are never kept in a structure that gets logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

from gateway.errors import ApiError
from gateway.settings import Settings, Tenant

SERVER = "server"
SITE = "site"

PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"authorization, content-type, content-encoding"),
    (b"access-control-max-age", b"86400"),
]


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: Tenant
    kind: str  # SERVER or SITE
    key_id: str  # a digest prefix: names the key in rate limits, never the key itself

    @property
    def is_site(self) -> bool:
        return self.kind == SITE


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        message,
        "authorization",
        headers={"www-authenticate": 'Basic realm="gateway", Bearer'},
    )


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        for tenant in settings.tenants:
            for kind, keys in ((SERVER, tenant.server_keys), (SITE, tenant.site_keys)):
                for key in keys:
                    digest = _digest(key)
                    self._by_digest[digest] = Principal(tenant, kind, digest.hex()[:16])
        self.tenants = {t.id: t for t in settings.tenants}

    def lookup(self, key: str) -> Principal | None:
        return self._by_digest.get(_digest(key))

    def authenticate(self, authorization: str | None, query_string: bytes) -> Principal:
        """The caller, from `Authorization: Basic|Bearer` or a site key in `?key=`."""
        if authorization:
            scheme, _, credentials = authorization.strip().partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer":
                key = credentials.strip()
            elif scheme == "basic":
                try:
                    decoded = base64.b64decode(credentials.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise unauthorized("The Basic credentials are not valid base64.") from None
                key = decoded.partition(":")[2] or decoded
            else:
                raise unauthorized("Use Authorization: Basic or Bearer with an API key.")
            principal = self.lookup(key) if key else None
            if principal is None:
                raise unauthorized("Unknown API key.")
            return principal
        query = query_key(query_string)
        if query is None:
            raise unauthorized(
                "An API key is required (Authorization header, or ?key= for site keys)."
            )
        principal = self.lookup(query)
        if principal is None:
            raise unauthorized("Unknown API key.")
        if not principal.is_site:
            raise unauthorized("Server keys must be sent in the Authorization header, not the URL.")
        return principal

    def preflight_allows(self, origin: str, query_string: bytes) -> bool:
        key = query_key(query_string)
        if key is not None:
            principal = self.lookup(key)
            return principal is not None and principal.tenant.origin_allowed(origin)
        return any(t.origin_allowed(origin) for t in self.tenants.values() if t.site_keys)


# A site's snippet sends the same query string on every request: parse it once.
@lru_cache(maxsize=1024)
def query_key(query_string: bytes) -> str | None:
    if b"key=" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1")):
        if name == "key":
            return value
    return None


def check_origin(principal: Principal, origin: str | None) -> list[tuple[bytes, bytes]]:
    """CORS response headers for a site-key request; 403 for an origin not allowed."""
    if not principal.is_site or origin is None:
        return []
    if not principal.tenant.origin_allowed(origin):
        raise ApiError(
            403,
            "origin_not_allowed",
            f"The origin {origin!r} is not allowed for this site key.",
            "origin",
        )
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"origin")]


def require_server(principal: Principal) -> None:
    if principal.is_site:
        raise ApiError(403, "forbidden", "This endpoint needs a server key.", "authorization")
