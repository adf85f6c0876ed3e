"""The metric slots the server's processes share (gateway/shared_values.py): counters of every
process summed, a gauge only from the processes still running, slots past the first file size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.metrics import Counter, Gauge, Histogram, Metrics
from gateway.shared_values import SharedValues
from tests.support.gateways import ROOT
from tests.support.metrics import sample

ANOTHER_PROCESS = """
import sys
from pathlib import Path
from gateway.metrics import Metrics
metrics = Metrics(Path(sys.argv[1]))
metrics.events_accepted.inc("t", "custom", amount=5)
metrics.detector_lag.set("t", value=7.5)
metrics.request_latency.observe(0.002, "/v1/event")
"""


def test_a_scrape_sums_every_process_and_drops_the_gauges_of_ended_ones(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", ANOTHER_PROCESS, str(tmp_path)], cwd=ROOT, check=True)
    metrics = Metrics(tmp_path)
    metrics.events_accepted.inc("t", "custom")
    metrics.detector_lag.set("t", value=1.5)
    metrics.request_latency.observe(0.3, "/v1/event")
    text = metrics.render().decode()
    assert sample(text, "gateway_events_accepted_total", tenant="t", type="custom") == 6
    assert metrics.events_accepted.get("t", "custom") == 1  # this process's own
    assert sample(text, "gateway_detector_lag_seconds", tenant="t") == 1.5  # 7.5's process ended
    labels = {"route": "/v1/event"}
    assert sample(text, "gateway_request_duration_seconds_count", **labels) == 2
    assert sample(text, "gateway_request_duration_seconds_sum", **labels) == 0.302
    assert sample(text, "gateway_request_duration_seconds_bucket", le="0.0025", **labels) == 1
    assert sample(text, "gateway_request_duration_seconds_bucket", le="0.5", **labels) == 2


def test_slots_past_the_first_size_are_kept_and_read(tmp_path: Path) -> None:
    for directory in (tmp_path, None):
        metrics = Metrics(directory)
        many = metrics.add(Counter("test_many_total", "Many label sets.", ("n",)))
        assert isinstance(many, Counter)
        for n in range(10_000):  # 4096 slots fit the first size
            many.inc(str(n), amount=n)
        metrics.events_duplicate.inc("t")
        text = metrics.render().decode()
        assert sample(text, "test_many_total", n="0") == 0
        assert sample(text, "test_many_total", n="9999") == 9999
        assert sample(text, "gateway_events_duplicate_total", tenant="t") == 1


def test_families_added_later_are_shared_too(tmp_path: Path) -> None:
    first, second = Metrics(tmp_path), Metrics(tmp_path)
    for metrics in (first, second):
        gauge = metrics.add(Gauge("test_level", "A level.", ()))
        histogram = metrics.add(Histogram("test_seconds", "Durations.", ()))
        assert isinstance(gauge, Gauge) and isinstance(histogram, Histogram)
        gauge.set(value=3 if metrics is first else 2)
        histogram.observe(1.0)
    text = second.render().decode()
    assert sample(text, "test_level") == 3  # the largest of the running processes'
    assert sample(text, "test_seconds_count") == 2
    assert SharedValues().read(frozenset()) == {}
