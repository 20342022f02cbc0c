# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
CACHE ?= $(or $(CXGRAPH_CACHE),$(HOME)/.cache/cxgraph)
PY := $(CACHE)/venv/bin/python
DEMO_WS ?= demo-workspace

.PHONY: setup demo test lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m cxgraph demo --workspace $(DEMO_WS)

test: setup
	$(PY) -m ruff check cxgraph pipeline tests benchmarks
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check cxgraph pipeline tests benchmarks
