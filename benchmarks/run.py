"""`make bench`: the gateway against a bare ASGI app and a naive handler, in one run, on one Redis.

Everything shares this machine (wrk, Redis and the servers compete for the same cores), so
absolute figures drift with the machine and its load; the ratios to the bare app measured in the
same run are what the targets are about. Every server this starts, it stops, Redis included.

    python benchmarks/run.py [--duration 10] [--warmup 2] [--connections 64] [--threads 2]
                             [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from redis.cluster import ClusterNode

from gateway.clock import iso, now_ms
from gateway.embedded.server import EmbeddedRedis
from gateway.model import events
from gateway.redis.batcher import ingest_items
from gateway.redis.keys import TenantKeys
from gateway.redis.scripts import Script
from gateway.settings import load_settings
from gateway.state import GatewayState

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT))
from benchmarks import forwarding  # noqa: E402 - beside this file
from tests.support.cluster import LocalCluster  # noqa: E402 - the tests' local cluster
from tests.support.seeds import json_blocks, seed_text  # noqa: E402 - as the tests extract them

ORIGIN = "https://shop.example"
TENANTS = (
    "single",
    "api",
    "visitors",
    "batch",
    "workers",
    "memory",
    "detector",
    "delayed",
    "products",
)
BATCH = 100
MEMORY_CONTACTS = 50
MEMORY_LIMIT = 3000
VISITS = 100_000
# Long enough that all the visits are stored before the first is due, so they fall due in a burst.
VISIT_TIMEOUT = 15
# Tenant "delayed" (docs/triggers.md, Trigger policies): its triggers wait DELAY s after their
# visits close, longer than closing them all takes, so they too fall due in a burst; a cooldown
# is checked on the way.
DELAYED = 100_000
DELAY = 20
COOLDOWN = 3600
DETECTED = ("detector", "delayed")  # the tenants with VISIT_TIMEOUT
WATCHERS = 100_000  # of the one product whose price drops (product_fanout)
WATCHED = "WS01-L-Green"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_event() -> dict[str, Any]:
    """Seed 004's productViewed example, exactly as printed (its product has trailing `]}`)."""
    (block,) = [b for b in json_blocks(seed_text("004"), '"productViewed"') if "product" in b]
    event: dict[str, Any] = json.loads(block)
    return event


