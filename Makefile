# immunoplan: the two set-up commands are `make demo` and `make test`; both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DB ?= var/demo.sqlite
DEMO_OUT ?= var/demo-report
PYTEST_ARGS ?=

.PHONY: help install demo test test-deps test-fast bench lint clean

help:
	@echo "make demo   - install into .venv and run the demo (main job)"
	@echo "make test   - install into .venv with test extras, install test services, run the whole suite"
	@echo "make bench  - speed benchmarks (ratios against a baseline run in the same process)"
	@echo "make lint   - ruff check, ruff format --check, mypy and lint-imports (the layers contract)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	DEMO_DB=$(DEMO_DB) DEMO_OUT=$(DEMO_OUT) bash scripts/demo.sh

test-deps:
	bash scripts/install-test-deps.sh

test: $(STAMP) test-deps
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not browser and not postgres and not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis
