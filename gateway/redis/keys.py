"""Every Redis key the gateway writes, Python and Lua, built from one table: KEYSPACE.

Each row is a key's name, its template after the tenant prefix, its Redis type and its lifetime.
TenantKeys builds the names in Python; the template step (scripts.py `lua_key_helpers`) writes
the same builders in Lua at the top of every script (`K_events`, `K_cart(recycle_state_id)`,
`K_contact_ev(contact_id)`, ...): no script puts a key name together itself.

PREFIX is the only place the tenant prefix is written: `gw:{<tenant>}`. The braces make the
tenant id the Redis Cluster hash tag, so all of a tenant's keys share its slot and one script
call may touch any of them; tenants spread over the primaries. (A key's first `{…}` is its tag:
the braces around a contact or order id further on are only part of the name.) Keys of the
earlier layout, `gw:<tenant>:…`, are moved by `gateway migrate` (migrate.py).

Per-contact values kept small, since every active contact holds them: `:pv` scores are view
times (ms); `:pvd` maps productId to `<lag>|<currencyCode>|<the view's other fields as JSON,
without braces>` (viewedAt = score - lag; model/recommendations.py), or, for a view that does not
fit that form, its whole JSON. An `:ev` entry names an event by its type and stream id: for the
four types with a LIST_DIGITS digit (constants.py), while the id's sequence is below 1000, as the
integer `<digit><the id's ms, 13 digits><its sequence, 3 digits>` (Redis keeps an entry that reads
as an integer in 8 bytes, against ~20 for the text: ~240 B of a contact's 21 in `make bench`);
else as `<type>|<stream id>`, the type as a LIST_CODES code where it has one. A cart's JSON is
kept once: in the contact hash while it is the contact's current cart, in its `:cart:` state once
it is not (lib.lua release_cart). The contact's identifiers and its open visit are fields of the
contact hash (constants.py IDENTIFIER_FIELD, VISIT_FIELDS): a key of its own each cost ~90-100 B
more per contact and two commands (its HSET, its EXPIRE) per new visitor.

Product watches (docs/triggers.md, Price drops and back in stock) cost one member of the
product's `:p:{id}:w` per watching contact and nothing else: what the contact saw stays where it
already is (its `:pvd` view, or its cart), and the score is the watch's time in ms plus, in its
fraction, the triggers told for that watch (WATCH_TOLD: + 0.25 priceDrop, + 0.5 backInStock;
exact in a double for any ms of this era). A new view writes a whole ms, so it clears them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

KEY_ROOT = "gw:"
PREFIX = KEY_ROOT + "{{{tenant}}}"  # str.format: `{{` is a literal brace
LEGACY_PREFIX = KEY_ROOT + "{tenant}"
# Where a contact's identifiers and open visit were kept before they moved into the contact hash:
# `gateway migrate` folds such hashes into their contact's (migrate.py).
UNFOLDED_IDS, UNFOLDED_VISIT = ":ids", ":visit"
# Such a hash: its tenant, contact id and suffix.
UNFOLDED_KEY = re.compile(
    re.escape(KEY_ROOT) + r"\{(.+?)\}:c:\{(.+)\}(" + f"{UNFOLDED_IDS}|{UNFOLDED_VISIT})",
    re.DOTALL,
)
# A key of the earlier layout, `gw:<tenant>:...` (tenant ids: settings.tenants.TENANT_ID).
LEGACY_KEY = re.compile(r"gw:([A-Za-z0-9_-]{1,64}):(.+)", re.DOTALL)
TRIGGERS_MAXLEN = 1_000_000  # XADD MAXLEN ~ of a tenant's trigger stream
MAX_DEAD = 10_000  # dead letters kept per tenant, newest first
ORDER_HISTORY_MAX = 100  # status changes kept per order
TRIGGER_STATS_TTL = 400 * 86_400  # s: a day's trigger figures are kept 400 days
WATCH_TOLD = {"priceDrop": 0.25, "backInStock": 0.5}  # a watch's score fraction per trigger told
REFUSED_MAX = 1000  # refused ingest requests kept per tenant (docs/dashboard.md)
REFUSED_SECONDS = 86_400  # ... for at most a day
STATS_MINUTES = 1440  # per-minute counters kept (GET /v1/stats/events?minutes=)
ERASURE_TTL = 30 * 86_400  # an erasure's record (status, counts; no identifier once done), s


@dataclass(frozen=True, slots=True)
class Key:
    """One row of the layout. `template` follows the tenant prefix; its {fields} are the parts a
    builder takes, in their order (str.format syntax: `{{` is a literal brace)."""

    template: str
    redis_type: str
    lifetime: str
    contact_part: bool = False  # one of a contact's keys: stitching moves it and renews its TTL

    def build(self, prefix: str, **parts: str) -> str:
        return prefix + self.template.format(**parts)


CONTACT = ":c:{{{contact_id}}}"
ORDER = ":o:{{{external_order_id}}}"
WEBHOOK = ":wh:{hook}"
PRODUCT = ":p:{{{product_id}}}"
DESTINATION = ":dst:{destination}"
CONTACT_TTL = "contact_ttl_seconds"

KEYSPACE = {
    "events": Key(":events", "stream", "capped: MAXLEN ~ events_stream_maxlen"),
    "dedup": Key(":dedup:{event_id}", "string", "dedup_window_seconds (a client's eventId seen)"),
    "identifier": Key(":id:{identifier}", "string", f"{CONTACT_TTL} (<kind>:<value> -> contact)"),
    "contact": Key(CONTACT, "hash", f"{CONTACT_TTL} (profile, ids, cart, open visit)", True),
    "contact_pv": Key(CONTACT + ":pv", "zset", f"{CONTACT_TTL}, capped recent_views", True),
    "contact_pvd": Key(CONTACT + ":pvd", "hash", f"{CONTACT_TTL}, one per :pv member", True),
    "contact_cv": Key(CONTACT + ":cv", "zset", f"{CONTACT_TTL}, capped recent_views", True),
    "contact_ev": Key(CONTACT + ":ev", "list", f"{CONTACT_TTL}, capped contact_events", True),
    "contact_rfm": Key(CONTACT + ":rfm", "hash", f"{CONTACT_TTL} (DELIVERED order RFM)", True),
    "contact_rfmo": Key(CONTACT + ":rfmo", "hash", f"{CONTACT_TTL} (each order's share)", True),
    "merged_into": Key(CONTACT + ":into", "string", f"{CONTACT_TTL} (stitched away: into which)"),
    "visits": Key(":visits", "zset", "one member per open visit, removed on close"),
    "cart": Key(":cart:{recycle_state_id}", "hash", "cart_ttl_seconds (cart state, its order)"),
    "order": Key(ORDER, "hash", f"{CONTACT_TTL} (order meta: status, contact...)"),
    "order_fields": Key(ORDER + ":f", "hash", f"{CONTACT_TTL} (field -> JSON text)"),
    "order_history": Key(ORDER + ":h", "list", f"{CONTACT_TTL}, capped ORDER_HISTORY_MAX"),
    "triggers": Key(":triggers", "stream", "capped: MAXLEN ~ TRIGGERS_MAXLEN"),
    "tally": Key(":tally", "hash", "visit and trigger counts, drained by detect.lua"),
    "rate": Key(":rate:{key_id}", "hash", "until the key's bucket would be full again, + 1 s"),
    "webhook_due": Key(WEBHOOK + ":due", "zset", "until delivered or dead-lettered"),
    "webhook_jobs": Key(WEBHOOK + ":jobs", "hash", "until delivered or dead-lettered"),
    "webhook_tries": Key(WEBHOOK + ":tries", "hash", "until delivered or dead-lettered"),
    "dead_letters": Key(":wh:dead", "list", "capped: the newest MAX_DEAD"),
    "webhook_dead": Key(WEBHOOK + ":dead", "zset", "capped: the newest MAX_DEAD (id -> dead ms)"),
    "webhook_since": Key(WEBHOOK + ":since", "string", "no TTL: one per webhook, its first id"),
    # trigger policies (docs/triggers.md, Trigger policies)
    "pending": Key(":pending", "zset", "one member per delayed trigger (id -> due ms), till due"),
    "pending_jobs": Key(":pending:jobs", "hash", "one field per :pending member, removed with it"),
    "trigger_times": Key(
        CONTACT + ":tt", "hash", f"{CONTACT_TTL} (trigger type -> ms of the last emitted)", True
    ),
    "last_trigger": Key(
        CONTACT + ":lt", "string", f"{CONTACT_TTL} (<id>|<type>|<ms> of the last emitted)", True
    ),
    "trigger_stats": Key(":ts:{day}", "hash", "TRIGGER_STATS_TTL (one UTC day's figures)"),
    "product": Key(PRODUCT, "hash", "no TTL: the shop's catalog (field -> JSON text, updatedAt)"),
    "product_watchers": Key(PRODUCT + ":w", "zset", "watch_days after the last watch; trimmed"),
    "fanouts": Key(":pfq", "zset", "until done (product -> due ms or lease end)"),
    "fanout": Key(PRODUCT + ":f", "hash", "until done (its owner, its cursor)"),
    "destination_queue": Key(DESTINATION + ":q", "stream", "each entry until forwarded or dead"),
    "destination_due": Key(DESTINATION + ":due", "zset", "until forwarded or dead-lettered"),
    "destination_tries": Key(DESTINATION + ":tries", "hash", "until forwarded or dead-lettered"),
    "destination_dead": Key(":dst:dead", "stream", "capped: MAXLEN ~ MAX_DEAD"),
    "refused": Key(":refused", "stream", "capped: REFUSED_MAX, none older than REFUSED_SECONDS"),
    "stats": Key(":stats:{minute}", "hash", "STATS_MINUTES + 1 min (counts of one minute)"),
    # privacy (docs/privacy.md)
    "contact_orders": Key(CONTACT + ":orders", "set", f"{CONTACT_TTL} (its order ids)", True),
    "contact_stitched": Key(CONTACT + ":from", "set", f"{CONTACT_TTL} (ids stitched in)", True),
    "suppressed": Key(":suppressed", "set", "until lifted (SHA-1 of <kind>:<value>)"),
    "erasure": Key(":erasure:{erasure}", "hash", "ERASURE_TTL once started (its state, counts)"),
    "erasure_copy": Key(":erasure:{erasure}:copy", "stream", "while it compacts a stream"),
    "erasures": Key(":erasures", "zset", "one member per unfinished erasure (lease ms)"),
}


@dataclass(frozen=True, slots=True)
class TenantKeys:
    prefix: str

    @classmethod
    def for_tenant(cls, tenant_id: str) -> TenantKeys:
        return cls(prefix=PREFIX.format(tenant=tenant_id))

    @classmethod
    def legacy(cls, tenant_id: str) -> TenantKeys:
        """The earlier layout, `gw:<tenant>` (migrate.py moves it)."""
        return cls(prefix=LEGACY_PREFIX.format(tenant=tenant_id))

    def markers(self) -> tuple[str, str]:
        """Keys every tenant that took an event or an order has: its event and trigger streams."""
        return self.events, self.triggers

    def _key(self, name: str, **parts: str) -> str:
        return KEYSPACE[name].build(self.prefix, **parts)

    @property
    def events(self) -> str:
        return self._key("events")

    @property
    def triggers(self) -> str:
        """Trigger events (order<STATUS>, abandoned*), read by consumers, the feed, webhooks."""
        return self._key("triggers")

    @property
    def dead_letters(self) -> str:
        """Webhook deliveries that used up their retry budget (gateway/redis/lua/webhook.lua)."""
        return self._key("dead_letters")

    @property
    def visits(self) -> str:
        return self._key("visits")

    @property
    def tally(self) -> str:
        """Visit and trigger counts for /metrics: written by the scripts, drained by detect.lua."""
        return self._key("tally")

    @property
    def pending(self) -> str:
        """Delayed triggers by due time (detect.lua releases them), and their jobs (`:jobs`)."""
        return self._key("pending")

    @property
    def pending_jobs(self) -> str:
        return self._key("pending_jobs")

    def dedup(self, event_id: str) -> str:
        return self._key("dedup", event_id=event_id)

    def identifier(self, kind: str, value: str) -> str:
        return self._key("identifier", identifier=f"{kind}:{value}")

    def contact(self, contact_id: str, suffix: str = "") -> str:
        """A contact's key: "" its profile, ":ids", ":pv"... its other keys (KEYSPACE)."""
        return self._key("contact", contact_id=contact_id) + suffix

    def merged_into(self, contact_id: str) -> str:
        """Where a contact stitched into another now lives (lib.lua merge_contact)."""
        return self._key("merged_into", contact_id=contact_id)

    def cart(self, recycle_state_id: str) -> str:
        return self._key("cart", recycle_state_id=recycle_state_id)

    def order(self, external_order_id: str, suffix: str = "") -> str:
        """An order: "" meta, ":f" fields (JSON texts), ":h" status history."""
        return self._key("order", external_order_id=external_order_id) + suffix

    def rate(self, key_id: str) -> str:
        """The token bucket of an API key (rate.lua)."""
        return self._key("rate", key_id=key_id)

    def trigger_stats(self, day: str) -> str:
        """One UTC day's trigger figures, `<type>|<figure>[|<reason or currency>]` -> number."""
        return self._key("trigger_stats", day=day)

    def product(self, product_id: str, suffix: str = "") -> str:
        """A product: "" its catalog state, ":w" its watchers, ":f" its fan-out's state."""
        return self._key("product", product_id=product_id) + suffix

    @property
    def fanouts(self) -> str:
        """The products whose watchers are to be notified (fanout.lua)."""
        return self._key("fanouts")

    @property
    def refused(self) -> str:
        """The refused ingest requests (refused.lua), for GET /v1/debug/events."""
        return self._key("refused")

    def stats(self, minute: int) -> str:
        """Accepted events by type and refusals by error code in one minute (minutes since the
        epoch): fields `a:<eventTypeKey>` and `r:<error code>` (ingest.lua, refused.lua)."""
        return self._key("stats", minute=str(minute))

    def contact_orders(self, contact_id: str) -> str:
        """The externalOrderIds of a contact's orders (lib_orders.lua apply_order)."""
        return self._key("contact_orders", contact_id=contact_id)

    @property
    def suppressed(self) -> str:
        """Digests of suppressed identifiers (docs/privacy.md, Suppression)."""
        return self._key("suppressed")

    def erasure(self, erasure_id: str) -> str:
        return self._key("erasure", erasure=erasure_id)

    @property
    def erasures(self) -> str:
        """Erasures whose stream work is unfinished, scored by their claim's lease end."""
        return self._key("erasures")

    def webhook(self, hook: str, part: Literal["due", "jobs", "tries", "dead", "since"]) -> str:
        """A webhook's schedule "due", "jobs", "tries", its "dead" ids, its "since" (KEYSPACE)."""
        return self._key(f"webhook_{part}", hook=hook)

    def destination(self, destination: str, part: Literal["q", "due", "tries"]) -> str:
        """A destination's queue "q" (jobs not yet forwarded), "due", "tries" (as a webhook's)."""
        names = {"q": "destination_queue", "due": "destination_due", "tries": "destination_tries"}
        return self._key(names[part], destination=destination)

    @property
    def destination_dead(self) -> str:
        """Jobs a destination refused or that used up their retries (GET /v1/destinations/dead)."""
        return self._key("destination_dead")


