# The two commands a user needs: `make serve` and `make test`. Both create .venv when missing.
# `make test` is the whole set-up: it installs what the tests drive (Debian's chromium, as root) and
# the tests start their own throwaway servers (PostgreSQL; see tests/services/).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check
PYTEST_WORKERS ?= 2

.PHONY: serve test lint typecheck imports unit install install-dev test-packages demo fmt bench fuzz clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "openautotune needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

serve: $(VENV)/.installed
	$(BIN)/openautotune serve

demo: $(VENV)/.installed
	$(BIN)/openautotune demo

lint: install-dev
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

fmt: install-dev
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

typecheck: install-dev
	$(BIN)/mypy src

imports: install-dev
	$(BIN)/lint-imports

# Debian packages whose programs the tests drive; installed only when missing and running as root.
test-packages:
	scripts/ensure-test-packages chromium:chromium nats-server:nats-server clickhouse-server:clickhouse-server

unit: install-dev test-packages
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck imports unit

# Every benchmark, one after another; their output goes into docs/benchmarks.md ("Latest `make bench` run").
bench: install-dev
	$(BIN)/python scripts/bench_all.py

# The fuzzers of `make test` with a larger budget (docs/security.md, "Fuzzing"): schemathesis against a live server
# holding 50 autotunes, on SQLite then PostgreSQL; prints the requests generated and the responses >= 500.
fuzz: install-dev
	OPENAUTOTUNE_FUZZ_EXAMPLES=$${OPENAUTOTUNE_FUZZ_EXAMPLES:-100} $(BIN)/pytest -q -s -p no:cacheprovider \
		tests/api/test_schemathesis.py tests/api/test_raw_bodies.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
