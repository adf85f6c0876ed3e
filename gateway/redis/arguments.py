"""What the scripts are called with: one typed object per script builds its ARGV, and the script
reads the same names back.

ARGV is the tenant prefix, the time of the call (ms), the object's other fields in their order,
then the call's items (events, orders) if it has any. lib.lua reads the first two as P and NOW;
a script reads the rest with `local args, first_item = {{ClassName}}`, which the template step
(scripts.py) expands to `{field = tonumber(ARGV[3]), ...}, <index of the first item>`
(`lua_reader`): a script says `args.contact_ttl`, never `ARGV[3]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, get_type_hints

FIRST_FIELD = 3  # ARGV[1] is the prefix, ARGV[2] the time
# lib.lua's first line. NOW_S is the time as Redis is given it: in Redis 6.2 a Lua number passed to
# redis.call is formatted with %.17g, about 1 us each, as much as a small command itself
ARGS_HEAD = "local P, NOW, NOW_S = ARGV[1], tonumber(ARGV[2]), ARGV[2]"


class ScriptArgs:
    """Base of the argument objects (frozen dataclasses whose first field is `prefix`)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]  # each subclass is a dataclass
    prefix: str

    def args(self, now: int, items: Sequence[Any] = ()) -> list[Any]:
        """The script's ARGV for a call at `now` (ms) with `items`."""
        values = [getattr(self, name) for name, _ in _fields(type(self))]
        return [self.prefix, now, *values, *items]


_FIELDS: dict[type[ScriptArgs], tuple[tuple[str, bool], ...]] = {}


def _fields(cls: type[ScriptArgs]) -> tuple[tuple[str, bool], ...]:
    """(name, whether it is a number) of each field after the prefix, in ARGV order."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = tuple((f.name, hints[f.name] in (int, float)) for f in fields(cls)[1:])
        _FIELDS[cls] = found
    return found


def lua_reader(cls: type[ScriptArgs]) -> str:
    """Lua reading `cls`'s fields from ARGV into a table, and the index of the first item."""
    reads = [
        f"{name} = tonumber(ARGV[{place}])" if number else f"{name} = ARGV[{place}]"
        for place, (name, number) in enumerate(_fields(cls), start=FIRST_FIELD)
    ]
    return "{" + ", ".join(reads) + "}, " + str(FIRST_FIELD + len(reads))


@dataclass(frozen=True, slots=True, eq=False)
class TenantLimits(ScriptArgs):
    """ingest.lua's and orders.lua's arguments: a tenant's limits, made once per tenant (compared
    by identity: the batcher merges the calls that share one)."""

    prefix: str
    contact_ttl: int  # s
    visit_timeout_ms: int
    dedup_window: int  # s
    stream_maxlen: int
    recent_views: int
    contact_events: int
    cart_ttl: int  # s
    purchase_window_ms: int
    # [tenants.triggers] (docs/triggers.md, Trigger policies); detect.lua takes them too
    delay_ms: int
    cooldown_ms: int
    recent_order_ms: int  # suppress_after_order_seconds
    attribution_ms: int
    watch_ms: int  # [tenants.triggers] watch_days: how long a view or a cart watches a product
    # Each destination's queue id and the event types it takes, "<id>=<type>,<type>;<id>=" (no
    # types: every type); "" for none (lib_destinations.lua).
    destinations: str


@dataclass(frozen=True, slots=True)
class RateArgs(ScriptArgs):
    """rate.lua: take a token of API key `key_id`'s bucket, refilled at `rate` per second."""

    prefix: str
    key_id: str
    rate: float


@dataclass(frozen=True, slots=True)
class WebhookStep(ScriptArgs):
    """webhook.lua: one step (`op`, set by each subclass) of webhook or destination `hook`'s
    delivery schedule. The script reads these fields first, to know which step's fields follow."""

    prefix: str
    hook: str  # the webhook's id, or a destination's
    source: str  # "triggers" (a webhook) or "queue" (a destination's own queue)
    op: str = field(init=False)


@dataclass(frozen=True, slots=True)
class WebhookEnqueue(WebhookStep):
    """Move at most `count` new triggers of the stream, read through consumer group `group`, into
    the schedule, due now; only those of `types` (comma-separated; "" all)."""

    op: str = field(default="enqueue", init=False)
    group: str
    types: str
    count: int


@dataclass(frozen=True, slots=True)
class WebhookClaim(WebhookStep):
    """Claim at most `count` due jobs, each pushed back by `lease_ms`."""

    op: str = field(default="claim", init=False)
    lease_ms: int
    count: int


