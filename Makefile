# One venv in .venv; torch is pinned to the CPU build first so the rest never pulls CUDA.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test test-fast lint demo bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,ray,autodl-data]"

# pytest-xdist: one worker per core, at most 4 (each worker holds torch and starts sandboxes).
XDIST := -n auto --maxprocesses 4

test: install
	$(BIN)/python -m pytest -q $(XDIST)

# The developers' loop (< 2 min on 2 idle cores): no shared data, nothing marked slow.
test-fast: install
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow and not shared"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: install
	$(BIN)/zcp evaluate submission_template --out results/demo

bench: install
	$(BIN)/python benchmarks/exactness.py
	$(BIN)/python benchmarks/proxy_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
