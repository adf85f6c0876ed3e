# `make run` works on a fresh machine with only Python 3.11: it creates .venv and installs the
# gateway's runtime packages there. `make test` installs the test and lint tools on top, and
# Debian's chromium and node (apt-get) for the snippet's browser and unit tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp
# The runtime dependencies at the lowest versions pyproject.toml admits (.ci/lower_bounds.py).
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed-stamp

.PHONY: run test test-oldest lint audit bench clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# ok-esputnik, a real eSputnik client the tests drive, pins trafaret 1.2.0 (which does not import
# on Python 3.11): it is installed without its pins, beside trafaret>=2.1 (the test extra).
ESPUTNIK_CLIENT := ok-esputnik==0.3

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	$(BIN)/python -m pip install --quiet --no-deps '$(ESPUTNIK_CLIENT)'
	touch $(STAMP)

$(OLDEST_STAMP): pyproject.toml
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	pins=$$($(PYTHON) .ci/lower_bounds.py) && \
		$(OLDEST)/bin/python -m pip install --quiet -e '.[test]' $$pins
	$(OLDEST)/bin/python -m pip install --quiet --no-deps '$(ESPUTNIK_CLIENT)'
	touch $(OLDEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/gateway serve $(ARGS)

test: $(STAMP) browser snippet-check
	$(BIN)/ruff check gateway tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) test-oldest

# The suite again on the lowest versions of the runtime dependencies that pyproject.toml admits
# (no coverage: the run above holds the floor).
test-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/pytest --no-cov $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gateway tests benchmarks
	$(BIN)/ruff format --check gateway tests benchmarks
	$(BIN)/mypy

# Installs wrk from Debian's packages where missing; see benchmarks/README.md.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

.PHONY: browser snippet-check snippet

# Debian's chromium for the snippet's browser tests (a Playwright browser download cannot work
# offline), and node for its unit tests.
browser:
	command -v chromium >/dev/null && command -v node >/dev/null || \
		(apt-get update && apt-get install -y chromium nodejs)

# The snippet's unit tests and its size budget; the committed build means no npm is needed here.
snippet-check:
	node --test --test-reporter=spec js_snippet/test/*.test.js
	@size=$$(gzip -9c gateway/static/tracker.js | wc -c); \
		echo "gateway/static/tracker.js: $$size bytes gzipped (budget 2250)"; \
		test $$size -le 2250

# Rebuild gateway/static/tracker.js from js_snippet/src (commit the result).
snippet:
	cd js_snippet && npm ci && npm run build

# Known vulnerabilities in every installed dependency (PyPI's advisory data); the gateway itself
# is not on PyPI, hence --skip-editable. --strict: a package it cannot check is a failure.
# Not part of `lint`: it needs PyPI's JSON API or osv.dev, which the project's build machines
# cannot reach (there it fails on every package), so run it where they are reachable.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) $(OLDEST) .gateway-data .coverage
