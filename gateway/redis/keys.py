"""Every Redis key the gateway writes, built here and only here, with its lifetime beside it.

Layout (P = `gw:<tenant>`; `{cid}` is a Redis Cluster hash tag, so the keys of one contact that
change together share a slot):

| key                          | type   | lifetime                                    |
|------------------------------|--------|---------------------------------------------|
| P:events                     | stream | capped, MAXLEN ~ events_stream_maxlen       |
| P:dedup:<eventId>            | string | dedup_window_seconds                        |
| P:id:<kind>:<value>          | string | contact_ttl_seconds (identifier -> contact) |
| P:c:{cid}                    | hash   | contact_ttl_seconds (profile, cart)         |
| P:c:{cid}:ids                | hash   | contact_ttl_seconds (identifiers)           |
| P:c:{cid}:pv / :pvd          | zset/hash | contact_ttl_seconds, capped recent_views |
| P:c:{cid}:cv                 | zset   | contact_ttl_seconds, capped recent_views    |
| P:c:{cid}:ev                 | list   | contact_ttl_seconds, capped contact_events  |
| P:c:{cid}:visit              | hash   | contact_ttl_seconds (the open visit)        |
| P:c:{cid}:rfm                | hash   | contact_ttl_seconds (DELIVERED order RFM)   |
| P:c:{cid}:rfmo               | hash   | contact_ttl_seconds (each counted order's share) |
| P:c:{cid}:into               | string | contact_ttl_seconds (stitched away: into which) |
| P:visits                     | zset   | one member per open visit, removed on close |
| P:cart:<recycleStateId>      | hash   | cart_ttl_seconds (cart state, its order)    |
| P:o:{eoid}                   | hash   | contact_ttl_seconds (order meta: status...) |
| P:o:{eoid}:f / :h            | hash/list | contact_ttl_seconds (fields, history)    |
| P:triggers                   | stream | capped, MAXLEN ~ 1000000 (lib.lua)          |
| P:tally                      | hash   | visit/trigger counts, drained by detect.lua |
| P:wh:<hook>:due / :jobs / :tries | zset/hash | until delivered or dead-lettered     |
| P:wh:dead                    | list   | capped, newest 10000 dead letters           |

Per-contact values kept small, since every active contact holds them: `:pv` scores are view
times (ms); `:pvd` maps productId to `<lag>|<currencyCode>|<the view's other fields as JSON,
without braces>` (viewedAt = score - lag; model/recommendations.py), or, for a view that does not
fit that form, its whole JSON; `:ev` entries are `<type>|<stream id>`, the type as an EVENT_CODES
code where it has one.

The Lua scripts receive the prefix and build the same names; `CONTACT_SUFFIXES` is the list they
share with this module (passed in, never repeated by hand).
"""

from __future__ import annotations

from dataclasses import dataclass

# Suffixes of every per-contact key; the stitching merge and TTL refresh walk this list.
CONTACT_SUFFIXES = ("", ":ids", ":pv", ":pvd", ":cv", ":ev", ":visit", ":rfm", ":rfmo")

# Short codes a contact's :ev list stores for the common event types ("<code>|<stream id>"); the
# "*" keeps them apart from every eventTypeKey (those are A-Z a-z 0-9 _ . -), which other types
# store in full.
EVENT_CODES = {
    "pageViewed": "*pg",
    "productViewed": "*pv",
    "productCategoryViewed": "*cv",
    "cartUpdated": "*cu",
}
EVENT_TYPES = {code: event_type for event_type, code in EVENT_CODES.items()}

# Identifier kinds, in the order they decide which contact an event belongs to.
KIND_ORDER = (
    "contactId",
    "email",
    "phone",
    "pushToken",
    "contactKey",
    "customer",
    "key",
    "visitor",
)
# Kinds that let a trigger reach a person (docs/triggers.md); the others are anonymous.
REACHABLE_KINDS = frozenset({"contactId", "email", "phone", "pushToken", "contactKey"})


@dataclass(frozen=True, slots=True)
class TenantKeys:
    prefix: str

    @classmethod
    def for_tenant(cls, tenant_id: str) -> TenantKeys:
        return cls(prefix=f"gw:{tenant_id}")

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def triggers(self) -> str:
        """Trigger events (order<STATUS>, abandoned*), read by consumers, the feed, webhooks."""
        return f"{self.prefix}:triggers"

    @property
    def dead_letters(self) -> str:
        """Webhook deliveries that used up their retry budget (gateway/redis/lua/webhook.lua)."""
        return f"{self.prefix}:wh:dead"

    @property
    def visits(self) -> str:
        return f"{self.prefix}:visits"

    @property
    def tally(self) -> str:
        """Visit and trigger counts for /metrics: written by the scripts, drained by detect.lua."""
        return f"{self.prefix}:tally"

    def dedup(self, event_id: str) -> str:
        return f"{self.prefix}:dedup:{event_id}"

    def identifier(self, kind: str, value: str) -> str:
        return f"{self.prefix}:id:{kind}:{value}"

    def contact(self, contact_id: str, suffix: str = "") -> str:
        return f"{self.prefix}:c:{{{contact_id}}}{suffix}"

    def merged_into(self, contact_id: str) -> str:
        """Where a contact stitched into another now lives (lib.lua merge_contact)."""
        return self.contact(contact_id, ":into")

    def cart(self, recycle_state_id: str) -> str:
        return f"{self.prefix}:cart:{recycle_state_id}"

    def order(self, external_order_id: str, suffix: str = "") -> str:
        """An order: "" meta, ":f" fields (JSON texts), ":h" status history."""
        return f"{self.prefix}:o:{{{external_order_id}}}{suffix}"
