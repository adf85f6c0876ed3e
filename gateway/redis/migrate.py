"""`gateway migrate`: move data of the earlier key layouts into the current one: keys named
without braces around the tenant (keys.LEGACY_PREFIX) into their tenant's Redis Cluster slot
(keys.PREFIX), then a contact's identifiers and open visit kept in hashes of their own
(keys.UNFOLDED_IDS, UNFOLDED_VISIT) into the contact's hash (constants.IDENTIFIER_FIELD,
VISIT_FIELDS).

Each key is copied whole with DUMP and RESTORE (its type, value, stream consumer groups and
remaining lifetime), then the old key is deleted: the new name may live on another cluster node,
where RENAME cannot go. Idempotent and resumable: a run killed part-way leaves keys that are
either still under their old name (moved by the next run) or already copied (RESTORE REPLACE
copies the same value again before the old key goes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import cast

from gateway.redis.connection import Client, connect
from gateway.redis.constants import IDENTIFIER_FIELD, VISIT_FIELD
from gateway.redis.keys import (
    KEY_ROOT,
    UNFOLDED_IDS,
    UNFOLDED_KEY,
    UNFOLDED_VISIT,
    TenantKeys,
    current_key,
    unfolded_pattern,
)
from gateway.redis.reads import StreamEntry

log = logging.getLogger("gateway.migrate")
SCAN_COUNT = 1000
# The hashes an earlier layout kept beside a contact's own, and the prefix of their fields in it.
FOLDED = {UNFOLDED_IDS: IDENTIFIER_FIELD, UNFOLDED_VISIT: VISIT_FIELD}
CHECKED = 100  # open visits and events per tenant `gateway serve` looks at


@dataclass
class Counts:
    moved: dict[str, int] = field(default_factory=dict)  # per tenant
    # per tenant, per FOLDED suffix: the hashes folded into their contacts
    folded: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: int = 0  # gone between SCAN and DUMP (expired, or moved by a concurrent run)

    @property
    def total(self) -> int:
        return sum(self.moved.values())

    def report(self) -> list[str]:
        """What `gateway migrate` prints."""
        lines = [f"{tenant}: {moved} keys moved" for tenant, moved in sorted(self.moved.items())]
        lines.append(
            f"{self.total} keys moved in all; {self.skipped} gone before they could be moved"
        )
        for tenant, folded in sorted(self.folded.items()):
            ids, visits = folded[UNFOLDED_IDS], folded[UNFOLDED_VISIT]
            lines.append(
                f"{tenant}: the identifiers of {ids} contacts and {visits} open visits folded"
            )
        return lines


async def migrate_redis(url: str) -> Counts:
    """`gateway migrate` on the Redis at `url`: both steps, in their order."""
    client = connect(url)
    try:
        counts = await move_legacy_keys(client)
        await fold_into_contacts(client, counts)
        return counts
    finally:
        await client.aclose()


async def move_legacy_keys(client: Client, progress_every: int = 10_000) -> Counts:
    counts = Counts()
    # SCAN (every primary, on a cluster) returns each key there from start to end at least once;
    # the new names do not match the pattern.
    async for old in client.scan_iter(match=(KEY_ROOT + "[^{]*").encode(), count=SCAN_COUNT):
        new = current_key(old.decode())
        if new is None:  # not a key this gateway ever wrote
            continue
        tenant, name = new
        dumped = await client.dump(old)
        ttl = await client.pttl(old)
        if dumped is None or ttl == -2:
            counts.skipped += 1
            continue
        await client.restore(name, max(int(ttl), 0), dumped, replace=True)
        await client.delete(old)
        counts.moved[tenant] = counts.moved.get(tenant, 0) + 1
        if counts.total % progress_every == 0:
            log.info("migrating", extra={"moved": counts.total})
    return counts


async def tenants_on_legacy_layout(client: Client, tenants: list[str]) -> list[str]:
    """The configured tenants that still have data under the earlier layout (a few EXISTS per
    tenant: every tenant that ever took an event or an order has one of these keys)."""
    found = []
    for tenant in tenants:
        for key in TenantKeys.legacy(tenant).markers():
            if await client.exists(key):
                found.append(tenant)
                break
    return found


async def fold_into_contacts(client: Client, counts: Counts) -> None:
    """Each hash of a contact's identifiers or open visit kept beside the contact's own becomes
    fields of it. Idempotent: a run killed between the two writes sets the same fields again,
    then deletes the old hash."""
    for suffix, prefix in FOLDED.items():
        match = unfolded_pattern(suffix).encode()
        async for old in client.scan_iter(match=match, count=SCAN_COUNT):
            found = UNFOLDED_KEY.fullmatch(old.decode())
            if found is None:
                continue
            tenant, contact_id, _ = found.groups()
            contact = TenantKeys.for_tenant(tenant).contact(contact_id)
            kept = cast(dict[bytes, bytes], await client.hgetall(old))
            if kept and await client.exists(contact):  # else the contact expired: nothing to keep
                fields = [part for n, v in kept.items() for part in (prefix + n.decode(), v)]
                await client.hset(contact, items=fields)
                folded = counts.folded.setdefault(tenant, dict.fromkeys(FOLDED, 0))
                folded[suffix] += 1
            await client.delete(old)


async def tenants_with_unfolded_hashes(client: Client, tenants: list[str]) -> list[str]:
    """The configured tenants where a contact of the CHECKED first due open visits or of the
    CHECKED newest events still has a hash kept beside its own. Before `gateway migrate` every
    contact has; after, none has."""
    found = []
    for tenant in tenants:
        keys = TenantKeys.for_tenant(tenant)
        visiting = cast(list[bytes], await client.zrange(keys.visits, 0, CHECKED - 1))
        recent = cast(list[StreamEntry], await client.xrevrange(keys.events, count=CHECKED))
        contacts = {c.decode() for c in visiting}
        contacts |= {f[b"c"].decode() for _, f in recent if b"c" in f}
        olds = [keys.contact(c, suffix) for c in sorted(contacts) for suffix in FOLDED]
        if olds and await client.exists(*olds):
            found.append(tenant)
    return found