@dataclass(frozen=True, slots=True)
class WebhookDone(WebhookStep):
    """The jobs `stream_ids` (comma-separated) were delivered: forget them."""

    op: str = field(default="done", init=False)
    stream_ids: str


@dataclass(frozen=True, slots=True)
class WebhookRetry(WebhookStep):
    """The job `stream_id` failed: try again at `due_ms`."""

    op: str = field(default="retry", init=False)
    stream_id: str
    due_ms: int


@dataclass(frozen=True, slots=True)
class WebhookDead(WebhookStep):
    """The job `stream_id` failed for good: move `entry` (JSON) to the dead letters, and count it
    as WebhookDone counts a delivery."""

    op: str = field(default="dead", init=False)
    stream_id: str
    entry: bytes
    trigger_type: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class CatalogArgs(ScriptArgs):
    """products.lua: store the products of the call (its items) in the catalog."""

    prefix: str


@dataclass(frozen=True, slots=True)
class FanoutStep(ScriptArgs):
    """fanout.lua: go on with the fan-out of `product_id` if this process (`token`) holds it,
    else claim the next one due; hold it `lease_ms` and look at most at `chunk` of its watchers.
    The rest is the tenant's [tenants.triggers] policy (docs/triggers.md)."""

    prefix: str
    token: str
    product_id: str
    lease_ms: int
    chunk: int
    watch_ms: int
    drop_percent: float
    cooldown_ms: int
    contact_ttl: int  # s


@dataclass(frozen=True, slots=True)
class DestinationRevive(ScriptArgs):
    """destination.lua: queue dead letter `dead_id` again for its destination, if that is one of
    `configured` (comma-separated ids)."""

    prefix: str
    dead_id: str
    configured: str


@dataclass(frozen=True, slots=True)
class RefusedArgs(ScriptArgs):
    """refused.lua: log refused ingest requests and count them per minute."""

    prefix: str


@dataclass(frozen=True, slots=True)
class ExportChunk(ScriptArgs):
    """export.lua: of stream `source` ("events" or "triggers"), the contact's entries among at
    most `count` older than `cursor` ("": from the newest)."""

    prefix: str
    source: str
    contact_id: str
    cursor: str
    count: int


@dataclass(frozen=True, slots=True)
class EraseOp(ScriptArgs):
    """erase.lua: one step (`op`, set by each subclass) of erasing a contact (docs/privacy.md).
    The script reads this field first, to know which step's fields follow."""

    prefix: str
    op: str = field(init=False)


@dataclass(frozen=True, slots=True)
class EraseStart(EraseOp):
    """Erase contact `contact_id` now as erasure `erasure` and queue its stream work (over the
    jobs of webhooks `hooks` and the queues of `destinations`, comma-separated ids); `suppress`
    1: suppress its identifiers too."""

    op: str = field(default="start", init=False)
    erasure: str
    contact_id: str
    suppress: int
    hooks: str
    destinations: str


@dataclass(frozen=True, slots=True)
class EraseClaim(EraseOp):
    """Lease a queued erasure to `owner` for `lease_ms`."""

    op: str = field(default="claim", init=False)
    owner: str
    lease_ms: int


@dataclass(frozen=True, slots=True)
class EraseChunk(EraseOp):
    """Do at most `count` entries (or SCAN's COUNT) of erasure `erasure`'s background work, if
    `owner` holds it, and renew its lease by `lease_ms`."""

    op: str = field(default="chunk", init=False)
    erasure: str
    owner: str
    lease_ms: int
    count: int


SCRIPT_ARGS: tuple[type[ScriptArgs], ...] = (
    TenantLimits,
    RateArgs,
    WebhookStep,
    WebhookEnqueue,
    WebhookClaim,
    WebhookDone,
    WebhookRetry,
    WebhookDead,
    DestinationRevive,
    CatalogArgs,
    FanoutStep,
    RefusedArgs,
    ExportChunk,
    EraseOp,
    EraseStart,
    EraseClaim,
    EraseChunk,
)

# An ingest.lua item is one JSON array per event, read by position (decoding an object's keys
# cost Lua about 2 µs per event): eventId, dedup (a client's eventId), eventTypeKey, identifiers,
# a fresh contact id, then at most one part at its place: pv, cv, cart, order, ig; parts before it
# are false (model/events.py builds it). ingest.lua's names for the places come from ENVELOPE.
PARTS = ("pv", "cv", "cart", "order", "ig")
ENVELOPE = ("id", "dedup", "type", "ids", "fresh", *PARTS)
