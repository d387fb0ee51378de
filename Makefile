# echo-cli: `make run` and `make test` set everything up on a fresh machine. `make help` lists all.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,jax,notebook
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),_,$(EXTRAS))
TEST_EXTRAS := dev,jax,ray,mlflow,notebook,docs
TEST_STAMP := $(VENV)/.installed-$(subst $(comma),_,$(TEST_EXTRAS))
DOCS_STAMP := $(VENV)/.installed-docs

CLI := $(BIN)/echo-cli

.DEFAULT_GOAL := help
.PHONY: help setup run test test-fast lint bench bench-scaling bench-startup bench-stream bench-vocab bench-seeds echo-current lag-no-context echo-lag stateless pad mask lag1-fast \
	full-context lag-sequence lag-no-context-batch1 lags results sweep-kinds sweep-units \
	sweep-stateful memory modern inspect-examples schema docs docs-serve readme-figures clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-22s %s\n", $$1, $$2}'

define install
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(1)]"
	@touch $@
endef

$(STAMP): pyproject.toml
	$(call install,$(EXTRAS))

$(TEST_STAMP): pyproject.toml
	$(call install,$(TEST_EXTRAS))

$(DOCS_STAMP): pyproject.toml
	$(call install,docs)

setup: $(STAMP) ## create .venv and install echo-cli, its dependencies, JAX and the notebook extra (EXTRAS=dev leaves them out)

run: setup ## set up and train the main experiment, configs/lag1.yaml
	$(CLI) train configs/lag1.yaml

# One test process per core; each test file stays in one process, so its fixtures train once.
PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile

test: $(TEST_STAMP) ## set up (with JAX, Ray, MLflow, the notebook and docs extras, for their tests), check the import layers, run every test and build the docs, as CI does
	$(BIN)/lint-imports --no-cache
	$(PYTEST)
	$(MKDOCS) build --strict --quiet

test-fast: $(TEST_STAMP) ## the tests without those marked slow (training for more than a few seconds)
	$(PYTEST) -m "not slow"

lint: setup ## ruff, and the import layers of pyproject.toml (import-linter)
	$(BIN)/ruff check echo_cli tests
	$(BIN)/lint-imports --no-cache

# The documentation site (mkdocs.yml, docs/): --strict fails on a broken link, a missing page or
# a stale include; docs/hooks/reference.py generates the reference pages from the code.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

docs: $(DOCS_STAMP) ## build the documentation site into site/ (mkdocs build --strict)
	$(MKDOCS) build --strict

docs-serve: $(DOCS_STAMP) ## serve the documentation site at http://127.0.0.1:8000, rebuilt on every change
	$(MKDOCS) serve

readme-figures: $(TEST_STAMP) ## write README.md's tables from results/results.csv and the installed extras' sizes
	$(BIN)/python docs/scripts/readme_figures.py

schema: setup ## regenerate configs/echo-cli.schema.json (editor completion of config keys) from the schema
	$(CLI) config schema > configs/echo-cli.schema.json.tmp
	mv configs/echo-cli.schema.json.tmp configs/echo-cli.schema.json

echo-current: setup ## the tutorial's echo current: X(t) from X(t)
	$(CLI) train configs/echo_current.yaml

lag-no-context: setup ## the beginner's mistake: X(t-1) from X(t) alone
	$(CLI) train configs/lag_no_context.yaml

echo-lag: setup ## the tutorial's echo lag: X(t-1) from a window of 5
	$(CLI) train configs/lag1.yaml

BENCH_ARGS ?=
bench: setup ## the tutorial loop vs the default engine on lag1 (first and cached runs), a whole train by phase, a stream pipe
	$(CLI) bench configs/lag1.yaml --force $(BENCH_ARGS)

bench-scaling: setup ## seconds per update and memory of lstm, gru, tcn on both backends at lengths 25..1000
	$(CLI) bench scaling --force

bench-startup: setup ## what each start-up trick saves a whole train (bench/startup.json)
	$(CLI) bench startup configs/lag1.yaml --force

bench-stream: setup ## numbers/s piped through `echo-cli stream`, calm and with one core kept busy (bench/stream.json)
	$(CLI) bench stream --force

bench-vocab: setup ## peak memory and seconds, one-hot vs embedding, at n_unique 100, 1000, 10000
	$(CLI) bench vocab configs/lag1.yaml --force

bench-seeds: setup ## seeds per second, N = 1..16 seeds as one program vs N separate runs (bench/seeds.json, .png)
	$(CLI) bench seeds configs/lag1.yaml --force

lag1-fast: setup ## the fastest recipe: echo lag in the fewest samples, stopping at a target
	$(CLI) train configs/lag1_fast.yaml

stateless: setup ## extension: echo lag with a stateless LSTM
	$(CLI) train configs/stateless.yaml