def suppression_digest(kind: str, value: str) -> str:
    """How K_suppressed names a suppressed identifier (lib.lua suppressed_among): the SHA-1 of
    `<kind>:<value>`, so the set holds no identifier in the clear."""
    return hashlib.sha1(f"{kind}:{value}".encode()).hexdigest()


def list_entry_event(entry: str) -> tuple[str, str]:
    """The event type (a LIST_CODES or LIST_DIGITS code, or its eventTypeKey) and the stream id
    an `:ev` entry names (the two forms above; lib.lua `entry_id` reads them too)."""
    code, bar, stream_id = entry.rpartition("|")
    if bar:
        return code, stream_id
    return entry[0], f"{int(entry[1:14])}-{int(entry[14:])}"


def unfolded_pattern(suffix: str) -> str:
    """SCAN's MATCH for every tenant's contact hashes ending in `suffix` (UNFOLDED_IDS...)."""
    return f"{KEY_ROOT}[{{]*}}:c:[{{]*}}{suffix}"


def current_key(legacy: str) -> tuple[str, str] | None:
    """(tenant, the key's name now) for a key of the earlier layout; None for any other key."""
    found = LEGACY_KEY.fullmatch(legacy)
    if found is None:
        return None
    tenant, rest = found.groups()
    return tenant, f"{TenantKeys.for_tenant(tenant).prefix}:{rest}"
