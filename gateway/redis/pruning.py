"""Drop from a script the library functions and constants it never reaches (scripts.py calls
`prune`).

Redis 6.2 runs a script's whole text on every call: each `local function` of its top level makes
a closure then (~0.3-0.6 µs on the bench machine, more for one that captures locals declared long
before it: Lua walks its list of open upvalues), each table constant is built again. Every
script shares lib.lua and the lib_*.lua files, ~80 functions and ~30 constants, yet `rate.lua`,
called per request where a rate limit is set, uses none of them (benchmarks/README.md, ninth
round).

The text is cut into top-level statements: from a line where no block or bracket is open to the
line that closes all it opened (`function`, `if` and `do` against `end`; brackets; outside
strings and comments). A statement is dropped when it declares a `local function`, or locals
from an expression that calls nothing of Redis and no function of the script, and no kept
statement mentions what it declares. Everything else is kept, and so is whatever a kept
statement mentions, until nothing more is reached. A name mentioned anywhere keeps its
declaration, so the test errs on the side of keeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FUNCTION = re.compile(r"local function ([A-Za-z_][A-Za-z0-9_]*)")
DECLARATION = re.compile(r"local ([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\b")
# Lua's short strings and comments (the scripts have no long brackets `[[...]]`).
QUOTED = re.compile(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|--[^\n]*")
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[][(){}]")
OPENS = frozenset({"function", "if", "do", "(", "[", "{"})
CLOSES = frozenset({"end", ")", "]", "}"})


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    declares: tuple[str, ...]  # the locals it declares, if dropping it is safe; else ()
    names: frozenset[str]  # the names it mentions, outside strings and comments
    function: bool


def statements(text: str) -> list[Statement]:
    tokens_of = [TOKEN.findall(QUOTED.sub(" ", line)) for line in text.split("\n")]
    groups: list[tuple[list[str], list[str]]] = []
    depth = 0
    for line, tokens in zip(text.split("\n"), tokens_of, strict=True):
        if depth == 0:
            groups.append(([], []))
        groups[-1][0].append(line)
        groups[-1][1].extend(tokens)
        depth += sum(t in OPENS for t in tokens) - sum(t in CLOSES for t in tokens)
    found = []
    for lines, tokens in groups:
        body = "\n".join(lines)
        names = frozenset(t for t in tokens if t[0].isalpha() or t[0] == "_")
        function = FUNCTION.match(body)
        declared = DECLARATION.match(body) if function is None else None
        if function is not None:
            found.append(Statement(body, (function[1],), names, True))
        elif declared is not None:
            local = tuple(name.strip() for name in declared[1].split(","))
            found.append(Statement(body, local, names, False))
        else:
            found.append(Statement(body, (), names, False))
    return found


def prune(text: str) -> str:
    """`text` without the top-level functions and pure declarations nothing else reaches."""
    parts = statements(text)
    functions = {name for part in parts if part.function for name in part.declares}
    declared: dict[str, list[int]] = {}
    roots = []
    for index, part in enumerate(parts):
        # a declaration whose expression may do something (Redis, a function of the script) runs
        pure = part.function or not (part.names & ({"redis"} | functions))
        if part.declares and pure:
            for name in part.declares:
                declared.setdefault(name, []).append(index)
        else:
            roots.append(index)
    kept, todo = set(roots), list(roots)
    while todo:
        for name in parts[todo.pop()].names:
            for index in declared.get(name, ()):
                if index not in kept:
                    kept.add(index)
                    todo.append(index)
    return "\n".join(part.text for index, part in enumerate(parts) if index in kept)
