"""The Lua scripts: loaded from gateway/redis/lua, completed by the template step, sent by SHA."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from gateway.model.events import ENVELOPE
from gateway.model.identity import PUBLIC_NAMES
from gateway.redis.keys import CONTACT_SUFFIXES, EVENT_CODES, REACHABLE_KINDS


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    text: str
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        folder = resources.files("gateway.redis") / "lua"
        # Further libraries (lib_<topic>.lua) follow lib.lua, in name order.
        extra = sorted(f.name for f in folder.iterdir() if f.name.startswith("lib_"))
        parts = ["lib.lua", *extra, f"{name}.lua"]
        text = "\n".join((folder / part).read_text() for part in parts)
        for constant, value in lua_tables().items():
            text = text.replace("{{" + constant + "}}", value)
        return cls(name, text, hashlib.sha1(text.encode()).hexdigest())


def lua_tables() -> dict[str, str]:
    """Python constants the scripts need as Lua text (kept in one place, never copied by hand)."""
    suffixes = ", ".join(f"'{suffix}'" for suffix in CONTACT_SUFFIXES)
    reachable = ", ".join(f"{kind} = true" for kind in sorted(REACHABLE_KINDS))
    names = ", ".join(f"{kind} = '{name}'" for kind, name in PUBLIC_NAMES.items())
    codes = ", ".join(f"{ty} = '{code}'" for ty, code in EVENT_CODES.items())
    return {
        "CONTACT_SUFFIXES": "{" + suffixes + "}",
        "REACHABLE_KINDS": "{" + reachable + "}",
        "PUBLIC_NAMES": "{" + names + "}",
        "EVENT_CODES": "{" + codes + "}",
        # The ingest envelope's places (events.ENVELOPE): `local ID, DEDUP, ... = 1, 2, ...`.
        "ENVELOPE_NAMES": ", ".join(place.upper() for place in ENVELOPE),
        "ENVELOPE_PLACES": ", ".join(str(n) for n in range(1, len(ENVELOPE) + 1)),
    }
