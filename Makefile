# The two commands the README promises, plus helpers. Everything runs from a local venv.
PY ?= python3
VENV ?= .venv
CONFIG ?= configs/agent.yaml

.PHONY: install run test lint bench clean

# setup.py and the C source too: the install compiles the optional C speedups in place.
$(VENV)/.installed: pyproject.toml setup.py agent/logs/_speedups.c
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Install and run the agent on its default config.
run: install
	$(VENV)/bin/nexo-agent --config $(CONFIG)

## Install everything the tests need (dockerd, node_exporter, prometheus) and run them all.
test: install
	bash tests/setup/prepare.sh
	$(VENV)/bin/ruff check agent tests benchmarks
	$(VENV)/bin/ruff format --check agent tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -p no:cacheprovider -q -ra --durations=15 tests

lint: install
	$(VENV)/bin/ruff check agent tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(VENV)/bin/python -m benchmarks run all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
