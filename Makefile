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

.PHONY: help install run test pytest lint fmt typecheck bench clean

help:
	@echo "make run    - install into .venv, set up the demo dbt project and start Lockgate on http://127.0.0.1:8000"
	@echo "make test   - lint, type-check and run the whole test suite (needs PostgreSQL and NATS; see README)"
	@echo "make bench  - run the benchmarks in tests/bench/ and print ratios against their anchors"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

run: install
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

test: lint typecheck pytest

bench: install
	$(BIN)/pytest tests/bench -m bench -p no:randomly -s

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache
