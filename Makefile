# echo-cli: `make run` and `make test` set everything up on a fresh machine. `make help` lists all.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),_,$(EXTRAS))

CLI := $(BIN)/echo-cli

.DEFAULT_GOAL := help
.PHONY: help setup run test lint bench echo-current lag-no-context echo-lag clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

setup: $(STAMP) ## create .venv and install echo-cli with its dependencies (EXTRAS=dev,jax adds JAX)

run: setup ## set up and train the main experiment, configs/lag1.yaml
	$(CLI) train configs/lag1.yaml

test: setup ## set up and run the tests
	$(BIN)/python -m pytest

lint: setup ## ruff
	$(BIN)/ruff check echo_cli tests

echo-current: setup ## the tutorial's echo current: X(t) from X(t)
	$(CLI) train configs/echo_current.yaml

lag-no-context: setup ## the beginner's mistake: X(t-1) from X(t) alone
	$(CLI) train configs/lag_no_context.yaml

echo-lag: setup ## the tutorial's echo lag: X(t-1) from a window of 5
	$(CLI) train configs/lag1.yaml

clean: ## remove the virtual environment and caches (runs/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
