"""The rows `make bench` measures with wrk: each server on the one Redis in alternating rounds,
then the Redis Cluster rows; every row the median of its rounds."""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode

from benchmarks import forwarding
from benchmarks.harness import (
    BATCH,
    HERE,
    SUPPRESSED,
    Server,
    command_costs,
    cpu_seconds,
    free_port,
    fresh_redis,
    gateway_server,
    python_server,
    redis_cpu,
    running,
    uvicorn_args,
    write_config,
    wrk,
)
from gateway.redis.keys import TenantKeys, suppression_digest
from tests.support.cluster import LocalCluster


@dataclass
class Row:
    name: str
    what: str
    rps: float
    events_per_request: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_us: float = 0.0  # CPU time of the server per event: robust to a busy machine
    redis_cpu_us: float = 0.0
    answered_200: int = 0
    stored: int = 0
    errors: int = 0
    # Redis command -> (calls, µs) per event during the measured run (INFO commandstats; calls made
    # by scripts count too). Empty on the cluster rows, whose commands spread over the nodes.
    commands: dict[str, tuple[float, float]] = field(default_factory=dict)
    rounds: int = 1  # of which the figures above are the medians (stored, answered: the sums)
    rps_low: float = 0.0  # the lowest and highest req/s of the rounds
    rps_high: float = 0.0

    @property
    def eps(self) -> float:
        return self.rps * self.events_per_request


def median_row(rounds: list[Row]) -> Row:
    """One row from the rounds of a row: the median of each figure, the spread of req/s."""
    first = rounds[0]

    def median(figure: Callable[[Row], float]) -> float:
        return statistics.median(figure(r) for r in rounds)

    def command(name: str) -> tuple[float, float]:
        costs = [r.commands.get(name, (0.0, 0.0)) for r in rounds]
        return statistics.median(c for c, _ in costs), statistics.median(u for _, u in costs)

    names = dict.fromkeys(name for r in rounds for name in r.commands)
    return Row(
        first.name,
        first.what,
        median(lambda r: r.rps),
        first.events_per_request,
        median(lambda r: r.p50_ms),
        median(lambda r: r.p99_ms),
        max(r.max_ms for r in rounds),
        server_cpu_us=median(lambda r: r.server_cpu_us),
        redis_cpu_us=median(lambda r: r.redis_cpu_us),
        answered_200=sum(r.answered_200 for r in rounds),
        stored=sum(r.stored for r in rounds),
        errors=sum(r.errors for r in rounds),
        commands={name: command(name) for name in names},
        rounds=len(rounds),
        rps_low=min(r.rps for r in rounds),
        rps_high=max(r.rps for r in rounds),
    )


@dataclass
class ClusterProbe:
    """What a row on the local cluster reads: the stream through a cluster client, and the CPU of
    every node (replication costs the replicas CPU too)."""

    client: redis.RedisCluster
    nodes: list[redis.Redis]

    def cpu(self) -> float:
        return sum(redis_cpu(node) for node in self.nodes)


