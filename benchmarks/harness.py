"""The harness of `make bench` (run.py): its constants and tenants, the servers it starts and
stops, wrk, and the Redis and CPU figures each row reads."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.support.seeds import json_blocks, seed_text  # as the tests extract them

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

ORIGIN = "https://shop.example"
TENANTS = (
    "single",
    "api",
    "visitors",
    "batch",
    "workers",
    "suppressing",
    "memory",
    "detector",
    "delayed",
    "products",
)
BATCH = 100
SUPPRESSED = 10_000  # identifiers on tenant "suppressing"'s list (docs/privacy.md, Suppression)
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
