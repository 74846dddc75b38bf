# The two commands a newcomer needs:
#   make run   — set up a virtualenv and run Newsdesk (scheduler + web) on its embedded defaults
#   make test  — set up a virtualenv with test tools, then lint, type-check and run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test setup setup-test browser lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test browser

run: setup
	$(BIN)/newsdesk run

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else echo "Install Chromium for the browser tests: sudo apt-get install chromium"; fi; \
	fi

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-test
	$(BIN)/mypy

pytest: setup-test
	$(BIN)/pytest -p no:cacheprovider

test: lint typecheck pytest

bench: setup-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data test-artifacts .mypy_cache .ruff_cache
