"""Architecture rules of the gateway package, read from its source (no module is imported).

- No import circle among gateway's modules: every import of a gateway module counts, at module
  level or not, `if TYPE_CHECKING:` included, absolute (`gateway.x.y`) or relative.
- No `gw:` string literal outside gateway/redis/keys.py: Redis key names are built there only
  (Python string literals, f-string parts included, and the Lua scripts' string literals).
- No module longer than 300 lines, unless its docstring (the top of the file) says why: the
  words "over 300 lines" followed by a reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.support.gateways import ROOT

PACKAGE = ROOT / "gateway"
KEYS = PACKAGE / "redis" / "keys.py"
MAX_LINES = 300
# "over 300 lines", then a reason of at least three words
JUSTIFIED = re.compile(r"over 300 lines\b[\s:,;.(-]*(?:\S+\s+){2,}\S")


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, modules: set[str]) -> Iterator[str]:
    """The gateway modules `path` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:  # `from gateway.x import y`, y a module
                    yield submodule
                elif source in modules:
                    yield source


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path) for path in python_files()}
    return {
        module_name(path): set(imported(path, modules)) - {module_name(path)}
        for path in python_files()
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def shortest_path(graph: dict[str, set[str]], group: set[str], source: str, goal: str) -> list[str]:
    """The shortest import path from `source` to `goal` within `group` (breadth first)."""
    paths = {source: [source]}
    queue = [source]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & group):
            if target == goal:
                return [*paths[node], goal]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"{goal} is not reachable from {source}")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """For every group of modules that import each other, the shortest circle through each of
    them: a path that ends where it starts."""
    found: list[list[str]] = []
    for group in strongly_connected(graph):
        for member in sorted(group):
            shortest = min(
                (
                    [member, *shortest_path(graph, group, step, member)]
                    for step in sorted(graph[member] & group)
                ),
                key=len,
            )
            first = shortest.index(min(shortest))  # the same circle, from its first module
            circle = shortest[first:-1] + shortest[:first] + [shortest[first]]
            if circle not in found:
                found.append(circle)
    return found


def test_no_import_cycles_among_gateway_modules() -> None:
    graph = import_graph()
    assert "gateway.app" in graph and graph["gateway.app"], "the source was not read"
    found = cycles(graph)
    assert not found, "import cycles (TYPE_CHECKING imports included):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


def lua_strings(text: str) -> Iterator[str]:
    """The string literals of a Lua script, comments left out."""
    token = re.compile(
        r"--\[(=*)\[.*?\]\1\]|--[^\n]*"  # comments
        r"|\[(=*)\[(.*?)\]\2\]"  # long strings
        r"|'((?:\\.|[^'\\\n])*)'|\"((?:\\.|[^\"\\\n])*)\"",
        re.S,
    )
    for match in token.finditer(text):
        literal = match.group(3) or match.group(4) or match.group(5)
        if literal is not None:
            yield literal


def test_redis_key_names_are_spelled_in_keys_py_only() -> None:
    spelled = []
    for path in python_files():
        if path == KEYS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "gw:" in node.value:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    scripts = sorted(PACKAGE.rglob("*.lua"))
    assert scripts, "no Lua script found"
    for path in scripts:
        literals = lua_strings(path.read_text())
        spelled += [f"{path.relative_to(ROOT)}: {s!r}" for s in literals if "gw:" in s]
    assert not spelled, "`gw:` outside gateway/redis/keys.py:\n" + "\n".join(spelled)


def test_no_module_over_300_lines_without_a_reason() -> None:
    long = []
    for path in python_files():
        lines = len(path.read_text().splitlines())
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if not JUSTIFIED.search(" ".join(docstring.split())):
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, (
        f"modules over {MAX_LINES} lines whose docstring gives no reason "
        '("over 300 lines" and why):\n' + "\n".join(long)
    )