pad: setup ## extension: keep early rows, missing steps as all-zero inputs
	$(CLI) train configs/pad.yaml

mask: setup ## extension: keep early rows, missing steps hidden by a Masking layer
	$(CLI) train configs/mask.yaml

full-context: setup ## extension: the whole sequence so far as context
	$(CLI) train configs/full_context.yaml

lag-sequence: setup ## extension: echo X(p-1) at every position of the window
	$(CLI) train configs/lag_sequence.yaml

lag-no-context-batch1: setup ## the beginner's mistake with batch 1: can the state alone carry X(t-1)?
	$(CLI) train configs/lag_no_context_batch1.yaml

LAGS ?= 1 2 3 4 5 6 7 8
STAMP_NOW := $(shell date +%Y%m%d-%H%M%S)
EXPERIMENTS := echo_current lag_no_context lag1 stateless pad mask full_context lag_sequence \
	lag_no_context_batch1 lag1_fast

# $(call train_lags,DIR): train lag1 with lag L and window L+4 for every L in LAGS, into DIR/lag_L
define train_lags
for lag in $(LAGS); do \
	  $(CLI) train configs/lag1.yaml --set name=lag_$$lag --set data.lag=$$lag \
	    --set data.window=$$((lag + 4)) --set "description=echo X(t-$$lag) from a window of $$((lag + 4))" \
	    --out $(1)/lag_$$lag > $(1)/lag_$$lag.log 2>&1 \
	    || { echo "lag $$lag failed, see $(1)/lag_$$lag.log"; exit 1; }; \
	  echo "lag $$lag done"; done
endef

lags: setup ## extension: lags 1..8, each with a window of lag+4; prints accuracy against lag
	@dir=runs/lags-$(STAMP_NOW); mkdir -p $$dir; \
	$(call train_lags,$$dir); \
	$(CLI) results $$(for lag in $(LAGS); do echo $$dir/lag_$$lag; done) --out $$dir

results: setup ## run every experiment and the lags, then write results/results.md and .csv
	@dir=runs/results-$(STAMP_NOW); mkdir -p $$dir; \
	for name in $(EXPERIMENTS); do \
	  $(CLI) train configs/$$name.yaml --out $$dir/$$name > $$dir/$$name.log 2>&1 \
	    || { echo "$$name failed, see $$dir/$$name.log"; exit 1; }; \
	  echo "$$name done"; done; \
	$(CLI) train configs/lag1.yaml --set name=lag1_to_target --set train.target_accuracy=0.99 \
	  --set train.validate_every=10 --set "description=the tutorial's recipe, stopped at 0.99 validation" \
	  --out $$dir/lag1_to_target > $$dir/lag1_to_target.log 2>&1 \
	  || { echo "lag1_to_target failed, see $$dir/lag1_to_target.log"; exit 1; }; \
	echo "lag1_to_target done"; \
	$(call train_lags,$$dir); \
	$(CLI) results $$(for n in $(EXPERIMENTS) lag1_to_target; do echo $$dir/$$n; done) \
	  $$(for lag in $(LAGS); do echo $$dir/lag_$$lag; done) --out results --force

COPY_KINDS := lstm:48,gru:56,tcn:16
ADDING_KINDS := lstm:64,gru:74,tcn:16
ECHO_SETS := --set name=through_state --set "description=echo X(t-k) through the state"
SWEEP_SETS := --set train.backend=jax --set train.target_accuracy=0.99 --set train.validate_every=10 \
	--set model.stateful=false
# The sweeps write to fixed directories, so running a target again resumes it and rewrites
# its tables and plots; delete the directory to start afresh.
sweep-kinds: setup ## LSTM or MLP? kind x lag 1,2,4,8 (window lag+4) x 3 seeds, samples to 0.99
	$(CLI) sweep configs/lag1.yaml --grid model.kind=lstm,gru,simple_rnn,mlp,conv1d \
	  --grid data.lag+data.window=1:5,2:6,4:8,8:12 --seeds 3 $(SWEEP_SETS) \
	  --out runs/sweep-kinds

sweep-units: setup ## how many units does a lag need? units 2..64 x lag 1,4,8 (window lag+4)
	$(CLI) sweep configs/lag1.yaml --grid model.units=2,4,8,16,32,64 \
	  --grid data.lag+data.window=1:5,4:8,8:12 $(SWEEP_SETS) --out runs/sweep-units

sweep-stateful: setup ## stateful or stateless? x 5 seeds, samples to 0.99
	$(CLI) sweep configs/lag1.yaml --grid model.stateful=true,false --seeds 5 \
	  --set train.backend=jax --set train.target_accuracy=0.99 --set train.validate_every=10 \
	  --out runs/sweep-stateful

