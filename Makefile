# doudi — one entry point for setting up, running and testing on a fresh machine
# (only python3 and make needed). Everything installs into .venv from PyPI, pinned by
# requirements.lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo lint test ui bench bench-test lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/doudi demo

# Lint rules and the complexity limit are in pyproject.toml ([tool.ruff]).
lint: setup
	$(BIN)/ruff check --quiet --output-format concise .

test: lint
	$(BIN)/python -m pytest -m "not benchmark and not slow"

ui: setup
	$(BIN)/doudi ui

bench: setup
	$(BIN)/doudi bench --scale county

# County and city scale with their checks (pytest marker `benchmark`, not part of `make test`).
bench-test: setup
	$(BIN)/python -m pytest -m benchmark tests/benchmark -s

# Regenerate the lock after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^doudi' > requirements.lock

clean:
	rm -rf $(VENV) demo var .pytest_cache
