"""Print the runtime dependencies of pyproject.toml pinned to their lower bounds (`make test`).

A lower bound that no test ran against is a guess: `gateway serve` once failed at start-up on
uvicorn 0.29, which pyproject.toml admitted, while the newest uvicorn passed every test.
"""

import re
import sys
import tomllib
from pathlib import Path

BOUND = re.compile(r"^([A-Za-z0-9_.-]+(?:\[[a-z,]+\])?)>=([0-9][0-9.]*)$")

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
pins = []
for requirement in project["dependencies"]:
    match = BOUND.match(requirement.replace(" ", ""))
    if match is None:
        sys.exit(f"{requirement!r}: every runtime dependency needs one `>=` lower bound")
    pins.append(f"{match[1]}=={match[2]}")
print(" ".join(pins))
