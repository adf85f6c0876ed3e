"""The cluster test helper against real redis-server processes (tests/support/cluster.py).

`support` is importable because pytest puts tests/ on sys.path (tests/ has no __init__.py, so
its conftest.py is imported with the "prepend" mode), as it does for `from faults import ...`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster

from tests.support.cluster import LocalCluster, LocalClusterError

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster") as started:
        yield started


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    nodes = [ClusterNode(host, port) for host, port in cluster.startup_nodes]
    # require_full_coverage=False: with the default, one unserved slot fails every command.
    redis_cluster = RedisCluster(startup_nodes=nodes, require_full_coverage=False)
    await redis_cluster.initialize()
    try:
        yield redis_cluster
    finally:
        await redis_cluster.aclose()


def key_per_primary(cluster: LocalCluster) -> dict[int, str]:
    """One key for each primary (by port), found through the nodes' own CLUSTER KEYSLOT."""
    primaries = {node.port for node in cluster.current_primaries()}
    keys: dict[int, str] = {}
    for i in range(100):
        keys.setdefault(cluster.primary_for_key(f"tenant:{i}").port, f"tenant:{i}")
        if keys.keys() == primaries:
            return keys
    raise AssertionError(f"no key for every primary: {keys}")


async def test_three_primaries_three_replicas_serve_keys_on_every_primary(
    cluster: LocalCluster, client: RedisCluster
) -> None:
    assert cluster.started_in < 15, f"start took {cluster.started_in:.1f}s"
    assert cluster.url == "redis+cluster://" + ",".join(
        f"127.0.0.1:{n.port}" for n in cluster.nodes
    )
    assert len(client.get_primaries()) == 3 and len(client.get_replicas()) == 3
    keys = key_per_primary(cluster)
    assert len(keys) == 3
    for port, key in keys.items():
        routed = client.get_node_from_key(key)
        assert routed is not None and routed.port == port  # the client routes as the nodes do
        await client.set(key, f"on {port}")
    for port, key in keys.items():
        assert await client.get(key) == f"on {port}".encode()
        with cluster.node(port).client() as direct:  # stored on that primary itself
            assert direct.get(key) == f"on {port}"


async def test_sigkill_of_a_primary_promotes_its_replica_and_the_key_survives(
    cluster: LocalCluster, client: RedisCluster
) -> None:
    key = "tenant:failover"
    primary = cluster.primary_for_key(key)
    [replica] = cluster.replicas_of(primary)
    target = client.get_node_from_key(key)
    # WAIT counts what the connection that wrote has replicated: send both on one connection
    # (a cluster pipeline sends each node's commands on one of its connections).
    pipe = client.pipeline(transaction=False)
    pipe.set(key, "kept")
    pipe.execute_command("WAIT", 1, 2000, target_nodes=target)
    assert await pipe.execute() == [True, 1]

    killed_at = time.monotonic()
    cluster.kill(primary)
    promoted = cluster.wait_promoted(primary)
    failover = time.monotonic() - killed_at
    assert promoted is replica
    assert failover < 15, f"failover took {failover:.1f}s"

    deadline = time.monotonic() + 10
    while True:  # the client learns the new topology from its first failed call
        try:
            assert await client.get(key) == b"kept"
            break
        except (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ClusterDownError):
            assert time.monotonic() < deadline, "key not readable after the failover"
            await asyncio.sleep(0.05)

    cluster.restart(primary)  # comes back as the replica of the node that replaced it
    assert cluster.replicas_of(promoted) == [primary]
    with primary.client() as direct:
        direct.execute_command("READONLY")
        assert direct.get(key) == "kept"


async def test_an_uncovered_slot_fails_only_its_own_keys(
    cluster: LocalCluster, client: RedisCluster
) -> None:
    keys = list(key_per_primary(cluster).values())
    for key in keys:
        await client.set(key, "v")
    lost, *others = keys
    slot = cluster.keyslot(lost)
    owner = cluster.uncover_slot(slot)
    for node in (n for n in cluster.nodes if n.alive):
        with (
            node.client() as direct,
            pytest.raises(exceptions.ClusterDownError, match="not served"),
        ):
            direct.get(lost)
    for key in others:
        assert await client.get(key) == b"v"
    cluster.cover_slot(slot, owner)
    with owner.client() as direct:
        assert direct.get(lost) == "v"


def test_stop_leaves_no_process_and_no_port_behind(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    with cluster:
        pids = cluster.pids()
        assert len(pids) == 6
        cluster.kill(cluster.nodes[0])  # stop copes with a node already dead
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for host, port in cluster.startup_nodes:
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect((host, port))


def test_a_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, primaries=2)  # redis-cli refuses fewer than 3 primaries
    with pytest.raises(LocalClusterError, match="--cluster create failed"):
        cluster.start()
    assert len(cluster.nodes) == 4 and cluster.pids() == []
    assert all(
        node.process is not None and node.process.returncode is not None for node in cluster.nodes
    )
