"""`gateway migrate`: move data of the earlier key layouts into the current one: keys named
without braces around the tenant (keys.LEGACY_PREFIX) into their tenant's Redis Cluster slot
(keys.PREFIX), then open visits kept in a hash of their own (keys.UNFOLDED_VISIT) into their
contact's hash (constants.VISIT_FIELDS).

Each key is copied whole with DUMP and RESTORE (its type, value, stream consumer groups and
remaining lifetime), then the old key is deleted: the new name may live on another cluster node,
where RENAME cannot go. Idempotent and resumable: a run killed part-way leaves keys that are
either still under their old name (moved by the next run) or already copied (RESTORE REPLACE
copies the same value again before the old key goes).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import cast

from gateway.redis.connection import Client
from gateway.redis.constants import VISIT_FIELD
from gateway.redis.keys import KEY_ROOT, UNFOLDED_VISIT, TenantKeys, current_key

log = logging.getLogger("gateway.migrate")
SCAN_COUNT = 1000
UNFOLDED = re.compile(r"gw:\{(.+?)\}:c:\{(.+)\}" + re.escape(UNFOLDED_VISIT), re.DOTALL)
CHECKED_VISITS = (
    100  # open visits per tenant `gateway serve` looks at (tenants_with_unfolded_visits)
)


@dataclass
class Counts:
    moved: dict[str, int] = field(default_factory=dict)  # per tenant
    visits: dict[str, int] = field(default_factory=dict)  # open visits folded, per tenant
    skipped: int = 0  # gone between SCAN and DUMP (expired, or moved by a concurrent run)

    @property
    def total(self) -> int:
        return sum(self.moved.values())


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


async def fold_open_visits(client: Client, counts: Counts) -> None:
    """Each open visit kept in a hash of its own becomes fields of its contact's hash. Idempotent:
    a run killed between the two writes sets the same fields again, then deletes the old hash."""
    match = f"{KEY_ROOT}[{{]*}}:c:[{{]*}}{UNFOLDED_VISIT}".encode()
    async for old in client.scan_iter(match=match, count=SCAN_COUNT):
        found = UNFOLDED.fullmatch(old.decode())
        if found is None:
            continue
        tenant, contact_id = found.groups()
        contact = TenantKeys.for_tenant(tenant).contact(contact_id)
        visit = cast(dict[bytes, bytes], await client.hgetall(old))
        if visit and await client.exists(contact):  # else the contact expired: nothing to keep
            fields = [part for n, v in visit.items() for part in (VISIT_FIELD + n.decode(), v)]
            await client.hset(contact, items=fields)
            counts.visits[tenant] = counts.visits.get(tenant, 0) + 1
        await client.delete(old)


async def tenants_with_unfolded_visits(client: Client, tenants: list[str]) -> list[str]:
    """The configured tenants among whose CHECKED_VISITS first due open visits one is still kept
    in a hash of its own. Before `gateway migrate` every open visit is; after, none is."""
    found = []
    for tenant in tenants:
        keys = TenantKeys.for_tenant(tenant)
        contacts = cast(list[bytes], await client.zrange(keys.visits, 0, CHECKED_VISITS - 1))
        olds = [keys.contact(c.decode(), UNFOLDED_VISIT) for c in contacts]
        if olds and await client.exists(*olds):
            found.append(tenant)
    return found
