"""What the scripts answer, read once here (the answers' formats are the scripts' own)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.redis.constants import (
    SUPPRESSED,
    TALLY_ANONYMOUS,
    TALLY_CLOSED,
    TALLY_CONVERTED,
    TALLY_REVENUE,
    TALLY_SUPPRESSED,
    TALLY_TRIGGER,
)


@dataclass(frozen=True, slots=True)
class EventResult:
    """One event's answer from ingest.lua, or one order's from orders.lua: `a` stored, `d` a
    duplicate (its eventId seen before), `s` suppressed (nothing stored: docs/privacy.md),
    `a|<STATUS>` an order stored (its status now), `i|<reason>` stored, but its order part
    ignored, `e|<error>` not stored: its writes failed (lib_errors.lua `failed`), and the
    script's error says why. Plain fields, no properties: they are read per event on the ingest
    path."""

    duplicate: bool = False
    ignored: bool = False
    reason: str | None = None  # why it (or its order part) was ignored
    order_status: str | None = None
    failed: str | None = None  # the script's error, for the log (never the client)
    suppressed: bool = False  # `s`: it names a suppressed identifier; nothing stored


_PLAIN = {
    b"a": EventResult(),
    b"d": EventResult(duplicate=True),
    b"s": EventResult(ignored=True, reason=SUPPRESSED, suppressed=True),
}


def _read_event_result(reply: bytes) -> EventResult:
    tag, _, note = reply.partition(b"|")
    if tag == b"i":
        return EventResult(ignored=True, reason=note.decode())
    if tag == b"e":
        return EventResult(failed=note.decode(errors="replace"))
    return EventResult(order_status=note.decode())


def event_results(replies: list[bytes]) -> list[EventResult]:
    """Every answer of one call; the common ones (no order) are shared objects, no call each."""
    return [_PLAIN.get(reply) or _read_event_result(reply) for reply in replies]


@dataclass(slots=True)
class DetectResult:
    """detect.lua's answer: how many visits this call closed (the batch size: more may be due),
    the largest lag past a deadline (ms), and the tally since the last call, closes by ingest
    included: visits closed, those of anonymous contacts, triggers emitted by type, those
    suppressed by (type, reason), and the orders attributed to triggers by type, their revenue by
    (type, currency)."""

    handled: int
    lag_ms: int
    closed: int = 0
    anonymous: int = 0
    triggers: dict[str, int] = field(default_factory=dict)
    suppressed: dict[tuple[str, str], int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    revenue: dict[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def read(cls, reply: list[Any]) -> DetectResult:
        handled, lag_ms, tally = reply
        found = cls(int(handled), int(lag_ms))
        for name, value in zip(tally[::2], tally[1::2], strict=True):
            counter = name.decode()
            if counter.startswith(TALLY_REVENUE):
                trigger_type, _, currency = counter.removeprefix(TALLY_REVENUE).partition("|")
                found.revenue[trigger_type, currency] = float(value)
                continue
            amount = int(value)
            if counter == TALLY_CLOSED:
                found.closed = amount
            elif counter == TALLY_ANONYMOUS:
                found.anonymous = amount
            elif counter.startswith(TALLY_TRIGGER):
                found.triggers[counter.removeprefix(TALLY_TRIGGER)] = amount
            elif counter.startswith(TALLY_SUPPRESSED):
                trigger_type, _, reason = counter.removeprefix(TALLY_SUPPRESSED).partition("|")
                found.suppressed[trigger_type, reason] = amount
            elif counter.startswith(TALLY_CONVERTED):
                found.converted[counter.removeprefix(TALLY_CONVERTED)] = amount
        return found


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A webhook delivery webhook.lua's `claim` handed out, `attempt` counting this one."""

    stream_id: str
    body: bytes
    attempt: int

    @classmethod
    def read_all(cls, reply: list[Any]) -> list[ClaimedJob]:
        return [
            cls(reply[j].decode(), reply[j + 1], int(reply[j + 2])) for j in range(0, len(reply), 3)
        ]


@dataclass(frozen=True, slots=True)
class FanoutResult:
    """fanout.lua's answer: the product whose fan-out the step went on with ("" when none was
    due), how many of its watchers it looked at, and whether that fan-out is done."""

    product_id: str
    watchers: int
    done: bool

    @classmethod
    def read(cls, reply: list[Any]) -> FanoutResult:
        product_id, watchers, done = reply
        return cls(product_id.decode(), int(watchers), bool(done))
