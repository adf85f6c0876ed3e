"""Prometheus metrics that cost next to nothing on the hot path.

Counters are increments of float slots in memory the server's worker processes share
(gateway/shared_values.py); they become Prometheus families only when `/metrics` is scraped (a
custom collector), so a request never takes prometheus-client's locks. With `--workers N` the
scrape reports the whole server, whichever worker answers it (the process_* figures excepted:
they are the answering worker's own). A family is counted once it is in `Metrics.families` when
`Metrics()` is made, or added with `Metrics.add`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from gateway.shared_values import Labels, SharedValues, Values

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNBOUND = SharedValues()  # a family's slots until Metrics binds it to its own


@dataclass
class Counter:
    name: str
    help: str
    labels: tuple[str, ...]
    slots: dict[Labels, int] = field(default_factory=dict)  # labels -> its slot
    shared: SharedValues = field(default=UNBOUND, repr=False)

    def bind(self, shared: SharedValues) -> None:
        self.shared, self.slots = shared, {}

    def inc(self, *labels: str, amount: float = 1) -> None:
        slot = self.slots.get(labels)
        if slot is None:
            slot = self.slots[labels] = self.shared.allocate(self.name, labels, 1)
        self.shared.view[slot] += amount

    def get(self, *labels: str) -> float:
        """This process's own figure (the scrape sums every process's)."""
        slot = self.slots.get(labels)
        return 0 if slot is None else float(self.shared.view[slot])

    def family(self, values: dict[Labels, list[float]]) -> Metric:
        family = CounterMetricFamily(self.name, self.help, labels=self.labels)
        for labels, (value,) in values.items():
            family.add_metric(labels, value)
        return family


@dataclass
class Gauge(Counter):
    def set(self, *labels: str, value: float) -> None:
        slot = self.slots.get(labels)
        if slot is None:
            slot = self.slots[labels] = self.shared.allocate(self.name, labels, 1)
        self.shared.view[slot] = value

    def family(self, values: dict[Labels, list[float]]) -> Metric:
        family = GaugeMetricFamily(self.name, self.help, labels=self.labels)
        for labels, (value,) in values.items():
            family.add_metric(labels, value)
        return family


@dataclass
class Histogram:
    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    slots: dict[Labels, int] = field(default_factory=dict)  # labels -> its first slot
    shared: SharedValues = field(default=UNBOUND, repr=False)

    def bind(self, shared: SharedValues) -> None:
        self.shared, self.slots = shared, {}

    def observe(self, value: float, *labels: str) -> None:
        # Slots: one per bucket, +Inf's, then the sum.
        buckets = self.buckets
        first = self.slots.get(labels)
        if first is None:
            width = len(buckets) + 2
            first = self.slots[labels] = self.shared.allocate(self.name, labels, width)
        view = self.shared.view
        view[first + bisect.bisect_left(buckets, value)] += 1
        view[first + len(buckets) + 1] += value

    def family(self, values: dict[Labels, list[float]]) -> Metric:
        family = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        for labels, found in values.items():
            *counts, total = found
            running, cumulative = 0.0, []
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                running += count
                cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
            family.add_metric(labels, cumulative, total)
        return family


class Metrics:
    def __init__(self, directory: Path | None = None) -> None:
        """`directory`: where the server's processes share their figures (None: not shared)."""
        self.events_accepted = Counter(
            "gateway_events_accepted_total",
            "Events stored, by tenant and type (custom types counted as 'custom').",
            ("tenant", "type"),
        )
        self.events_duplicate = Counter(
            "gateway_events_duplicate_total",
            "Events answered as duplicates of an eventId.",
            ("tenant",),
        )
        self.events_rejected = Counter(
            "gateway_events_rejected_total",
            "Events or requests refused, by reason (internal_error: Redis failed on the event).",
            ("tenant", "reason"),
        )
        self.events_repaired = Counter(
            "gateway_events_repaired_total",
            "Events stored after repairing a malformed param.",
            ("tenant",),
        )
        self.redis_unavailable = Counter(
            "gateway_redis_unavailable_total", "Requests answered 503 because Redis was down.", ()
        )
        self.request_latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to response, by route.",
            ("route",),
        )
        self.orders_stored = Counter(
            "gateway_orders_stored_total",
            "Order writes stored, by tenant, status and source (orders API or event type).",
            ("tenant", "status", "source"),
        )
        self.orders_failed = Counter(
            "gateway_orders_failed_total",
            "Orders refused (orders API) or order events ignored, by tenant and reason.",
            ("tenant", "reason"),
        )
        self.families: list[Counter | Histogram] = [
            self.events_accepted,
            self.events_duplicate,
            self.events_rejected,
            self.events_repaired,
            self.redis_unavailable,
            self.request_latency,
            self.orders_stored,
            self.orders_failed,
        ]
        # visits, triggers and webhooks (gateway/background/)
        self.triggers_emitted = Counter(
            "gateway_triggers_emitted_total", "Triggers appended to the stream.", ("tenant", "type")
        )
        self.visits_closed = Counter(
            "gateway_visits_closed_total", "Visits closed (with or without a trigger).", ("tenant",)
        )
        self.visits_anonymous = Counter(
            "gateway_visits_anonymous_total",
            "Visits closed without a trigger: the contact had no email, phone, push token or id.",
            ("tenant",),
        )
        self.detector_lag = Gauge(
            "gateway_detector_lag_seconds",
            "Largest delay between a visit's deadline and its closing, in the last detector pass.",
            ("tenant",),
        )
        self.webhook_deliveries = Counter(
            "gateway_webhook_deliveries_total", "Webhook POSTs answered 2xx.", ("tenant",)
        )
        self.webhook_failures = Counter(
            "gateway_webhook_failures_total",
            "Webhook attempts that failed (non-2xx, timeout, connection error).",
            ("tenant",),
        )
        self.webhook_dead = Counter(
            "gateway_webhook_dead_letters_total",
            "Triggers moved to the dead-letter list after the retry budget.",
            ("tenant",),
        )
        # privacy (docs/privacy.md)
        self.erasures_started = Counter(
            "gateway_erasures_started_total", "Contacts erased (DELETE /v1/contacts).", ("tenant",)
        )
        self.erasures_done = Counter(
            "gateway_erasures_done_total",
            "Erasures whose stream work this process finished.",
            ("tenant",),
        )
        self.suppressions = Counter(
            "gateway_suppressions_total",
            "Contacts suppressed (action added) and identifiers lifted (action lifted).",
            ("tenant", "action"),
        )
        self.suppressed_ignored = Counter(
            "gateway_suppressed_ignored_total",
            "Events and orders ignored because they carried a suppressed identifier.",
            ("tenant",),
        )
        self.families += [
            self.erasures_started,
            self.erasures_done,
            self.suppressions,
            self.suppressed_ignored,
        ]
        self.triggers_suppressed = Counter(
            "gateway_triggers_suppressed_total",
            "Triggers a policy kept from the stream, by type and reason (docs/triggers.md).",
            ("tenant", "type", "reason"),
        )
        self.trigger_conversions = Counter(
            "gateway_trigger_conversions_total",
            "Orders attributed to a trigger, by the trigger's type (cancellations not deducted).",
            ("tenant", "type"),
        )
        self.trigger_revenue = Counter(
            "gateway_trigger_revenue_total",
            "totalCost of the orders attributed to a trigger (cancellations not deducted).",
            ("tenant", "type", "currency"),
        )
        self.families += [
            self.triggers_suppressed,
            self.trigger_conversions,
            self.trigger_revenue,
            self.triggers_emitted,
            self.visits_closed,
            self.visits_anonymous,
            self.detector_lag,
            self.webhook_deliveries,
            self.webhook_failures,
            self.webhook_dead,
        ]
        # destinations (gateway/background/destinations.py), labels tenant and destination id
        forwarding = ("tenant", "destination")
        self.destination_forwarded = Counter(
            "gateway_destination_forwarded_total",
            "Events and orders a destination answered 2xx.",
            forwarding,
        )
        self.destination_failed = Counter(
            "gateway_destination_failed_total",
            "Events and orders whose forwarding attempt failed (retried or dead).",
            forwarding,
        )
        self.destination_dead = Counter(
            "gateway_destination_dead_total",
            "Events and orders moved to the destinations' dead letters.",
            forwarding,
        )
        self.destination_queue = Gauge(
            "gateway_destination_queue_length",
            "Events and orders queued for a destination, not yet forwarded or dead.",
            forwarding,
        )
        self.destination_oldest = Gauge(
            "gateway_destination_oldest_seconds",
            "Age of the oldest event or order not yet forwarded (0: none).",
            forwarding,
        )
        self.families += [
            self.destination_forwarded,
            self.destination_failed,
            self.destination_dead,
            self.destination_queue,
            self.destination_oldest,
        ]
        self.shared = SharedValues(directory)
        for family in self.families:
            family.bind(self.shared)
        self.gauges = frozenset(f.name for f in self.families if isinstance(f, Gauge))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def add(self, family: Counter | Histogram) -> Counter | Histogram:
        """Register a family declared by another module (triggers, webhooks, ...)."""
        family.bind(self.shared)
        self.families.append(family)
        if isinstance(family, Gauge):
            self.gauges |= {family.name}
        return family

    def collect(self) -> Iterator[Metric]:
        values: Values = self.shared.read(self.gauges)
        for family in self.families:
            yield family.family(values.get(family.name, {}))

    def render(self) -> bytes:
        return generate_latest(self.registry)
