# Two commands: `make run` starts the hub, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What is installed, in two steps: running needs the hub and its dependencies (and the
# in-memory Redis of `feedback-hub dev`, the `dev` extra); the tests and linters add the
# `test` extra. `make run` installs only the first.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(RUN_STAMP)

# The test extra includes everything running needs, so it stands for both.
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/feedback-hub dev

# Two pytest processes (pytest-xdist): most of the suite's time is waiting on the
# processes and servers the end-to-end tests start, so two share the 2 cores well
# (5 minutes, not 11, on the reference machine).
test: $(TEST_STAMP) lint
	$(BIN)/pytest -n 2

unit: $(TEST_STAMP)
	$(BIN)/pytest -n 2 -m "not e2e"

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
