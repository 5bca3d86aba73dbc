# The whole set-up on a fresh machine is one of these two targets:
#   make demo   - create .venv, install postread, read sample_scans/ and print the results
#   make test   - create .venv, install with the train, dev and postgres extras, run every
#                 test (PostgreSQL ones against a throwaway server where one can be started)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := out/demo.db

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps make each install happen once, and again when pyproject.toml changes.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train,dev,postgres]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	@mkdir -p out && rm -f $(DEMO_DB)*
	@# Exit code 6 means "finished, some scans failed": sample_scans/ holds a corrupt file on purpose.
	$(BIN)/postread read sample_scans --db $(DEMO_DB) || [ $$? -eq 6 ]
	$(BIN)/postread export --db $(DEMO_DB) --status all -o -

test: $(VENV)/.dev
	$(BIN)/ruff check postread pipelines tests benchmarks
	$(BIN)/pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check postread pipelines tests benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
