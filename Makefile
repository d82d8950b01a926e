# Songbook's commands. `make run` serves the API on the embedded SQLite database;
# `make test` runs the same checks CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint typecheck pytest schema migrate seed bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(BIN)/songbook serve

test: lint typecheck pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

schema: install
	$(BIN)/songbook export-schema schema.graphql

migrate: install
	$(BIN)/songbook migrate

seed: install
	$(BIN)/songbook seed --songs $(or $(SONGS),1000)

bench: install
	$(BIN)/python -m tests.benchmarks.statements

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
