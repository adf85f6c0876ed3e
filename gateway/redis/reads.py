"""What the API and the background tasks read from Redis, as Store methods (Store inherits them).

Each method builds its keys with TenantKeys and answers what Redis answered (bytes), typed; the
callers turn it into their answers. Redis errors are left to the callers' handlers (503 or 500).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from gateway.redis.connection import Client
from gateway.redis.constants import IDENTIFIER_FIELD
from gateway.redis.keys import TenantKeys

Hash = dict[bytes, bytes]
Scored = list[tuple[bytes, float]]  # members with their scores, highest first
StreamEntry = tuple[bytes, Hash]  # (stream id, fields)


def fields_under(contact: Hash, prefix: str) -> Hash:
    """The fields of a contact hash named `<prefix><name>` (its identifiers, its open visit:
    constants.py), by `<name>`."""
    mark = prefix.encode()
    return {name[len(mark) :]: value for name, value in contact.items() if name.startswith(mark)}


@dataclass(frozen=True, slots=True)
class HookSchedule:
    """One webhook's side of some triggers (webhook.lua): where its consumer group has read to
    (None: no group yet), where it started ("since"; None: not kept), and per trigger its due
    time (ms), attempts made and dead time (ms), each None where it has none."""

    read_to: bytes | None
    since: bytes | None
    due: list[float | None]
    tries: list[bytes | None]
    dead: list[float | None]


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact's keys read in one transaction (so they agree with each other)."""

    profile: Hash  # with its identifiers and open visit (keys.py)
    product_order: Scored  # productId -> view ms
    product_views: Hash  # productId -> stored view (keys.py)
    categories: Scored  # productCategoryId -> view ms

    @property
    def identifiers(self) -> Hash:
        """ "<kind>:<value>" -> ms first seen."""
        return fields_under(self.profile, IDENTIFIER_FIELD)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order's keys read in one transaction."""

    meta: Hash
    fields: Hash  # field -> JSON text
    history: list[bytes]  # status changes as JSON, oldest first


