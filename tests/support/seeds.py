"""The JSON examples of the eSputnik seed documents, extracted exactly as printed."""

from __future__ import annotations

from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seed_docs"


def seed_text(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text()


def json_blocks(text: str, must_contain: str) -> list[str]:
    """Every balanced {...} block of the text that mentions `must_contain`, byte for byte."""
    blocks, depth, start, in_string, escaped = [], 0, -1, False, False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"' and depth:
            in_string = True
        elif char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0 and must_contain in text[start : i + 1]:
                blocks.append(text[start : i + 1])
    return blocks
