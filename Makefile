# The two commands a user needs: `make serve` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: serve test lint typecheck imports unit install install-dev demo clean

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
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy src

imports: install-dev
	$(BIN)/lint-imports

unit: install-dev
	$(BIN)/pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck imports unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