# Memory across time: copy memory and the adding problem at three T each, for LSTM, GRU and TCN
# at roughly equal size, and the echo through the state at lags 1 to 16. Each sweep resumes if
# run again; delete runs/memory-* to start afresh.
MEMORY_SETS ?= --set train.backend=jax
memory: setup ## copy (T=50,100,200), adding (T=100,200,400) x LSTM/GRU/TCN, echo through the state at lags 1-16 -> results/memory.md
	$(CLI) sweep configs/copy_memory.yaml --grid data.delay=50,100,200 \
	  --grid model.kind+model.units=$(COPY_KINDS) $(MEMORY_SETS) --out runs/memory-copy
	$(CLI) sweep configs/adding.yaml --grid data.length=100,200,400 \
	  --grid model.kind+model.units=$(ADDING_KINDS) $(MEMORY_SETS) --out runs/memory-adding
	$(CLI) sweep configs/stream.yaml --grid data.lag=1,2,4,8,16 --grid model.kind=lstm,gru \
	  $(MEMORY_SETS) $(ECHO_SETS) --out runs/memory-echo
	$(CLI) memory-table runs/memory-copy runs/memory-adding runs/memory-echo --out results --force

# Memory in modern sequence models (Gu & Dao 2023): selective against plain copying (L=64,
# M=4, A=16) for every recurrent kind at the same budget of updates, training on past 0.99 to
# record when it was reached; induction heads trained at length 64 and scored at 64..4,096; then
# the memory capacity of every trained model beside its N. Each sweep resumes if run again, and
# a run whose capacity.json exists is not measured again; delete runs/modern-* to start afresh.
MODERN_BUDGET ?= 3000
MODERN_KINDS := lstm:64:64,gru:64:64,lru:32:64,s6:32:16,esn:256:64
INDUCTION_KINDS := lstm:128:64,gru:128:64,lru:64:64,s6:32:16
MODERN_LENGTHS ?= [64,128,256,512,1024,2048,4096]
MODERN_SETS ?= --set train.backend=jax
# MODERN_SEEDS=3: each setting's seeds as one program (train.seeds), for intervals across
# seeds; it costs about that many times the compute, so the default stays at one seed.
MODERN_SEEDS ?= 1
MODERN_RUNS ?= runs
MODERN_OUT ?= results
modern: setup ## selective vs plain copying x lstm/gru/lru/s6/esn, induction at 64..4096, memory capacity -> results/modern.md
	$(CLI) sweep configs/selective_copy.yaml --grid data.variable=true,false \
	  --grid model.kind+model.units+model.state_size=$(MODERN_KINDS) --seeds $(MODERN_SEEDS) \
	  --set train.epochs=$(MODERN_BUDGET) --set train.stop_at_target=false $(MODERN_SETS) \
	  --out $(MODERN_RUNS)/modern-copy
	$(CLI) sweep configs/induction.yaml \
	  --grid model.kind+model.units+model.state_size=$(INDUCTION_KINDS) --seeds $(MODERN_SEEDS) \
	  --set "eval.lengths=$(MODERN_LENGTHS)" --set eval.sequences=500 $(MODERN_SETS) \
	  --out $(MODERN_RUNS)/modern-induction
	@for point in $(MODERN_RUNS)/modern-copy/runs/* $(MODERN_RUNS)/modern-induction/runs/*; do \
	  if [ -d "$$point/seeds" ]; then set -- "$$point"/seeds/seed=*; else set -- "$$point"; fi; \
	  for run in "$$@"; do \
	    test -f "$$run/capacity/capacity.json" || $(CLI) capacity "$$run" --force > /dev/null \
	      || { echo "capacity of $$run failed"; exit 1; }; done; done; echo "capacity measured"
	$(CLI) modern-table $(MODERN_RUNS)/modern-copy $(MODERN_RUNS)/modern-induction \
	  --out $(MODERN_OUT) --force

# The beginner's mistake beside a model that echoes through its state: each trained once into
# runs/inspect-<name>/ (delete it to train again), then inspected into results/inspect/<name>/.
INSPECT_EXAMPLES := lag_no_context stream
inspect-examples: setup ## state.png and the memory curve of the beginner's mistake and of configs/stream.yaml -> results/inspect/
	@mkdir -p runs; for name in $(INSPECT_EXAMPLES); do \
	  test -f runs/inspect-$$name/metrics.json || \
	    $(CLI) train configs/$$name.yaml --out runs/inspect-$$name > runs/inspect-$$name.log 2>&1 \
	    || { echo "training $$name failed, see runs/inspect-$$name.log"; exit 1; }; \
	  $(CLI) inspect runs/inspect-$$name --heldout 500 --out results/inspect/$$name --force \
	    || exit 1; done

clean: ## remove the virtual environment and caches (runs/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