@dataclass
class Bench:
    args: argparse.Namespace
    redis: redis.Redis
    work: Path
    rows: dict[str, Row] = field(default_factory=dict)  # each the medians of its rounds so far
    rounds: dict[str, list[Row]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def emitted(self, stream: str, expected: int, what: str) -> int:
        """The triggers on `stream`; fewer than `expected` is a failure of the run."""
        count = int(self.redis.xlen(stream))
        if count < expected:
            self.failures.append(f"{what}: {count} of {expected} triggers emitted")
        return count

    def gateway_row(
        self,
        name: str,
        what: str,
        server: Server,
        tenant: str,
        body: Path,
        events_per_request: int = 1,
        path: str | None = None,
        cluster: ClusterProbe | None = None,
    ) -> Row:
        """A gateway row: the tenant's site key, and its event stream for the stored check."""
        path = path or ("/v1/event" if events_per_request == 1 else "/v1/events")
        return self.measure(
            name,
            what,
            server,
            f"{path}?key=pk_bench_{tenant}",
            body,
            events_per_request,
            TenantKeys.for_tenant(tenant).events,
            cluster,
        )

    def measure(
        self,
        name: str,
        what: str,
        server: Server,
        path: str,
        body: Path,
        events_per_request: int,
        stream: str | None,
        cluster: ClusterProbe | None = None,
    ) -> Row:
        assert server.process is not None
        url = f"http://127.0.0.1:{server.port}{path}"
        counter: redis.Redis | redis.RedisCluster = self.redis
        if cluster is None:
            fresh_redis(self.redis)
            used_cpu = functools.partial(redis_cpu, self.redis)
        else:
            # every primary emptied: the rounds would otherwise pile millions of events up
            cluster.client.flushall()
            counter, used_cpu = cluster.client, cluster.cpu
        before = counter.xlen(stream) if stream else 0
        warm = wrk(url, body, self.args.warmup, self.args)
        if cluster is None:
            self.redis.config_resetstat()
        cpu, redis_before = cpu_seconds(server.process.pid), used_cpu()
        run = wrk(url, body, self.args.duration, self.args)
        cpu = cpu_seconds(server.process.pid) - cpu
        redis_used = used_cpu() - redis_before
        errors = warm.non2xx + warm.socket_errors + run.non2xx + run.socket_errors
        answered = (warm.requests + run.requests - warm.non2xx - run.non2xx) * events_per_request
        row = Row(name, what, run.rps, events_per_request, run.p50_ms, run.p99_ms, run.max_ms)
        events = run.requests * events_per_request
        row.server_cpu_us = cpu / events * 1e6
        row.redis_cpu_us = redis_used / events * 1e6
        if cluster is None:
            row.commands = command_costs(self.redis.info("commandstats"), events)
        row.errors = errors
        if stream:
            # wrk counts only answers it read before its clock stopped; a request in flight then
            # may still be stored, so stored >= answered is the honest check.
            row.answered_200 = answered
            row.stored = counter.xlen(stream) - before
            if row.stored < answered:
                self.failures.append(f"{name}: {answered} events answered 200, {row.stored} stored")
        if errors:
            self.failures.append(f"{name}: {errors} non-2xx answers or socket errors")
        self.rounds.setdefault(name, []).append(row)
        self.rows[name] = median_row(self.rounds[name])
        print(
            f"  {name:<14} {row.rps:>9,.0f} req/s {row.eps:>10,.0f} events/s "
            f"p50 {row.p50_ms:6.2f} ms  p99 {row.p99_ms:6.2f} ms  CPU/event: server "
            f"{row.server_cpu_us:5.1f} us, redis {row.redis_cpu_us:5.1f} us  errors {errors}",
            flush=True,
        )
        return row


def single_node_rows(
    bench: Bench, redis_url: str, single_body: Path, visitor_body: Path, batch_body: Path
) -> None:
    """The rows on the one Redis, in `--rounds` alternating rounds: every server runs throughout
    (idle while another is measured), so each round measures every row once, in the same order."""
    work = bench.work
    port = free_port()
    bare = python_server("bare", work, port, {}, *uvicorn_args("bare:app", port))
    # Not one of the rows: the same work without uvicorn, to show where the floor is.
    port = free_port()
    floor = python_server("floor", work, port, {}, str(HERE / "bare_protocol.py"), str(port))
    port = free_port()
    naive = python_server(
        "naive", work, port, {"REDIS_URL": redis_url}, *uvicorn_args("naive:app", port)
    )
    gateway = gateway_server("gateway", work, redis_url, 1)
    gateway2 = gateway_server("gateway-2w", work, redis_url, 2)
    # A tenant with one destination (docs/destinations.md): bare_protocol.py stands in for
    # eSputnik (answering 200); the forwarder runs in the measured process.
    port = free_port()
    esputnik = python_server("esputnik", work, port, {}, str(HERE / "bare_protocol.py"), str(port))
    config = work / "destination.toml"
    forwarding.destination_config(work / "gateway.toml", config, f"http://127.0.0.1:{port}/api")
    forwarder = gateway_server("gateway-dest", work, redis_url, 1, config.name)
    suppress_identifiers(bench.redis, "suppressing", SUPPRESSED)
    with contextlib.ExitStack() as servers:
        for server in (bare, floor, naive, gateway, gateway2, esputnik, forwarder):
            servers.enter_context(running(server))
        for n in range(bench.args.rounds):
            print(f"round {n + 1} of {bench.args.rounds}", flush=True)
            bench.measure("bare", "(a) bare ASGI + orjson", bare, "/v1/event", single_body, 1, None)
            bench.measure(
                "floor", "bare, plain httptools protocol", floor, "/v1/event", single_body, 1, None
            )
            bench.measure(
                "naive", "(b) Starlette + XADD", naive, "/v1/event", single_body, 1, "naive:events"
            )
            bench.gateway_row("gateway", "(c) gateway, 1 worker", gateway, "single", single_body)
            bench.gateway_row(
                "destination",
                "gateway, 1 worker, one destination (a fake eSputnik answering 200)",
                forwarder,
                forwarding.TENANT,
                single_body,
            )
            bench.gateway_row(
                "suppressing",
                f"gateway, 1 worker, a tenant with {SUPPRESSED:,} suppressed identifiers",
                gateway,
                "suppressing",
                single_body,
            )
            bench.gateway_row(
                "api-path",
                "gateway, 1 worker, eSputnik's /api/v1/event/",
                gateway,
                "api",
                single_body,
                path="/api/v1/event/",
            )
            bench.gateway_row(
                "visitors",
                "gateway, 1 worker, a new visitor per request",
                gateway,
                "visitors",
                visitor_body,
            )
            bench.gateway_row(
                "gateway-2w", "gateway, --workers 2", gateway2, "workers", single_body
            )
            bench.gateway_row(
                "gateway-batch",
                f"gateway, 1 worker, batches of {BATCH}",
                gateway,
                "batch",
                batch_body,
                BATCH,
            )


def suppress_identifiers(client: redis.Redis, tenant: str, count: int) -> None:
    """Put `count` identifiers, none of them the bench's, on the tenant's suppression list, as
    `DELETE /v1/contacts/{identifier}?suppress=true` keeps them (their SHA-1 digests)."""
    digests = [suppression_digest("email", f"gone{n}@example.com") for n in range(count)]
    client.sadd(TenantKeys.for_tenant(tenant).suppressed, *digests)


def cluster_rows(bench: Bench, work: Path, single_body: Path, batch_body: Path) -> None:
    """The same load through the cluster client on a local Redis Cluster (3 primaries, 3 replicas,
    on this machine), with and without replicas_to_ack = 1 (docs/operations.md)."""
    write_config(work / "gateway-ack.toml", "replicas_to_ack = 1")
    with LocalCluster(work / "cluster") as cluster:
        nodes = [ClusterNode(host, port) for host, port in cluster.startup_nodes]
        client = redis.RedisCluster(startup_nodes=nodes)
        probe = ClusterProbe(client, [redis.Redis(host=n.host, port=n.port) for n in nodes])
        plan = [
            (name, what, gateway_server(name, work, cluster.url, 1, config))
            for name, config, what in (
                ("cluster", "gateway.toml", "gateway, 1 worker, Redis Cluster"),
                ("cluster-ack", "gateway-ack.toml", "… and replicas_to_ack = 1"),
            )
        ]
        with contextlib.ExitStack() as servers:
            for _, _, server in plan:
                servers.enter_context(running(server))
            for n in range(bench.args.rounds):
                print(f"cluster round {n + 1} of {bench.args.rounds}", flush=True)
                for name, what, server in plan:
                    bench.gateway_row(name, what, server, "single", single_body, cluster=probe)
                    bench.gateway_row(
                        f"{name}-batch",
                        f"{what}, batches of {BATCH}",
                        server,
                        "batch",
                        batch_body,
                        BATCH,
                        cluster=probe,
                    )
        client.close()
        for node in probe.nodes:
            node.close()
