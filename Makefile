# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up.
CACHE ?= $(or $(CXGRAPH_CACHE),$(HOME)/.cache/cxgraph)
PY := $(CACHE)/venv/bin/python
DEMO_WS ?= demo-workspace
# The shared venv holds dependencies only; this clone's code comes from here.
export PYTHONPATH := $(CURDIR)

.PHONY: setup demo test check-readme lint install

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m cxgraph demo --workspace $(DEMO_WS)

test: setup
	$(PY) -m ruff check cxgraph pipeline tests benchmarks
	$(PY) -m pytest -q

# Every sh block of the README, as written, after a demo (~5 min; CI runs it after `test`).
check-readme: setup
	$(PY) -m pytest -q -m readme tests/test_readme.py

lint: setup
	$(PY) -m ruff check cxgraph pipeline tests benchmarks

# A `cxgraph` command for this clone on PATH (~/.local/bin, or PREFIX=...): a link to bin/cxgraph.
PREFIX ?= $(HOME)/.local
install: setup
	mkdir -p $(PREFIX)/bin
	ln -sf $(CURDIR)/bin/cxgraph $(PREFIX)/bin/cxgraph
	@echo "cxgraph -> $(PREFIX)/bin/cxgraph (is $(PREFIX)/bin on your PATH?)"
