"""Paging back through a stream, newest first, with an optional filter: `GET /v1/events` and
`GET /v1/triggers?before=` (their `before` cursor, docs/api.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.http import MAX_SCAN, PAGE
from gateway.redis.reads import Hash, StreamEntry

# A stream's entries from an XREVRANGE end ("+", or "(<id>" for those older than it), at most
# `count`, newest first.
ReadBack = Callable[[str, int], Awaitable[list[StreamEntry]]]


async def newest_first(
    read: ReadBack, before: str | None, keep: Callable[[Hash], bool] | None, limit: int
) -> tuple[list[StreamEntry], str | None]:
    """At most `limit` entries older than the stream id `before` (None: from the newest) that
    `keep` takes (None: all), at most MAX_SCAN read; and the cursor to pass on (None: the stream
    is read to its start)."""
    if before == "0-0":  # nothing is older (and Redis refuses the exclusive range)
        return [], None
    found: list[StreamEntry] = []
    cursor = before
    scanned = 0
    while len(found) < limit and scanned < MAX_SCAN:
        # Unfiltered, the first `limit` are all it needs; filtered, a page at a time.
        count = min(limit if keep is None else PAGE, MAX_SCAN - scanned)
        rows = await read("+" if cursor is None else "(" + cursor, count)
        scanned += len(rows)
        read_all = True
        for row in rows:
            cursor = row[0].decode()
            if keep is None or keep(row[1]):
                found.append(row)
                if len(found) == limit:
                    read_all = row is rows[-1]
                    break
        if len(rows) < count and read_all:
            return found, None
    return found, cursor
