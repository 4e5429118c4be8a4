# The user's entry points: `make run` (the full game day on the embedded testbed) and
# `make test` (the full test suite). Each creates .venv and installs what it needs.
PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CHAOS := $(BIN)/chaos --no-version-check

.PHONY: install run test test-quick lint bench clean chromium schemas

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the distribution's former name, and its metadata an editable install left in src/
	$(BIN)/pip uninstall --quiet --yes startup-chaos-kit
	rm -rf src/startup_chaos_kit.egg-info
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(CHAOS) gameday run

test: install chromium
	$(BIN)/pytest

# the report's tests open it in Debian's headless Chromium
chromium:
	@command -v chromium >/dev/null || { echo "make test needs Chromium for the report's browser tests: sudo apt-get install -y chromium"; exit 1; }

test-quick: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the JSON Schemas in schemas/, made from the kit's own checks' tables (a test holds them)
schemas: install
	$(BIN)/python -m chaoskit.gameday.schemas schemas

bench: install
	$(BIN)/python bench/flood.py
	$(BIN)/python bench/connector.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/limit.py

clean:
	-$(CHAOS) testbed down
	rm -rf .testbed
