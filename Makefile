# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deadletter demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src tests
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_layering.py

test: lint
	$(BIN)/pytest -q

# The slow schemathesis run (docs/api.md): not part of `make test`.
fuzz: $(STAMP)
	CI=true $(BIN)/pytest -q -s -m fuzz tests/api/test_api_fuzz.py

bench: $(STAMP)
	$(BIN)/python bench/run.py
