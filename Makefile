# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# torch comes first and pinned: 2.13.0 is a CPU build on this machine's disk; an open range would
# pull a CUDA build of several GB.
TORCH := torch==2.13.0

.PHONY: demo test lint bench clean install install-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,postgres,server,embed,web,serve,tune,ray]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.test-installed

demo: $(VENV)/.installed
	$(BIN)/promptmill demo

test: $(VENV)/.test-installed
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check promptmill tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_eval.py

clean:
	rm -rf $(VENV) build *.egg-info
