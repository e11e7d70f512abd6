# backplay_exp — `make help` lists the targets.
#
# Every target runs in the project's own virtual environment, which the first target that needs it
# creates and fills: `python3 -m venv .venv`, then the pinned CPU torch and the package with its
# extras, once (the stamp .venv/.installed is redone only when pyproject.toml changes). Nothing is
# installed into the system Python, so this works where it refuses `pip install` (PEP 668) and
# where only `python3` exists.
#   make quickstart            # set-up if needed, then the embedded demo
#   make test                  # set-up if needed, then the whole CPU suite (what CI runs)
#   make test PY=python SETUP= # use an environment you manage yourself (no venv, no set-up)
PYTHON ?= python3
VENV ?= .venv
PY ?= $(VENV)/bin/python
SETUP ?= $(VENV)/.installed
TORCH ?= torch==2.13.0
# extra pip options for the torch wheel, e.g. TORCH_PIP="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP ?=
EXTRAS ?= dev,sandbox,lm-eval
PYTEST ?= $(PY) -m pytest

.PHONY: help install test test-fast lint format smoke quickstart clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# the interpreter of the venv; a venv without pip (Debian's python3 without python3-venv) is
# removed again, so the next run starts clean
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip --version >/dev/null \
	  || { rm -rf $(VENV); echo "could not create $(VENV) with '$(PYTHON) -m venv' (on Debian/Ubuntu: apt install python3-venv)" >&2; exit 1; }

# the install, once per pyproject.toml: torch first (the pinned CPU wheel), then the package
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	-$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install $(TORCH_PIP) "$(TORCH)"
	$(VENV)/bin/python -m pip install "$(TORCH)" -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/bin/python ## create .venv and install the package and dev tools (CPU torch pinned)
	rm -f $(VENV)/.installed
	$(MAKE) $(VENV)/.installed

test: $(SETUP) ## the whole CPU suite (what CI runs); pytest's "no tests collected" is not a failure
	$(PYTEST) -q -n 2 --durations=15; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

test-fast: $(SETUP) ## the inner loop: everything but the slow end-to-end runs
	$(PYTEST) -q -m "not slow"; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

lint: $(SETUP) ## ruff check + format check
	$(PY) -m ruff check backplay_exp hydra_plugins tests
	$(PY) -m ruff format --check backplay_exp hydra_plugins tests

format: $(SETUP) ## ruff format + autofix
	$(PY) -m ruff format backplay_exp hydra_plugins tests
	$(PY) -m ruff check --fix backplay_exp hydra_plugins tests

smoke: $(SETUP) ## one tiny eval end to end (a few SFT steps, 16 problems)
	$(PY) -m backplay_exp task=eval sft.max_steps=20 benchmark.n_problems=16 logger=csv

quickstart: $(SETUP) ## the embedded demo: SFT -> head -> decode at k=1..4 -> table and claims
	$(PY) -m backplay_exp +experiment=quickstart

clean: ## remove run outputs and the stage cache (not .venv)
	rm -rf outputs multirun cache .pytest_cache .ruff_cache
