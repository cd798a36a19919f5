# Backprop Ninja. `make run` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench pytest fuzz load cluster-test check clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . || $(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)  ## serve the page on http://$(HOST):$(PORT) with the bundled data
	$(PY) -m app --host $(HOST) --port $(PORT)

check: $(STAMP)  ## the cmp table in the terminal
	$(PY) -m ninja_core check

test: $(STAMP) lint pytest fuzz  ## everything CI runs

pytest: $(STAMP)  ## unit, API, server, Docker-steps and browser tests
	$(PY) -m pytest -q --ignore=tests/fuzz

fuzz: $(STAMP)  ## schemathesis against the app's OpenAPI document: in-process (>= 1 000 cases) and a live server
	$(PY) -m pytest -q -s -p no:cacheprovider tests/fuzz

load: $(STAMP)  ## bounded load tests on loopback (figures reported, not gated): the mix, and 8 heavy requests vs light traffic
	$(PY) scripts/load.py

cluster-test: $(STAMP)  ## 3 replicas behind Debian's nginx (deploy/nginx.conf), mixed load, one replica killed
	$(PY) scripts/cluster_test.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint --failure-threshold warning Dockerfile

bench: $(STAMP)
	$(PY) scripts/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
