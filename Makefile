# Backprop Ninja. `make run` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Two stamps: `make run` installs the run-time requirements only; `make test` adds the dev toolchain.
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed

.PHONY: run test lint bench bench-page pytest fuzz load check clean

# torch first, alone, from PyTorch's CPU index (requirements-torch.txt says why; the Dockerfile runs the
# same command). Then the rest from PyPI: torch==2.13.0 is already satisfied there by the CPU build.
# The editable install gives .venv/bin/backprop-ninja; its one remaining setuptools message ("Editable
# installation", information only) is silenced by name.
$(RUN_STAMP): requirements-torch.txt requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) pip==26.3
	$(PIP) --no-deps --retries 1 --timeout 15 -r requirements-torch.txt
	$(PIP) -r requirements.txt
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) --no-deps --no-build-isolation -e .
	touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt requirements-notebook.txt
	$(PIP) -r requirements-dev.txt
	touch $@

run: $(RUN_STAMP)  ## serve the page on http://$(HOST):$(PORT) with the bundled data
	$(PY) -m app --host $(HOST) --port $(PORT)

check: $(RUN_STAMP)  ## the cmp table in the terminal
	$(PY) -m ninja_core check

test: $(STAMP) lint pytest fuzz  ## everything CI runs

pytest: $(STAMP)  ## unit, API, server, install, wheel, Docker-steps and browser tests
	$(PY) -m pytest -q --ignore=tests/fuzz

fuzz: $(STAMP)  ## schemathesis against the app's own OpenAPI document (>= 1 000 generated cases)
	$(PY) -m pytest -q -s -p no:cacheprovider tests/fuzz

load: $(STAMP)  ## bounded load test on loopback: 16 clients, 5 000 requests, RSS, p99
	$(PY) scripts/load.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint --failure-threshold warning Dockerfile

bench: $(STAMP)  ## engine, training, HTTP, then the page in headless Chromium
	$(PY) scripts/bench.py
	@echo "== page"
	$(PY) scripts/bench_page.py

bench-page: $(STAMP)  ## first heatmap and node switch in headless Chromium (median of 5 cold navigations)
	$(PY) scripts/bench_page.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
