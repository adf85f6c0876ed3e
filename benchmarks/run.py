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
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import orjson
import redis

from gateway.embedded.server import EmbeddedRedis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from benchmarks import forwarding  # noqa: E402 - the modules beside this file
from benchmarks.detection import delayed_triggers, detector  # noqa: E402
from benchmarks.fanout import fanout_markdown, product_fanout  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    BATCH,
    RESULTS,
    free_port,
    fresh_redis,
    gateway_server,
    running,
    seed_event,
    write_config,
)
from benchmarks.memory import memory_per_contact  # noqa: E402
from benchmarks.report import markdown, targets  # noqa: E402
from benchmarks.rows import Bench, cluster_rows, single_node_rows  # noqa: E402


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
        forwarded = forwarding.throughput(bench.redis, work, store.url)
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