def write_config(path: Path, *gateway: str) -> None:
    lines = ["[gateway]", "events_stream_maxlen = 5000000", *gateway, ""]
    for tenant in TENANTS:
        lines += [
            "[[tenants]]",
            f'id = "{tenant}"',
            f'server_keys = ["sk_bench_{tenant}"]',
            f'site_keys = ["pk_bench_{tenant}"]',
            f'allowed_origins = ["{ORIGIN}"]',
            *([f"visit_timeout_seconds = {VISIT_TIMEOUT}"] if tenant in DETECTED else []),
            "",
        ]
        if tenant == "delayed":
            policy = f"delay_seconds = {DELAY}\ncooldown_seconds = {COOLDOWN}\n"
            lines += ["[tenants.triggers]", policy]
    path.write_text("\n".join(lines))


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited at start-up:\n{self.log.read_text()[-2000:]}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen within {timeout:.0f}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its descendants (uvicorn's workers), from /proc."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1] / TICK
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def fresh_redis(client: redis.Redis, timeout: float = 120.0) -> None:
    """An empty Redis with no background AOF rewrite or RDB save (a forked child busy on a core).

    Every row starts alike: none competes with a rewrite of the rows before it (a million stored
    events take a minute to rewrite on this machine) or grows a keyspace they left behind.
    """

    def wait() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["rdb_bgsave_in_progress"]:
                return
            time.sleep(0.2)

    wait()
    # ASYNC, then wait for the freeing to end: a plain FLUSHALL of the detector's and fan-out's
    # millions of keys blocks Redis longer than the embedded server's liveness probe allows
    client.flushall(asynchronous=True)
    deadline = time.monotonic() + timeout
    while client.info("memory").get("lazyfree_pending_objects", 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    client.bgrewriteaof()  # compacts the AOF to the now empty dataset: quick
    time.sleep(0.2)
    wait()


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def command_costs(stats: dict[str, Any], events: int) -> dict[str, tuple[float, float]]:
    """(calls, µs) per event of each Redis command from `INFO commandstats`, costliest first;
    the bench's own CONFIG and INFO left out."""
    costs = {
        name.removeprefix("cmdstat_"): (stat["calls"] / events, stat["usec"] / events)
        for name, stat in stats.items()
        if name not in ("cmdstat_config", "cmdstat_info")
    }
    return dict(sorted(costs.items(), key=lambda item: -item[1][1]))


def wrk(url: str, body: Path, seconds: int, args: argparse.Namespace) -> Run:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "post.lua"),
        url,
    ]
    done = subprocess.run(
        command,
        env={**os.environ, "BENCH_BODY": str(body)},
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"^BENCH (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(match.group(1))
    return Run(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non2xx=raw["non2xx"],
        socket_errors=raw["socket_errors"],
    )


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


def python_server(name: str, work: Path, port: int, env: dict[str, str], *args: str) -> Server:
    return Server(name, [sys.executable, *args], port, env, work / f"{name}.log")


def uvicorn_args(app: str, port: int) -> list[str]:
    return [
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        str(HERE),
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def gateway_server(
    name: str, work: Path, redis_url: str, workers: int, config: str = "gateway.toml"
) -> Server:
    port = free_port()
    return python_server(
        name,
        work,
        port,
        {"REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(work / "gateway-data")},
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--config",
        str(work / config),
        "--log-level",
        "warning",
    )


def memory_per_contact(bench: Bench, base: str) -> dict[str, Any]:
    """Bytes of Redis per active contact: a cart of 5 products and 20 product views."""
    tenant = "memory"
    keys = TenantKeys.for_tenant(tenant)
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(MEMORY_CONTACTS):
            email = f"shopper{n}@example.com"
            events: list[dict[str, Any]] = []
            for v in range(20):
                product = {"productId": f"SKU-{n}-{v}", "price": 45.5, "isInStock": 1}
                events.append(
                    {
                        "eventTypeKey": "productViewed",
                        "keyValue": email,
                        "params": [
                            {"name": "email", "value": email},
                            {"name": "phone", "value": f"+38050{n:07d}"},
                            {"name": "product", "value": json.dumps(product)},
                            {"name": "currencyCode", "value": "USD"},
                        ],
                    }
                )
            cart = [{"productId": f"SKU-{n}-{v}", "quantity": 1, "price": 45.5} for v in range(5)]
            events.append(
                {
                    "eventTypeKey": "cartUpdated",
                    "keyValue": email,
                    "params": [
                        {"name": "email", "value": email},
                        {"name": "products", "value": json.dumps(cart)},
                        {"name": "currencyCode", "value": "USD"},
                        {"name": "recycleStateId", "value": f"rs-{n}"},
                    ],
                }
            )
            answer = client.post(
                f"/v1/events?key=pk_bench_{tenant}",
                content=orjson.dumps(events),
                headers={"content-type": "text/plain", "origin": ORIGIN},
            )
            if answer.status_code != 200 or answer.json()["accepted"] != len(events):
                raise RuntimeError(f"memory events refused: {answer.status_code} {answer.text}")
    contact = identifiers = cart_state = 0
    for n in range(MEMORY_CONTACTS):
        cid = bench.redis.get(keys.identifier("email", f"shopper{n}@example.com"))
        assert cid is not None, "the memory contact was not stored"
        contact_keys = list(bench.redis.scan_iter(match=keys.contact(cid.decode()) + "*"))
        ident_keys = [
            keys.identifier(*ident.decode().split(":", 1))
            for ident in bench.redis.hkeys(keys.contact(cid.decode(), ":ids"))
        ]
        contact += sum(bench.redis.memory_usage(k, samples=0) or 0 for k in contact_keys)
        identifiers += sum(bench.redis.memory_usage(k, samples=0) or 0 for k in ident_keys)
        cart_state += bench.redis.memory_usage(keys.cart(f"rs-{n}"), samples=0) or 0
    result = {
        "contacts": MEMORY_CONTACTS,
        "contact_keys_bytes": contact / MEMORY_CONTACTS,
        "identifier_keys_bytes": identifiers / MEMORY_CONTACTS,
        "cart_state_bytes": cart_state / MEMORY_CONTACTS,
    }
    result["total_bytes"] = (contact + identifiers + cart_state) / MEMORY_CONTACTS
    return result


def store_visits(bench: Bench, tenant_id: str = "detector", count: int = VISITS) -> tuple[int, int]:
    """One productViewed for each of `count` contacts with an email: each visit is due a trigger.

    Stored through the gateway's own validation and ingest script, called directly in 500-event
    calls as the batcher does, not over HTTP: HTTP ingest is measured above, and here the visits
    should fall due as close together as possible (over ~2 s rather than the ~6-10 s HTTP takes
    on this machine), which is the hard case for the detector. Events are validated first, then
    stored; returns the receive times (ms) of the first and the last call.
    """
    settings = load_settings(
        str(bench.work / "gateway.toml"),
        env={"REDIS_URL": "redis://unused", "GATEWAY_DATA_DIR": str(bench.work / "gateway-data")},
    )
    gateway = GatewayState(settings)
    (tenant,) = [t for t in settings.tenants if t.id == tenant_id]
    script = Script.load("ingest")
    bench.redis.script_load(script.text)
    product = json.dumps({"productId": "WS01-L-Green", "price": 45.5})
    received = iso(now_ms())
    prepared = [
        events.prepare(
            {
                "eventTypeKey": "productViewed",
                "keyValue": f"visitor{n}@example.com",
                "params": [{"name": "product", "value": product}],
            },
            True,
            received,
        )
        for n in range(count)
    ]
    first = now_ms()
    for start in range(0, count, 500):
        now = now_ms()
        chunk = [(p.envelope, p.raw, p.forward) for p in prepared[start : start + 500]]
        bench.redis.evalsha(script.sha, 0, *gateway.limits(tenant).args(now, ingest_items(chunk)))
    return first + VISIT_TIMEOUT * 1000, now + VISIT_TIMEOUT * 1000


def detector(bench: Bench) -> dict[str, Any]:
    """Time for the gateway's detector to close VISITS visits falling due in a burst, and its lag.

    Lag is sampled every 50 ms as the age of the most overdue visit still open.
    """
    keys = TenantKeys.for_tenant("detector")
    visits, triggers = keys.visits, keys.triggers
    stored = time.time()
    first, last = store_visits(bench)
    stored = time.time() - stored
    lag = 0.0
    deadline = last / 1000 + 60
    while time.time() < deadline:
        oldest = bench.redis.zrange(visits, 0, 0, withscores=True)
        now = time.time()
        if oldest:
            lag = max(lag, now - oldest[0][1] / 1000)
        elif bench.redis.xlen(triggers) >= VISITS:
            break
        time.sleep(0.05)
    done = time.time()
    emitted = bench.redis.xlen(triggers)
    if emitted < VISITS:
        bench.failures.append(f"detector: {emitted} of {VISITS} triggers emitted")
    result = {
        "visits": VISITS,
        "triggers": emitted,
        "store_seconds": stored,
        "due_over_seconds": (last - first) / 1000,
        "seconds": done - first / 1000,
        "after_last_due_seconds": done - last / 1000,
        "max_lag_seconds": lag,
    }
    print(
        f"  detector       {VISITS:,} visits due over {result['due_over_seconds']:.1f} s closed "
        f"{result['seconds']:.2f} s after the first was due, max lag {lag:.2f} s",
        flush=True,
    )
    return result


def delayed_triggers(bench: Bench, count: int = DELAYED) -> dict[str, Any]:
    """Time for the gateway's detector to re-check and emit `count` delayed triggers falling due
    in a burst (tenant "delayed": delay_seconds = DELAY and a cooldown), and its lag; also how long
    closing their visits took with those policies (the detector's figure above, with a delay).

    The visits are stored as store_visits does; the detector closes them and holds their triggers
    in the tenant's due-time set, then emits each once due. On a machine too slow to close them
    all within DELAY, the first triggers fall due while later visits are still being closed: the
    figures still hold, but the lag then includes that overlap. Lag is sampled every 50 ms as the
    age of the most overdue trigger still waiting.
    """
    keys = TenantKeys.for_tenant("delayed")
    pending, triggers, visits = keys.pending, keys.triggers, keys.visits
    visits_first, _ = store_visits(bench, "delayed", count)
    deadline = visits_first / 1000 + 300
    first = last = 0.0  # the due times of the first and the last trigger held
    held_at = lag = 0.0
    while time.time() < deadline:
        now = time.time()
        oldest = bench.redis.zrange(pending, 0, 0, withscores=True)
        newest = bench.redis.zrange(pending, -1, -1, withscores=True)
        if oldest:
            first = first or oldest[0][1] / 1000
            last = max(last, newest[0][1] / 1000)
            lag = max(lag, now - oldest[0][1] / 1000)
        if not held_at and not bench.redis.zcard(visits):
            held_at = now
        if held_at and not oldest and bench.redis.xlen(triggers) >= count:
            break
        time.sleep(0.05)
    done = time.time()
    emitted = bench.redis.xlen(triggers)
    if emitted < count:
        bench.failures.append(f"delayed: {emitted} of {count} delayed triggers emitted")
    result = {
        "triggers": count,
        "emitted": emitted,
        "closed_seconds": (held_at or done) - visits_first / 1000,
        "due_over_seconds": last - first,
        "seconds": done - first if first else float("nan"),
        "max_lag_seconds": lag,
        "overlapped": bool(first and held_at > first),
    }
    print(
        f"  delayed        {count:,} visits closed and held {result['closed_seconds']:.2f} s after "
        f"the first was due; their triggers, due over {result['due_over_seconds']:.1f} s, "
        f"re-checked and emitted {result['seconds']:.2f} s after the first was due, "
        f"max lag {lag:.2f} s"
        + (" (closing overlapped the first due)" if result["overlapped"] else ""),
        flush=True,
    )
    return result


def store_watchers(bench: Bench, watchers: int) -> float:
    """`watchers` contacts with an email view WATCHED at 45.5 USD, each a watcher of it; stored
    through the ingest script called directly in 500-event calls, as store_visits does (HTTP
    ingest is measured above). Returns the seconds it took."""
    settings = load_settings(
        str(bench.work / "gateway.toml"),
        env={"REDIS_URL": "redis://unused", "GATEWAY_DATA_DIR": str(bench.work / "gateway-data")},
    )
    gateway = GatewayState(settings)
    (tenant,) = [t for t in settings.tenants if t.id == "products"]
    script = Script.load("ingest")
    bench.redis.script_load(script.text)
    product = json.dumps({"productId": WATCHED, "price": 45.5, "isInStock": 1})
    received = iso(now_ms())
    began = time.time()
    for start in range(0, watchers, 500):
        chunk = []
        for n in range(start, min(watchers, start + 500)):
            view = {
                "eventTypeKey": "productViewed",
                "keyValue": f"watcher{n}@example.com",
                "params": [
                    {"name": "product", "value": product},
                    {"name": "currencyCode", "value": "USD"},
                ],
            }
            prepared = events.prepare(view, True, received)
            chunk.append((prepared.envelope, prepared.raw, prepared.forward))
        limits = gateway.limits(tenant).args(now_ms(), ingest_items(chunk))
        bench.redis.evalsha(script.sha, 0, *limits)
    return time.time() - began


@dataclass
class Probes:
    """While a fan-out runs (or not): POST /v1/products answer times, one request at a time,
    and ingest throughput, batches of 100 anonymous page views, one request at a time."""

    base: str
    tenant: str = "products"
    stop: threading.Event = field(default_factory=threading.Event)
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.post_products),
            threading.Thread(target=self.ingest),
        ]
        began = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.seconds = time.time() - began

    def post_products(self) -> None:
        body = orjson.dumps(
            {"products": [{"productId": "PROBE", "price": 10, "currencyCode": "USD"}]}
        )
        headers = {
            "authorization": f"Bearer sk_bench_{self.tenant}",
            "content-type": "application/json",
        }
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                began = time.perf_counter()
                answer = client.post("/v1/products", content=body, headers=headers)
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /v1/products: {answer.status_code} {answer.text}")

    def ingest(self) -> None:
        page = {"eventTypeKey": "pageViewed", "params": {"page": '{"location":"https://s.x/"}'}}
        headers = {
            "authorization": f"Bearer sk_bench_{self.tenant}",
            "content-type": "application/json",
        }
        with httpx.Client(base_url=self.base, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                batch = [{**page, "visitorId": f"probe-{n + i}"} for i in range(100)]
                n += 100
                answer = client.post("/v1/events", content=orjson.dumps(batch), headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /v1/events: {answer.status_code} {answer.text}")
                self.events += answer.json()["accepted"]

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


def product_fanout(
    bench: Bench, base: str, watchers: int = WATCHERS, idle_seconds: float = 5.0
) -> dict[str, Any]:
    """A price drop for a product with `watchers` watchers, through a running gateway at `base`:
    Redis bytes per watch, the time until every watcher's priceDrop is on the stream, and the
    POST /v1/products p99 and ingest throughput while the fan-out runs beside their idle figures
    (docs/triggers.md, Price drops and back in stock)."""
    keys = TenantKeys.for_tenant("products")
    store_seconds = store_watchers(bench, watchers)
    index = keys.product(WATCHED, ":w")
    bytes_per_watch = (bench.redis.memory_usage(index, samples=0) or 0) / watchers
    idle = Probes(base)
    timer = threading.Timer(idle_seconds, idle.stop.set)
    timer.start()
    idle.run()
    busy = Probes(base)
    prober = threading.Thread(target=busy.run)
    headers = {"authorization": "Bearer sk_bench_products"}
    drop = {"products": [{"productId": WATCHED, "price": 40, "currencyCode": "USD"}]}
    began = time.time()
    answer = httpx.post(f"{base}/v1/products", json=drop, headers=headers, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"the price drop was refused: {answer.status_code} {answer.text}")
    prober.start()
    deadline = began + 300
    emitted = 0
    while time.time() < deadline:
        emitted = bench.redis.xlen(keys.triggers)
        if emitted >= watchers and not bench.redis.zcard(keys.fanouts):
            break
        time.sleep(0.05)
    emit_seconds = time.time() - began
    busy.stop.set()
    prober.join()
    if emitted < watchers:
        bench.failures.append(f"product fan-out: {emitted} of {watchers} triggers emitted")
    result = {
        "watchers": watchers,
        "store_seconds": store_seconds,
        "bytes_per_watch": bytes_per_watch,
        "triggers": emitted,
        "emit_seconds": emit_seconds,
        "post_p99_idle_ms": idle.p99_ms(),
        "post_p99_fanout_ms": busy.p99_ms(),
        "posts_idle": len(idle.latencies_ms),
        "posts_fanout": len(busy.latencies_ms),
        "ingest_eps_idle": idle.events / idle.seconds,
        "ingest_eps_fanout": busy.events / busy.seconds,
    }
    print(
        f"  product fan-out {watchers:,} watchers: all told in {emit_seconds:.2f} s, POST "
        f"/v1/products p99 {result['post_p99_fanout_ms']:.1f} ms (idle "
        f"{result['post_p99_idle_ms']:.1f}), {bytes_per_watch:.0f} B per watch",
        flush=True,
    )
    return result


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


def forwarder_throughput(bench: Bench, redis_url: str) -> dict[str, Any]:
    """The forwarder's own events/s: FORWARDED events queued for the destination while no
    gateway runs, then drained by one 1-worker gateway into bare_protocol.py."""
    work, config = bench.work, bench.work / "destination.toml"
    port = free_port()
    esputnik = python_server("esputnik", work, port, {}, str(HERE / "bare_protocol.py"), str(port))
    forwarding.destination_config(work / "gateway.toml", config, f"http://127.0.0.1:{port}/api")
    fresh_redis(bench.redis)
    queue = forwarding.queue(bench.redis, config, work, forwarding.FORWARDED)
    with (
        running(esputnik),
        running(gateway_server("gateway-forward", work, redis_url, 1, config.name)),
    ):
        forwarded = forwarding.drain(bench.redis, queue)
    print(f"  forwarder      {forwarded['eps']:>9,.0f} events/s to a local fake", flush=True)
    return forwarded


def fanout_markdown(fanout: dict[str, Any]) -> str:
    return (
        f"Product fan-out (1 worker): a price drop for a product with {fanout['watchers']:,} "
        f"watchers: {fanout['triggers']:,} priceDrop triggers emitted in "
        f"**{fanout['emit_seconds']:.2f} s** (target 60 s); POST /v1/products p99 "
        f"**{fanout['post_p99_fanout_ms']:.1f} ms** during it (target 50 ms; idle "
        f"{fanout['post_p99_idle_ms']:.1f} ms); ingest, one client sending batches of 100, "
        f"{fanout['ingest_eps_fanout']:,.0f} events/s during it, {fanout['ingest_eps_idle']:,.0f} "
        f"idle; Redis memory per watch **{fanout['bytes_per_watch']:.0f} B** (`MEMORY USAGE` of "
        "the watch index; target 150 B).\n"
    )


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


def targets(
    bench: Bench,
    memory: dict[str, Any],
    visits: dict[str, Any],
    delayed: dict[str, Any],
    forwarded: dict[str, Any],
) -> list[dict[str, Any]]:
    """Issue 24's targets (ratios to rows of the same run), then the earlier ones still held."""
    r = bench.rows
    single, bare, naive = r["gateway"].rps, r["bare"].rps, r["naive"].rps
    return [
        {
            "target": "single events ≥ 0.60 × bare ASGI",
            "value": f"{single / bare:.2f} ×",
            "met": single >= 0.60 * bare,
        },
        {
            "target": "a new visitor per request ≥ 0.45 × bare ASGI",
            "value": f"{r['visitors'].rps / bare:.2f} ×",
            "met": r["visitors"].rps >= 0.45 * bare,
        },
        {
            "target": "batched events/s ≥ 2.5 × bare ASGI req/s",
            "value": f"{r['gateway-batch'].eps / bare:.2f} ×",
            "met": r["gateway-batch"].eps >= 2.5 * bare,
        },
        {
            "target": "single events p99 ≤ 1.5 × bare p99 at 64 connections",
            "value": f"{r['gateway'].p99_ms / r['bare'].p99_ms:.2f} ×",
            "met": r["gateway"].p99_ms <= 1.5 * r["bare"].p99_ms,
        },
        {
            "target": "single events with one destination ≥ 0.9 × without",
            "value": f"{r['destination'].rps / single:.2f} ×",
            "met": r["destination"].rps >= 0.9 * single,
        },
        {
            "target": "forwarder, one process, to a local fake (information)",
            "value": f"{forwarded['eps']:,.0f} events/s",
            "met": True,
        },
        {
            "target": "--workers 2 ≥ 1.0 × one worker (information)",
            "value": f"{r['gateway-2w'].rps / single:.2f} ×",
            "met": r["gateway-2w"].rps >= single,
        },
        {
            "target": "single events ÷ naive handler (information)",
            "value": f"{single / naive:.2f} ×",
            "met": True,
        },
        {
            "target": "/api/v1/event/ within noise (≥ 0.95 ×) of /v1/event",
            "value": f"{r['api-path'].rps / single:.2f} ×",
            "met": r["api-path"].rps >= 0.95 * single,
        },
        {
            "target": "single events through the cluster client ≥ 0.8 × one node",
            "value": f"{r['cluster'].rps / single:.2f} ×",
            "met": r["cluster"].rps >= 0.8 * single,
        },
        {
            "target": "batches through the cluster client ≥ 0.8 × one node",
            "value": f"{r['cluster-batch'].eps / r['gateway-batch'].eps:.2f} ×",
            "met": r["cluster-batch"].eps >= 0.8 * r["gateway-batch"].eps,
        },
        {
            "target": "replicas_to_ack = 1 (information): single, batches ÷ without",
            "value": f"{r['cluster-ack'].rps / r['cluster'].rps:.2f} ×, "
            f"{r['cluster-ack-batch'].eps / r['cluster-batch'].eps:.2f} ×",
            "met": True,
        },
        {
            "target": f"Redis memory per active contact ≤ {MEMORY_LIMIT:,} B",
            "value": f"{memory['total_bytes']:,.0f} B",
            "met": memory["total_bytes"] <= MEMORY_LIMIT,
        },
        {
            "target": f"detector closes {VISITS:,} visits in ≤ 10 s",
            "value": f"{visits['seconds']:.2f} s",
            "met": visits["seconds"] <= 10 and visits["triggers"] >= VISITS,
        },
        {
            "target": "detector lag never above 2 s",
            "value": f"{visits['max_lag_seconds']:.2f} s",
            "met": visits["max_lag_seconds"] <= 2,
        },
        {
            "target": f"with a delay and a cooldown: {DELAYED:,} visits closed in ≤ 10 s",
            "value": f"{delayed['closed_seconds']:.2f} s",
            "met": delayed["closed_seconds"] <= 10,
        },
        {
            "target": f"{DELAYED:,} due delayed triggers re-checked and emitted in ≤ 10 s",
            "value": f"{delayed['seconds']:.2f} s",
            "met": delayed["seconds"] <= 10 and delayed["emitted"] >= DELAYED,
        },
        {
            "target": "delayed triggers' lag never above 2 s",
            "value": f"{delayed['max_lag_seconds']:.2f} s",
            "met": delayed["max_lag_seconds"] <= 2,
        },
    ]


def command_table(bench: Bench) -> list[str]:
    """Calls and µs per event of each Redis command, per gateway row on the single Redis (the
    idle gateways' background work is in every row's figures, far below one call per 1,000
    events)."""
    rows = [
        row
        for name, row in bench.rows.items()
        if name not in ("bare", "floor", "naive") and row.commands
    ]
    if not rows:
        return []
    names = list(dict.fromkeys(name for row in rows for name in row.commands))
    lines = [
        "Redis commands per event (`INFO commandstats` over the measured run; `evalsha` is the "
        "whole ingest.lua call, the other commands are mostly made inside it): calls / µs.",
        "",
        "| command | " + " | ".join(row.what for row in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for name in names:
        cells = [
            f"{calls:.2f} / {usec:.2f}" if (calls, usec) != (0, 0) else "-"
            for calls, usec in (row.commands.get(name, (0.0, 0.0)) for row in rows)
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def markdown(
    bench: Bench,
    memory: dict[str, Any],
    visits: dict[str, Any],
    delayed: dict[str, Any],
    checks: list[dict[str, Any]],
    meta: dict[str, Any],
    forwarded: dict[str, Any],
) -> str:
    bare = bench.rows["bare"]
    lines = [
        f"Run {meta['date']} on {meta['cpus']} CPUs ({meta['cpu']}), load average before the run "
        f"{meta['load_before']}; wrk {bench.args.threads} threads, {bench.args.connections} "
        f"connections, {bench.args.duration:g} s per row after {bench.args.warmup:g} s warm-up; "
        f"each figure the median of {bench.args.rounds} alternating rounds (req/s: lowest–highest "
        "in brackets).",
        "",
        "| server | req/s | events/s | p50 ms | p99 ms | req/s × bare | p50 × bare | p99 × bare "
        "| server CPU µs/event | Redis CPU µs/event | stored / answered 200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench.rows.values():
        stored = f"{row.stored:,} / {row.answered_200:,}" if row.answered_200 else "-"
        rps = f"{row.rps:,.0f}"
        if row.rounds > 1:
            rps += f" ({row.rps_low:,.0f}–{row.rps_high:,.0f})"
        lines.append(
            f"| {row.what} | {rps} | {row.eps:,.0f} | {row.p50_ms:.2f} | "
            f"{row.p99_ms:.2f} | {row.rps / bare.rps:.2f} | {row.p50_ms / bare.p50_ms:.2f} | "
            f"{row.p99_ms / bare.p99_ms:.2f} | {row.server_cpu_us:.1f} | {row.redis_cpu_us:.1f} | "
            f"{stored} |"
        )
    lines += ["", *command_table(bench)]
    lines += [
        "",
        f"Redis memory per active contact (cart of 5 products, 20 product views; mean of "
        f"{memory['contacts']} contacts, `MEMORY USAGE`): **{memory['total_bytes']:,.0f} B** = "
        f"contact keys {memory['contact_keys_bytes']:,.0f} B + identifier keys "
        f"{memory['identifier_keys_bytes']:,.0f} B + cart state "
        f"{memory['cart_state_bytes']:,.0f} B "
        "(the raw event stream is capped per tenant, not per contact, and is not counted).",
        "",
        f"Detector (1 worker): {visits['visits']:,} visits with an email, stored (ingest script "
        f"called directly) in "
        f"{visits['store_seconds']:.1f} s, fell due over {visits['due_over_seconds']:.1f} s; all "
        f"closed and {visits['triggers']:,} triggers emitted **{visits['seconds']:.2f} s** after "
        f"the first was due ({visits['after_last_due_seconds']:.2f} s after the last); "
        f"max lag **{visits['max_lag_seconds']:.2f} s**.",
        "",
        f"Delayed triggers (delay_seconds = {DELAY}, cooldown_seconds = {COOLDOWN}): "
        f"{delayed['triggers']:,} visits stored the same way, closed and held "
        f"**{delayed['closed_seconds']:.2f} s** after the first was due; their triggers fell due "
        f"over {delayed['due_over_seconds']:.1f} s and {delayed['emitted']:,} were re-checked and "
        f"emitted **{delayed['seconds']:.2f} s** after the first was due; max lag "
        f"**{delayed['max_lag_seconds']:.2f} s**.",
        "",
        f"Forwarder (1 worker): {forwarded['events']:,} events queued for one destination, "
        f"forwarded one `POST v1/event` each to a local fake answering 200 in "
        f"{forwarded['seconds']:.1f} s: **{forwarded['eps']:,.0f} events/s**.",
        "",
        "| target | this run | met |",
        "|---|---:|:-:|",
    ]
    for check in checks:
        lines.append(
            f"| {check['target']} | {check['value']} | {'yes' if check['met'] else 'no'} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured row")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per row")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; each row is their median"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs it: apt-get install wrk)", file=sys.stderr)
        return 2
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                meta["cpu"] = line.split(":", 1)[1].strip()
                break
        meta["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    store = EmbeddedRedis(work / "redis", port=free_port())
    store.start()
    client = redis.Redis.from_url(store.url)
    try:
        write_config(work / "gateway.toml")
        event = seed_event()
        single_body, batch_body = work / "single.json", work / "batch.json"
        single_body.write_bytes(orjson.dumps(event))
        # The same event naming a new contact per request (post.lua fills in @@ID@@): the merged
        # script calls then hold no run of one contact's events to write once (ingest.lua).
        visitor_body = work / "visitor.json"
        visitor_body.write_bytes(
            orjson.dumps(event)
            .replace(b"example@email.com", b"v@@ID@@@example.com")
            .replace(b"411786452", b"3805@@ID@@")
        )
        batch_body.write_bytes(orjson.dumps([event] * BATCH))
        bench = Bench(args, client, work)
        print(f"benchmark: one Redis on port {store.port}, wrk -c{args.connections}", flush=True)

        single_node_rows(bench, store.url, single_body, visitor_body, batch_body)
        cluster_rows(bench, work, single_body, batch_body)
        gateway = gateway_server("gateway-memory", work, store.url, 1)
        with running(gateway):
            fresh_redis(bench.redis)
            memory = memory_per_contact(bench, f"http://127.0.0.1:{gateway.port}")
            fresh_redis(bench.redis)
            visits = detector(bench)
            fresh_redis(bench.redis)
            delayed = delayed_triggers(bench)
            fresh_redis(bench.redis)
            fanout = product_fanout(bench, f"http://127.0.0.1:{gateway.port}")
        forwarded = forwarder_throughput(bench, store.url)
        checks = targets(bench, memory, visits, delayed, forwarded)
        text = markdown(bench, memory, visits, delayed, checks, meta, forwarded)
        text += "\n" + fanout_markdown(fanout)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.md").write_text(text)
        (RESULTS / "latest.json").write_bytes(
            orjson.dumps(
                {
                    "meta": meta,
                    "args": vars(args),
                    "rows": [{**asdict(r), "eps": r.eps} for r in bench.rows.values()],
                    "memory_per_contact": memory,
                    "detector": visits,
                    "delayed_triggers": delayed,
                    "product_fanout": fanout,
                    "forwarder": forwarded,
                    "targets": checks,
                    "failures": bench.failures,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
        print("\n" + text)
        for failure in bench.failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1 if bench.failures else 0
    finally:
        client.close()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
