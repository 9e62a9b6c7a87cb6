# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   create the environment, generate and land sample data, materialize every asset, print a summary
#   make test   create the environment, run ruff (format + lint), mypy, import-linter, the test suite and the infra scan
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint pytest format check-infra ui bench clean

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

# Lint, the suite and the infra scan at once (the suite waits on servers and subprocesses much of the time, so
# mypy and checkov mostly fill its idle CPU); each one's output is printed whole when it ends.
test: $(STAMP)
	$(MAKE) --no-print-directory -j3 --output-sync=target lint pytest check-infra

# Two pytest-xdist workers; every test needing the same run-wide emulator, stand-in or Spark session runs on one
# worker (`--dist loadgroup`, groups from medallion_tests/conftest.py), so each still starts once per run.
pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

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
