# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   create the environment, generate and land sample data, materialize every asset, print a summary
#   make test   create the environment, run ruff (format + lint), mypy, the test suite and the infra security scan
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format check-infra ui bench clean

# The product and, beside it, the development tools (stand-ins, moto, bench, chaos: devtools/pyproject.toml).
$(STAMP): pyproject.toml devtools/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" -e ./devtools
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/medallion demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest
	$(MAKE) check-infra

# The inner loop: no Spark, emulators, stand-ins, browser, walkthroughs or trials (CI runs everything).
test-fast: lint
	$(BIN)/python -m pytest -m "not spark and not aws and not databricks and not ui and not walkthrough and not reliability and not slow"

check-infra: $(STAMP)
	@if [ -x infra_pulumi/scan/run_scan.sh ]; then infra_pulumi/scan/run_scan.sh; else echo "no infra scan yet"; fi

ui: $(STAMP)
	$(BIN)/medallion ui

bench: $(STAMP)
	$(BIN)/medallion bench

clean:
	rm -rf data .medallion
