"""`make bench`'s detector rows: 100,000 visits falling due in a burst, closed by a running
gateway, without and with a delay (docs/triggers.md, Trigger policies)."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.direct import DirectIngest, visitor_views
from benchmarks.harness import DELAYED, VISIT_TIMEOUT, VISITS
from benchmarks.rows import Bench
from gateway.redis.keys import TenantKeys


def store_visits(bench: Bench, tenant_id: str = "detector", count: int = VISITS) -> tuple[int, int]:
    """`count` visits, each due a trigger (direct.visitor_views), stored without HTTP so that they
    fall due as close together as possible: the hard case for the detector. Returns the times
    (ms) at which the first and the last call's visits fall due."""
    ingest = DirectIngest.open(bench.redis, bench.work / "gateway.toml", bench.work, tenant_id)
    first, last = ingest.store(visitor_views(count))
    return first + VISIT_TIMEOUT * 1000, last + VISIT_TIMEOUT * 1000


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
    emitted = bench.emitted(triggers, VISITS, "detector")
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
    emitted = bench.emitted(triggers, count, "delayed")
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
