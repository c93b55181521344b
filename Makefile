# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz coverage watch

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
	# The scripts import each other by their names (`from run import ...`).
	MYPYPATH=bench $(BIN)/mypy bench
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_layering.py

# Two test processes, each running whole files: most tests wait on processes, servers
# and a browser, so two share 2 cores well (1,375 s alone, 735 s as two, AMD EPYC).
# Every test makes its own databases, ports, queue names and namespaces.
test: lint
	$(BIN)/pytest -q -n 2 --dist loadfile

# The slow schemathesis run (docs/api.md): not part of `make test`.
fuzz: $(STAMP)
	CI=true $(BIN)/pytest -q -s -m fuzz tests/api/test_api_fuzz.py

# The whole suite under coverage, worker and CLI processes included; branch coverage
# per module and in total, the HTML and JSON reports in test-artefacts/coverage/.
coverage: $(STAMP)
	rm -rf test-artefacts/coverage
	CI=true $(BIN)/coverage run -m pytest -q -p no:cacheprovider
	$(BIN)/coverage combine -q
	$(BIN)/coverage html -q
	$(BIN)/coverage json -q
	$(BIN)/coverage report

# Re-run the fast tests (unit, then the contract suite on SQLite) on every change.
watch: $(STAMP)
	$(BIN)/watchfiles --filter python \
	  "$(BIN)/pytest -q -x --ff -m 'not slow' tests/unit tests/contract -k 'not postgres'" src tests

bench: $(STAMP)
	$(BIN)/python bench/run.py