class Reads:
    __slots__ = ()
    redis: Client
    transactions: bool  # MULTI where the client has it (Store)

    async def named_contacts(
        self, keys: TenantKeys, identifiers: Sequence[tuple[str, str]]
    ) -> list[str | None]:
        """The contact each (kind, value) identifier names, None when it names none."""
        if not identifiers:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for kind, value in identifiers:
                pipe.get(keys.identifier(kind, value))
            found = await pipe.execute()
        return [None if contact_id is None else contact_id.decode() for contact_id in found]

    async def contact_states(
        self, keys: TenantKeys, contact_ids: Sequence[str]
    ) -> list[tuple[bool, str | None]]:
        """Per contact id: whether it exists, and the contact it was stitched into, if any."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for contact_id in contact_ids:
                pipe.exists(keys.contact(contact_id))
                pipe.get(keys.merged_into(contact_id))
            replies = await pipe.execute()
        return [
            (bool(exists), None if into is None else into.decode())
            for exists, into in zip(replies[::2], replies[1::2], strict=True)
        ]

    async def contact_record(self, keys: TenantKeys, contact_id: str) -> ContactRecord:
        async with self.redis.pipeline(transaction=self.transactions) as pipe:
            pipe.hgetall(keys.contact(contact_id))
            pipe.zrevrange(keys.contact(contact_id, ":pv"), 0, -1, withscores=True)
            pipe.hgetall(keys.contact(contact_id, ":pvd"))
            pipe.zrevrange(keys.contact(contact_id, ":cv"), 0, -1, withscores=True)
            return ContactRecord(*await pipe.execute())

    async def contact_rfm(self, keys: TenantKeys, contact_id: str) -> Hash:
        """The RFM figures of the contact's DELIVERED orders (lib_orders.lua update_rfm)."""
        return cast(Hash, await self.redis.hgetall(keys.contact(contact_id, ":rfm")))

    async def contact_event_ids(
        self, keys: TenantKeys, contact_id: str, count: int, start: int = 0
    ) -> list[bytes]:
        """`count` entries of the contact's event list from `start`, newest first (keys.py)."""
        key = keys.contact(contact_id, ":ev")
        return cast(list[bytes], await self.redis.lrange(key, start, start + count - 1))

    async def events_by_id(self, keys: TenantKeys, stream_ids: Sequence[str]) -> list[Hash | None]:
        """The fields of each event the tenant's stream still holds, None for one trimmed away."""
        if not stream_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream_id in stream_ids:
                pipe.xrange(keys.events, stream_id, stream_id)
            found = await pipe.execute()
        return [rows[0][1] if rows else None for rows in found]

    async def events_before(self, keys: TenantKeys, last: str, count: int) -> list[StreamEntry]:
        """At most `count` events of the tenant's stream from `last` back, newest first."""
        return cast(
            list[StreamEntry], await self.redis.xrevrange(keys.events, last, "-", count=count)
        )

    async def refused_before(
        self, keys: TenantKeys, last: str, since_ms: int, count: int
    ) -> list[StreamEntry]:
        """At most `count` entries of the refused-request log from `last` back to the time
        `since_ms`, newest first. (refused.lua trims older ones only when it next writes.)"""
        return cast(
            list[StreamEntry],
            await self.redis.xrevrange(keys.refused, last, str(since_ms), count=count),
        )

    async def minute_counts(self, keys: TenantKeys, minutes: Sequence[int]) -> list[Hash]:
        """The counts of each minute (minutes since the epoch; keys.py `stats`)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(keys.stats(minute))
            return cast(list[Hash], await pipe.execute())

    async def triggers_after(self, keys: TenantKeys, first: str, count: int) -> list[StreamEntry]:
        """At most `count` triggers from `first` on, oldest first."""
        return cast(
            list[StreamEntry], await self.redis.xrange(keys.triggers, first, "+", count=count)
        )

    async def trigger_stats(self, keys: TenantKeys, days: Sequence[str]) -> list[Hash]:
        """The figures of each UTC day (YYYY-MM-DD) of `days` (docs/triggers.md, Stats)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.trigger_stats(day))
            return cast(list[Hash], await pipe.execute())

    async def triggers_before(self, keys: TenantKeys, last: str, count: int) -> list[StreamEntry]:
        """At most `count` triggers from `last` back, newest first."""
        return cast(
            list[StreamEntry], await self.redis.xrevrange(keys.triggers, last, "-", count=count)
        )

    async def webhook_schedules(
        self, keys: TenantKeys, hooks: Sequence[tuple[str, str]], stream_ids: list[str]
    ) -> list[HookSchedule]:
        """What each webhook (its id, its consumer group) holds of these triggers, in one round
        trip: 1 + 4 commands per webhook, whatever the number of triggers."""
        async with self.redis.pipeline(transaction=self.transactions) as pipe:
            pipe.xinfo_groups(keys.triggers)
            for hook, _ in hooks:
                pipe.get(keys.webhook(hook, "since"))
                pipe.zmscore(keys.webhook(hook, "due"), stream_ids)
                pipe.hmget(keys.webhook(hook, "tries"), stream_ids)
                pipe.zmscore(keys.webhook(hook, "dead"), stream_ids)
            groups, *found = await pipe.execute()
        read_to = {group["name"]: group["last-delivered-id"] for group in groups}
        return [
            HookSchedule(read_to.get(group.encode()), *found[4 * n : 4 * n + 4])
            for n, (_, group) in enumerate(hooks)
        ]

    async def webhook_counts(self, keys: TenantKeys, hooks: Sequence[str]) -> list[int]:
        """Each webhook's scheduled deliveries and dead stream ids kept, two numbers a webhook."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for hook in hooks:
                pipe.zcard(keys.webhook(hook, "due"))
                pipe.zcard(keys.webhook(hook, "dead"))
            return [int(count) for count in await pipe.execute()]

    async def contact_order_ids(self, keys: TenantKeys, contact_id: str) -> list[str]:
        """The externalOrderIds of the contact's orders, sorted."""
        found = cast(set[bytes], await self.redis.smembers(keys.contact_orders(contact_id)))
        return sorted(order_id.decode() for order_id in found)

    async def erasure_record(self, keys: TenantKeys, erasure_id: str) -> Hash:
        """An erasure's state and counts (erase.lua)."""
        return cast(Hash, await self.redis.hgetall(keys.erasure(erasure_id)))

    async def dead_letters(self, keys: TenantKeys, count: int) -> list[bytes]:
        """The newest `count` dead letters, newest first."""
        return cast(list[bytes], await self.redis.lrange(keys.dead_letters, 0, count - 1))

    async def destination_dead(self, keys: TenantKeys, last: str, count: int) -> list[StreamEntry]:
        """Destinations' dead letters from `last` (a stream id, "(id" exclusive, or "+") back."""
        return cast(
            list[StreamEntry],
            await self.redis.xrevrange(keys.destination_dead, last, "-", count=count),
        )

    async def destination_queue(self, keys: TenantKeys, destination: str) -> tuple[int, str | None]:
        """A destination's undelivered jobs: how many, and the oldest one's stream id."""
        queue = keys.destination(destination, "q")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(queue)
            pipe.xrange(queue, "-", "+", count=1)
            length, first = await pipe.execute()
        return int(length), first[0][0].decode() if first else None

    async def order_record(self, keys: TenantKeys, external_order_id: str) -> OrderRecord:
        async with self.redis.pipeline(transaction=self.transactions) as pipe:
            pipe.hgetall(keys.order(external_order_id))
            pipe.hgetall(keys.order(external_order_id, ":f"))
            pipe.lrange(keys.order(external_order_id, ":h"), 0, -1)
            return OrderRecord(*await pipe.execute())

    async def product(self, keys: TenantKeys, product_id: str) -> Hash:
        """A product's catalog state: field -> JSON text, and updatedAt (ms)."""
        return cast(Hash, await self.redis.hgetall(keys.product(product_id)))

    async def cart_state(self, keys: TenantKeys, recycle_state_id: str) -> Hash:
        """A cart state with its cart: while that cart is its contact's current one, the JSON is
        the contact's (lib.lua release_cart). Read again once if it moved back in between."""
        for _ in range(2):
            state = cast(Hash, await self.redis.hgetall(keys.cart(recycle_state_id)))
            contact = state.get(b"contact")
            if b"cart" in state or contact is None:
                return state
            cart, current = cast(
                list[bytes | None],
                await self.redis.hmget(keys.contact(contact.decode()), "cart", "cartId"),
            )
            if cart is not None and current == recycle_state_id.encode():
                return {**state, b"cart": cart}
        return state
