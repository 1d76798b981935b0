# Lockgate. The two commands a newcomer needs: `make run` and `make test` (README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install ui ui-deps ui-test run test pytest lint fmt typecheck bench clean

help:
	@echo "make run    - install into .venv, set up the demo dbt project and start Lockgate on http://127.0.0.1:8000"
	@echo "make test   - lint, type-check and run the whole test suite (needs PostgreSQL and NATS; see README)"
	@echo "make bench  - run the benchmarks in tests/bench/ and print ratios against their anchors"
	@echo "make ui     - build the web UI into ui/dist (make run does it)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

# The web UI (ui/): Node >= 20.19 with npm. Its API types are generated from the API's OpenAPI document, so a
# contract change breaks this build rather than the user. Nothing it builds is committed.
ui/node_modules/.installed: ui/package.json ui/package-lock.json
	@command -v npm >/dev/null || { echo "make ui needs Node.js >= 20.19 with npm (see README)" >&2; exit 1; }
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

ui-deps: ui/node_modules/.installed

ui: install ui-deps
	$(BIN)/lockgate openapi > ui/openapi.json
	cd ui && npm run -s gen:api && npm run -s build

ui-test: ui
	cd ui && npx vitest run

run: install ui
	$(BIN)/lockgate demo
	$(BIN)/lockgate serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck ui-test pytest

bench: install
	$(BIN)/pytest tests/bench -m bench -p no:randomly -s

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache ui/node_modules ui/dist
