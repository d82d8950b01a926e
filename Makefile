# Songbook's commands. `make run` serves the API on the embedded SQLite database;
# `make test` runs the same checks CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GRAPHIQL := graph/server/graphiql
CLIENTS := tests/clients

.PHONY: install run test lint typecheck pytest schema migrate seed bench bench-search clean
.PHONY: graphiql-assets clients chromium

install: $(VENV)/.installed graphiql-assets

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# GraphiQL's browser bundles (pinned in graph/server/graphiql), served by Songbook itself so the
# IDE works offline; without npm the page loads the same versions from the CDN instead.
graphiql-assets:
	@if command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(GRAPHIQL)/node_modules/.package-lock.json; \
	else \
		echo "npm not found: GraphiQL will load its assets from the public CDN"; \
	fi

$(GRAPHIQL)/node_modules/.package-lock.json: $(GRAPHIQL)/package-lock.json
	cd $(GRAPHIQL) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# The JavaScript clients the tests drive (pinned in tests/clients), and headless Chromium
# from the OS packages for the GraphiQL browser test.
clients: $(CLIENTS)/node_modules/.package-lock.json chromium

$(CLIENTS)/node_modules/.package-lock.json: $(CLIENTS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for the client tests" >&2; exit 1; }
	cd $(CLIENTS) && npm ci --no-audit --no-fund
	touch $@

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "/usr/bin/chromium is missing: run 'sudo apt-get install -y chromium'" >&2; \
			exit 1; \
		fi; \
	fi

run: install
	$(BIN)/songbook serve

test: lint typecheck pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install clients
	$(BIN)/pytest

schema: install
	$(BIN)/songbook export-schema schema.graphql

migrate: install
	$(BIN)/songbook migrate

seed: install
	$(BIN)/songbook seed --songs $(or $(SONGS),1000)

# Benchmarks print figures (timings as ratios to a baseline of the same run); they assert
# nothing about speed. POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres runs them on a
# scratch database of that server instead of a scratch SQLite file.
BENCH_DB := $(if $(POSTGRES),--postgres $(POSTGRES))

bench: install
	$(BIN)/python -m tests.benchmarks.statements $(BENCH_DB)
	$(BIN)/python -m tests.benchmarks.claims $(BENCH_DB)
	$(BIN)/python -m tests.benchmarks.delay $(BENCH_DB)
	$(BIN)/python -m tests.benchmarks.library $(BENCH_DB)
	$(BIN)/python -m tests.benchmarks.hold $(BENCH_DB)
	$(BIN)/python -m tests.benchmarks.compiled $(BENCH_DB) $(if $(COMPILED),--compiled $(COMPILED))
	$(BIN)/python -m tests.benchmarks.statement_shapes $(BENCH_DB)
	$(BIN)/python -m tests.benchmarks.plan_cache
	$(BIN)/python -m tests.benchmarks.observability $(BENCH_DB)

# Search over a million songs, on SQLite and on PostgreSQL ($(POSTGRES), or this machine's),
# seeded once and kept for later runs (.bench/ and the database songbook_bench_search_N).
SEARCH_POSTGRES := $(or $(POSTGRES),postgresql://postgres@127.0.0.1:5432/postgres)

bench-search: install
	$(BIN)/python -m tests.benchmarks.search
	$(BIN)/python -m tests.benchmarks.search --postgres $(SEARCH_POSTGRES)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache test-artifacts
	rm -rf $(GRAPHIQL)/node_modules $(CLIENTS)/node_modules
