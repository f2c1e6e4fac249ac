# Two commands for a fresh machine with Python 3.11+ and git:
#   make demo   creates .venv, installs, builds the demo warehouse if absent, starts the dashboard
#   make test   creates .venv if needed, installs the test extras and system tools, runs the suite

# found once (`:=`), quietly: a pyenv shim answers `command -v` for versions it cannot run
ifndef PYTHON
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
endif
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB ?= data/poise.db
PORT ?= 8501
# the suite runs on two workers (CI has two cores); TEST_WORKERS=0 runs it in one process
TEST_WORKERS ?= 2

.PHONY: demo test install install-test system-deps lint format bench clean lock audit screenshot

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Poise needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(DEMO_DB): | $(VENV)/.installed
	$(BIN)/poise demo --db sqlite:///$(DEMO_DB)

demo: $(VENV)/.installed $(DEMO_DB)
	$(BIN)/poise ui --db sqlite:///$(DEMO_DB) --port $(PORT)

# Tools the tests drive for real (headless Chromium, a Prometheus server), from Debian's
# packages; on a machine where they cannot be installed those tests skip and say why.
system-deps:
	@scripts/install-system-deps.sh

test: $(VENV)/.installed-test system-deps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-test
	@failed=""; for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || failed="$$failed $$b"; done; test -z "$$failed" || { echo "failed:$$failed"; exit 1; }

# docs/images/overview.png, the README's picture: the demo (fixed end date) in headless Chromium
screenshot: $(VENV)/.installed-test system-deps
	$(BIN)/python scripts/screenshot.py

# requirements.lock: the runtime dependencies as `pip install .` resolves them in a clean venv
# (the container image installs exactly these; `make audit` checks them).
lock:
	@test -n "$(PYTHON)" || { echo "Poise needs Python 3.11 or newer on PATH"; exit 1; }
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet .
	{ echo "# Runtime dependencies of Poise, pinned: what the container image installs and what"; \
	  echo "# 'make audit' checks with pip-audit. Regenerate with 'make lock' after changing pyproject.toml."; \
	  $(VENV)-lock/bin/python -m pip freeze --exclude poise; } > requirements.lock
	rm -rf $(VENV)-lock

# Known vulnerabilities in the locked dependencies (PyPI's vulnerability data). --strict: a
# package the service cannot answer for fails the audit instead of passing it silently.
audit: $(VENV)/.installed-test
	$(BIN)/pip-audit --requirement requirements.lock --no-deps --disable-pip --strict --progress-spinner off

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
