"""Redis CPU of the two busiest scripts, in-process, without HTTP: `count` new visitors' product
views through `ingest.lua` in 500-event calls (as the batcher merges them), then their visits
closed and their triggers emitted by `detect.lua` (as the detector calls it).

    python benchmarks/script_cost.py [count]      # 20,000 by default

Prints Redis CPU per event and per visit (`INFO cpu` before and after) and each command's calls
and µs (`INFO commandstats`). Run it on two trees in turn, a few times each, to A/B a change to
the Lua scripts: the figures move ±10 % between runs on a shared machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.direct import CALL, DirectIngest, visitor_views  # noqa: E402
from benchmarks.harness import command_costs, free_port, redis_cpu  # noqa: E402
from gateway.clock import now_ms  # noqa: E402
from gateway.embedded.server import EmbeddedRedis  # noqa: E402
from gateway.redis.keys import TenantKeys  # noqa: E402
from gateway.redis.scripts import Script  # noqa: E402

CONFIG = """
[[tenants]]
id = "cost"
server_keys = ["sk_cost_0000000000000001"]
visit_timeout_seconds = 1
"""


def measure(client: redis.Redis, what: str, count: int, run: Callable[[], None]) -> None:
    client.config_resetstat()
    before = redis_cpu(client)
    run()
    used = redis_cpu(client) - before
    print(f"{what}: Redis CPU {used / count * 1e6:.1f} µs each")
    for name, (calls, micros) in command_costs(client.info("commandstats"), count).items():
        print(f"  {name:<20} {calls:6.2f} calls  {micros:7.2f} µs")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    work = Path(tempfile.mkdtemp(prefix="script-cost-"))
    (work / "gateway.toml").write_text(CONFIG)
    store = EmbeddedRedis(work / "redis", port=free_port())
    store.start()
    client = redis.Redis.from_url(store.url)
    try:
        ingest = DirectIngest.open(client, work / "gateway.toml", work, "cost")
        limits = ingest.gateway.limits(ingest.tenant)
        detect = Script.load("detect")
        client.script_load(detect.text)
        views = list(visitor_views(count))

        def store_views() -> None:
            ingest.store(views)

        def close_visits() -> None:
            while client.evalsha(detect.sha, 0, *limits.args(now_ms(), [CALL]))[0] >= CALL:
                pass

        measure(client, "ingest, a new visitor's product view", count, store_views)
        time.sleep(ingest.tenant.visit_timeout_seconds + 0.2)
        measure(client, "detect, a visit closed and its trigger emitted", count, close_visits)
        emitted = client.xlen(TenantKeys.for_tenant("cost").triggers)
        if emitted != count:
            raise SystemExit(f"{emitted} of {count} triggers emitted")
    finally:
        client.close()
        store.stop()


if __name__ == "__main__":
    main()
