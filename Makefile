# Two commands on a fresh machine: `make demo` and `make test` (each creates .venv and installs what it needs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: the CPU wheel on the development machine, the CUDA build where pip finds that instead.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2 --durations=25

.PHONY: install install-dev demo test test-fast bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/ecgalign demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_store.py

clean:
	rm -rf $(VENV) runs .pytest_cache
