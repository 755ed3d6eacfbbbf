# The newcomer's commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

TIERS := unit functional contract e2e resilience

.PHONY: run test lint tests $(TIERS) bench package clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m tools.run_local

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# One tier: `make unit`, `make functional`, `make contract`, `make e2e`, `make resilience`.
$(TIERS): $(STAMP)
	$(PY) -m pytest -q -m $@ tests/$@

# Every tier in one run (a test outside the tier folders fails the collection).
tests: $(STAMP)
	$(PY) -m pytest -q

test: lint tests

bench: $(STAMP)
	$(PY) -m bench

package: $(STAMP)
	$(PY) -m tools.package

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
