"""The CPU a metric update costs, in-process: the shared-memory slots `/metrics` sums over the
workers (gateway/shared_values.py), a plain dict (one process's figures only, what they
replaced), and prometheus-client's multiprocess mode (the other way to sum workers).

    python benchmarks/metrics_cost.py [rounds]      # 15 by default

Prints the best round's ns per counter increment and per latency observation of each
(docs/operations.md, Metrics). Best of several rounds: a shared machine adds only delays.
"""

from __future__ import annotations

import os
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

# prometheus-client picks its value class when first imported: multiprocess mode needs this set.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-cost-")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import prometheus_client  # noqa: E402

from gateway.metrics import Counter, Histogram  # noqa: E402
from gateway.shared_values import SharedValues  # noqa: E402

CALLS = 200_000


def best_ns(update: Callable[[], object], rounds: int) -> float:
    return min(timeit.repeat(update, number=CALLS, repeat=rounds)) / CALLS * 1e9


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    shared = SharedValues(Path(tempfile.mkdtemp(prefix="metrics-cost-")))
    counter = Counter("events", "", ("tenant", "outcome"))
    latency = Histogram("latency", "", ("route",))
    counter.bind(shared)
    latency.bind(shared)
    counts: dict[tuple[str, str], float] = {}

    def dict_inc() -> None:
        key = ("t1", "accepted")
        counts[key] = counts.get(key, 0) + 1

    registry = prometheus_client.CollectorRegistry()
    mp_counter = prometheus_client.Counter("events", "", ("tenant", "outcome"), registry=registry)
    mp_latency = prometheus_client.Histogram("latency", "", ("route",), registry=registry)
    rows = {
        "shared slots, counter +1": lambda: counter.inc("t1", "accepted"),
        "shared slots, latency": lambda: latency.observe(0.0031, "/v1/event"),
        "plain dict, counter +1": dict_inc,
        "multiprocess mode, counter +1": lambda: mp_counter.labels("t1", "accepted").inc(),
        "multiprocess mode, latency": lambda: mp_latency.labels("/v1/event").observe(0.0031),
    }
    for name, update in rows.items():
        print(f"{name:<32} {best_ns(update, rounds):7.0f} ns")


if __name__ == "__main__":
    main()
