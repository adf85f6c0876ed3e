"""REDIS_URL: which Redis the gateway talks to, checked before anything starts.

`redis://`, `rediss://` and `unix://` name one server (redis-py's own URL forms);
`redis+cluster://host:port[,host:port…]` and `rediss+cluster://…` name a Redis Cluster by some
of its nodes, from which the client learns the rest (docs/operations.md, Redis Cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, NodesManager, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import SlotNotCoveredError

from gateway.redaction import redacted

SINGLE_SCHEMES = frozenset({"redis", "rediss", "unix"})
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
Client = aioredis.Redis | RedisCluster


class BadRedisUrl(ValueError):
    """A REDIS_URL that names no Redis; the message shows the URL without its password."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"REDIS_URL {redacted(url)}: {problem}")


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    nodes: tuple[tuple[str, int], ...]
    tls: bool
    username: str | None
    password: str | None


def _port(url: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise BadRedisUrl(url, f"{text!r} is not a port (1-65535)")
    return int(text)


def parse_cluster(url: str) -> ClusterAddress | None:
    """The cluster a `redis+cluster://` URL names; None for a single-server URL. Raises
    BadRedisUrl for a URL of neither form."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise BadRedisUrl(
            url,
            "not a URL (redis://host:port, unix:///path or redis+cluster://host:port,host:port)",
        )
    scheme = scheme.lower()
    if scheme in SINGLE_SCHEMES:
        parts = urlsplit(url)
        if scheme != "unix" and not parts.hostname:
            raise BadRedisUrl(url, "no host")
        if scheme == "unix" and not parts.path:
            raise BadRedisUrl(url, "no socket path")
        try:
            parts.port  # noqa: B018 - urllib checks the range when it is read
        except ValueError:
            raise BadRedisUrl(url, "the port is not a number from 0 to 65535") from None
        return None
    if scheme not in CLUSTER_SCHEMES:
        known = ", ".join(sorted(SINGLE_SCHEMES | set(CLUSTER_SCHEMES)))
        raise BadRedisUrl(url, f"unknown scheme {scheme!r} (one of {known})")
    credentials, _, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0].split("?", 1)[0]
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    nodes = []
    for node in hosts.split(","):
        host, colon, port = node.strip().rpartition(":")
        if not colon or not host:
            raise BadRedisUrl(url, f"{node!r} is not host:port")
        nodes.append((host.strip("[]"), _port(url, port)))
    return ClusterAddress(
        tuple(nodes),
        CLUSTER_SCHEMES[scheme],
        unquote(username) or None,
        unquote(password) or None,
    )


class CoveredSlots(NodesManager):
    """redis-py's slot map, but an uncovered slot raises SlotNotCoveredError (a 503) every time:
    after the first ClusterDownError its slot is missing from the map, and the plain lookup
    raised a bare KeyError."""

    __slots__ = ()

    def get_node_from_slot(self, slot: int, *args: Any, **kwargs: Any) -> ClusterNode:
        try:
            return super().get_node_from_slot(slot, *args, **kwargs)
        except KeyError:
            raise SlotNotCoveredError(f"slot {slot} is not served by the cluster") from None


def connect(url: str, max_connections: int = 64) -> Client:
    """A client for REDIS_URL. No automatic retries: a write retried after a lost reply could be
    stored twice (a cluster pipeline even re-runs every command whose first answer was falsy).
    A failed call is answered 503 and the client retries, with its eventId, idempotently."""
    cluster = parse_cluster(url)
    if cluster is None:
        return aioredis.Redis.from_url(
            url,
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            health_check_interval=15,
            max_connections=max_connections,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
        # One uncovered slot must fail only the tenants on it, not every command.
        require_full_coverage=False,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        ssl=cluster.tls,
        username=cluster.username,
        password=cluster.password,
        decode_responses=False,
    )
    client.nodes_manager.__class__ = CoveredSlots
    return client
