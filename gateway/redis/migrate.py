"""`gateway migrate`: move data of the earlier key layout (keys.LEGACY_PREFIX: the tenant id
without braces) into the current one (keys.PREFIX: every key of a tenant in its Redis Cluster
slot).

Each key is copied whole with DUMP and RESTORE (its type, value, stream consumer groups and
remaining lifetime), then the old key is deleted: the new name may live on another cluster node,
where RENAME cannot go. Idempotent and resumable: a run killed part-way leaves keys that are
either still under their old name (moved by the next run) or already copied (RESTORE REPLACE
copies the same value again before the old key goes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gateway.redis.connection import Client
from gateway.redis.keys import KEY_ROOT, TenantKeys, current_key

log = logging.getLogger("gateway.migrate")
SCAN_COUNT = 1000


@dataclass
class Counts:
    moved: dict[str, int] = field(default_factory=dict)  # per tenant
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
