"""The Lua scripts: loaded from gateway/redis/lua, completed by the template step, sent by SHA.

A script is lib.lua, then every lib_<topic>.lua in name order, then <name>.lua. The template step
replaces each `{{NAME}}` in that text with generated Lua (`lua_tables`): the key builders of
keys.py, the argument readers of arguments.py, and the constants Python shares with the scripts
(constants.py, keys.py), so no script repeats one by hand. Then the library functions the script
never reaches are dropped (pruning.py): Redis would make each of them again on every call.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from string import Formatter
from typing import Any

from gateway.redis.arguments import ARGS_HEAD, ENVELOPE, SCRIPT_ARGS, lua_reader
from gateway.redis.constants import (
    EVENT_CODES,
    IDENTIFIER_FIELD,
    LIST_CODES,
    LIST_DIGITS,
    ORDER_IDENTIFIERS,
    ORDER_PERSONAL_FIELDS,
    PUBLIC_NAMES,
    REACHABLE_KINDS,
    TALLY_ANONYMOUS,
    TALLY_CLOSED,
    TALLY_CONVERTED,
    TALLY_REVENUE,
    TALLY_SUPPRESSED,
    TALLY_TRIGGER,
    TRIGGER_CONVERTED,
    VISIT_FIELD,
    VISIT_FIELDS,
    VISIT_TRIGGERS,
    WHOLE_CALL_ERRORS,
)
from gateway.redis.keys import (
    ERASURE_TTL,
    KEYSPACE,
    MAX_DEAD,
    ORDER_HISTORY_MAX,
    PREFIX,
    REFUSED_MAX,
    REFUSED_SECONDS,
    STATS_MINUTES,
    TRIGGER_STATS_TTL,
    TRIGGERS_MAXLEN,
    WATCH_TOLD,
)
from gateway.redis.pruning import prune

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    text: str
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        folder = resources.files("gateway.redis") / "lua"
        extra = sorted(f.name for f in folder.iterdir() if f.name.startswith("lib_"))
        parts = ["lib.lua", *extra, f"{name}.lua"]
        tables = lua_tables()
        text = prune(
            PLACEHOLDER.sub(
                lambda found: tables[found[1]], "\n".join((folder / p).read_text() for p in parts)
            )
        )
        return cls(name, text, hashlib.sha1(text.encode()).hexdigest())


def lua_tables() -> dict[str, str]:
    """The Lua text each `{{NAME}}` stands for."""
    return {
        "ARGS_HEAD": ARGS_HEAD,
        "KEYSPACE": lua_key_helpers(),
        **{args.__name__: lua_reader(args) for args in SCRIPT_ARGS},
        # ingest.lua's names for the envelope's places: `local ID, DEDUP, ... = 1, 2, ...`
        "ENVELOPE_NAMES": ", ".join(place.upper() for place in ENVELOPE),
        "ENVELOPE_PLACES": ", ".join(str(n) for n in range(1, len(ENVELOPE) + 1)),
        "TRIGGERS_MAXLEN": lua_value(TRIGGERS_MAXLEN),
        "MAX_DEAD": lua_value(MAX_DEAD),
        "REFUSED_MAX": lua_value(REFUSED_MAX),
        "REFUSED_SECONDS": lua_value(REFUSED_SECONDS),
        "STATS_SECONDS": lua_value((STATS_MINUTES + 1) * 60),
        "ORDER_HISTORY_MAX": lua_value(ORDER_HISTORY_MAX),
        "REACHABLE_KINDS": lua_value(dict.fromkeys(sorted(REACHABLE_KINDS), True)),
        "PUBLIC_NAMES": lua_value(PUBLIC_NAMES),
        "ORDER_IDENTIFIERS": lua_value(list(ORDER_IDENTIFIERS.items())),
        "EVENT_CODES": lua_value(EVENT_CODES),
        "LIST_CODES": lua_value(LIST_CODES),
        "LIST_DIGITS": lua_value(LIST_DIGITS),
        "IDENTIFIER_FIELD": lua_value(IDENTIFIER_FIELD),
        "VISIT_FIELD": lua_value(VISIT_FIELD),
        "VISIT_FIELDS": lua_value(list(VISIT_FIELDS)),
        "VISIT_NAMES": lua_value([field.removeprefix(VISIT_FIELD) for field in VISIT_FIELDS]),
        "WHOLE_CALL_ERRORS": lua_value(WHOLE_CALL_ERRORS),
        "ERASURE_TTL": lua_value(ERASURE_TTL),
        "ORDER_PERSONAL_FIELDS": lua_value(ORDER_PERSONAL_FIELDS),
        "WATCH_TOLD": lua_value(WATCH_TOLD),
        # values for `local A, B, ... = {{NAME}}`
        "VISIT_TRIGGERS": ", ".join(lua_value(kind) for kind in VISIT_TRIGGERS),
        "TALLY": ", ".join(lua_value(f) for f in (TALLY_CLOSED, TALLY_ANONYMOUS, TALLY_TRIGGER)),
        "POLICY_TALLY": ", ".join(
            lua_value(f) for f in (TALLY_SUPPRESSED, TALLY_CONVERTED, TALLY_REVENUE)
        ),
        "TRIGGER_STATS_TTL": lua_value(TRIGGER_STATS_TTL),
        "TRIGGER_CONVERTED": lua_value(TRIGGER_CONVERTED),
    }


def lua_key_helpers() -> str:
    """A Lua builder of each KEYSPACE key (`local function K_cart(recycle_state_id) return P ..
    ':cart:' .. recycle_state_id end`, a string for a key without parts), `K_contact_keys`: every
    key stitching moves, and TENANT: the tenant id, read back from the prefix P."""
    (head, _, _, _), *rest = Formatter().parse(PREFIX)
    tail = "".join(text for text, _, _, _ in rest)
    lines = [f"local TENANT = string.sub(P, {len(head) + 1}, {-len(tail) - 1})"]
    for name, key in KEYSPACE.items():
        pieces, params, text = ["P"], [], ""
        for literal, field, _, _ in Formatter().parse(key.template):
            text += literal  # str.format's parts split text at an escaped brace
            if field is not None:
                pieces += [lua_value(text), field] if text else [field]
                params.append(field)
                text = ""
        built = " .. ".join(pieces + [lua_value(text)] if text else pieces)
        if params:
            lines.append(f"local function K_{name}({', '.join(params)}) return {built} end")
        else:
            lines.append(f"local K_{name} = {built}")
    moved = ", ".join(f"K_{name}(contact_id)" for name, k in KEYSPACE.items() if k.contact_part)
    lines.append(f"local function K_contact_keys(contact_id) return {{{moved}}} end")
    return "\n".join(lines)


def lua_value(value: Any) -> str:
    """A Python constant as a Lua literal: strings, numbers, booleans, tuples and lists (arrays),
    dicts whose keys are Lua names (tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, tuple | list):
        return "{" + ", ".join(lua_value(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {lua_value(v)}" for key, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {value!r}")
