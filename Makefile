# backplay_exp — `make help` lists the targets.
PY ?= python
TORCH ?= torch==2.13.0
PYTEST ?= $(PY) -m pytest

.PHONY: help install test test-fast lint format smoke quickstart clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## install the package and dev tools (CPU torch wheel pinned)
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install "$(TORCH)" -e ".[dev,sandbox,lm_eval]"

test: ## the whole CPU suite (what CI runs); pytest's "no tests collected" is not a failure
	$(PYTEST) -q -n 2 --durations=15; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

test-fast: ## the inner loop: everything but the slow end-to-end runs
	$(PYTEST) -q -m "not slow"; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

lint: ## ruff check + format check
	$(PY) -m ruff check backplay_exp tests
	$(PY) -m ruff format --check backplay_exp tests

format: ## ruff format + autofix
	$(PY) -m ruff format backplay_exp tests
	$(PY) -m ruff check --fix backplay_exp tests

smoke: ## one tiny eval end to end (a few SFT steps, 16 problems)
	$(PY) -m backplay_exp task=eval sft.max_steps=20 benchmark.n_problems=16 logger=csv

quickstart: ## the embedded demo: SFT -> decode at k=1..4 -> table
	$(PY) -m backplay_exp +experiment=quickstart

clean: ## remove run outputs and the stage cache
	rm -rf outputs multirun cache .pytest_cache .ruff_cache
