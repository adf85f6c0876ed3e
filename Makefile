# `make run` and `make test` work on a fresh machine with only Python 3.11: they create .venv and
# install what they need (the test target also Debian's chromium, for the snippet's browser tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint audit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway serve $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check gateway tests
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) audit
	$(BIN)/ruff check gateway tests
	$(BIN)/ruff format --check gateway tests
	$(BIN)/mypy

# Known vulnerabilities in every installed dependency (PyPI's advisory data); the gateway itself
# is not on PyPI, hence --skip-editable. --strict: a package it cannot check is a failure.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) .gateway-data .coverage
