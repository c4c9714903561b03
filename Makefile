# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_DIR := tools/playground

.PHONY: run test lint typecheck package playground sandbox bench worker clean e2e unit

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_DIR)/node_modules/.bin/agentsplayground: $(NODE_DIR)/package.json
	@if command -v npm >/dev/null 2>&1; then cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Agents Playground is not installed"; fi

## The bot with the sandbox and the embedded store (and the Playground when Node.js is available).
run: $(STAMP)
	-@$(MAKE) --no-print-directory $(NODE_DIR)/node_modules/.bin/agentsplayground
	$(PY) -m sandbox.devserver

## The whole suite: unit, contract (SQLite and a real redis-server), sandbox, scenario, e2e.
test: $(STAMP)
	@command -v redis-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -qq redis-server >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq redis-server)); } || \
	  echo "redis-server is not installed and cannot be: the Redis contract tests will be skipped"
	-@$(MAKE) --no-print-directory $(NODE_DIR)/node_modules/.bin/agentsplayground
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/contract

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

package: $(STAMP)
	$(PY) -m manifest.build

playground: $(NODE_DIR)/node_modules/.bin/agentsplayground
	TEAMSAPPTESTER_BROWSER=none $(NODE_DIR)/node_modules/.bin/agentsplayground start -e http://127.0.0.1:3978/api/messages -c msteams --disable-telemetry

sandbox: $(STAMP)
	$(PY) -m sandbox

worker: $(STAMP)
	$(PY) -m bot.sync.worker

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build .data .pytest_cache .mypy_cache .ruff_cache
