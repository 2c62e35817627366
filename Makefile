# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# torch comes first and pinned: 2.13.0 is a CPU build on this machine's disk; an open range would
# pull a CUDA build of several GB.
TORCH := torch==2.13.0
# llama.cpp is compiled here, for this CPU (-march=native), once per machine: the wheel is kept
# outside the project so fresh clones and CI reuse it. On x86-64 its AMX kernels are left out:
# on virtual machines whose kernel does not enable AMX state they crash (SIGSEGV) on the first
# multi-token batch, and pip's own wheel cache would hand that build to every later venv.
# The llamafile matrix kernels and the runtime weight repacking are left out too: both pick a
# different kernel for one row than for several, so a batched answer could differ from the
# same request decoded alone (docs/inference.md). Without them every row is computed the same
# way whatever shares its batch. The wheel folder is named after this recipe.
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS ?= $(HOME)/.cache/promptmill/llama-cpp-wheels/$(shell uname -m)-exact
EXACT := -DGGML_LLAMAFILE=OFF -DGGML_CPU_REPACK=OFF
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE := -DGGML_NATIVE=ON $(EXACT) -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
else
LLAMA_CMAKE := -DGGML_NATIVE=ON $(EXACT)
endif
LLAMA_WHEEL = $(firstword $(wildcard $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl))

.PHONY: demo test lint bench clean install install-test llama-wheel

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(MAKE) --no-print-directory llama-wheel
	$(PY) -m pip install -q --force-reinstall --no-deps $$(ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl | head -1)
	$(PY) -m pip install -q -e .
	touch $@

# Builds the llama-cpp-python wheel unless this machine already has it (no pip cache: a cached
# wheel may have been built with other flags).
llama-wheel:
	@if [ -z "$(LLAMA_WHEEL)" ]; then \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) for this CPU (about five minutes, once)"; \
	  mkdir -p $(LLAMA_WHEELS); \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" $(PY) -m pip wheel -q --no-cache-dir --no-deps \
	    -w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_VERSION)'; \
	fi

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

# ruff, then the layer contracts of pyproject.toml (import-linter), then the types (mypy).
lint: $(VENV)/.test-installed
	$(BIN)/ruff check promptmill tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_eval.py

clean:
	rm -rf $(VENV) build *.egg-info
