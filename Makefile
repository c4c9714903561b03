# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_DIR := tools/playground
# `E2E=0 make test`: everything but the end-to-end tests, on purpose (nothing is installed for them).
E2E ?= 1
E2E_APT := chromium chromium-driver fonts-dejavu-core fonts-noto-color-emoji
# apt-get install $(1) where we can (root, Debian); refresh the package lists only when the first try fails.
# A group, so that `have || $(call APT_INSTALL,...) || say` reads as it should.
APT_INSTALL = { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; }; }; }

.PHONY: run test lint typecheck package playground sandbox bench worker clean e2e unit solution e2e-deps

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

## What the end-to-end tests need: Chromium and fonts, Node.js, the Playground. Installed where possible;
## else one line says what is missing and how to install it, and `make test` stops (unless E2E=0).
e2e-deps: $(STAMP)
ifeq ($(E2E),0)
	@echo "E2E=0: the end-to-end tests will not run"
else
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  $(call APT_INSTALL,$(E2E_APT)) || true
	@command -v node >/dev/null 2>&1 || $(call APT_INSTALL,nodejs npm) || true
	-@$(MAKE) --no-print-directory $(NODE_DIR)/node_modules/.bin/agentsplayground
	@$(PY) -m tests.e2e.stack
endif

## The whole suite: unit, contract (SQLite and a real redis-server), sandbox, scenario, e2e.
test: $(STAMP) e2e-deps
	@command -v redis-server >/dev/null 2>&1 || $(call APT_INSTALL,redis-server) || \
	  echo "redis-server is not installed and cannot be: the Redis contract tests will be skipped"
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/contract

## The end-to-end tests alone (the Playground in headless Chromium), after installing what they need.
e2e: $(STAMP) e2e-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e

## The static checks of `make test` alone: ruff's rules, mypy --strict, the import contracts. (The code is
## not laid out by `ruff format`: E501 is off and modules are kept under 400 lines by hand.)
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy

package: $(STAMP)
	$(PY) -m manifest.build

## The Dataverse solution zips (managed and unmanaged) generated from bot/sync/tables.py, in build/solution/.
solution: $(STAMP)
	$(PY) -m bot.solution --out build/solution

playground: $(NODE_DIR)/node_modules/.bin/agentsplayground
	TEAMSAPPTESTER_BROWSER=none $(NODE_DIR)/node_modules/.bin/agentsplayground start -e http://127.0.0.1:3978/api/messages -c msteams --disable-telemetry

sandbox: $(STAMP)
	$(PY) -m sandbox

## A separate sync worker: it needs REDIS_URL (the shared store), and refuses the embedded SQLite store.
worker: $(STAMP)
	$(PY) -m bot.worker

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build .data .pytest_cache .mypy_cache .ruff_cache
