# The two commands a new user runs: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test postgres prometheus bench clean

$(BIN)/costwarden: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "costwarden needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/costwarden

demo: install
	$(BIN)/costwarden demo

postgres:
	@bash scripts/ensure-postgres.sh

prometheus:
	@bash scripts/ensure-prometheus.sh

# The suite runs on every core, at most 4: each worker starts its own PostgreSQL and Prometheus.
test: install postgres prometheus
	$(BIN)/python -m pytest --numprocesses auto --maxprocesses 4

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/forecast.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
