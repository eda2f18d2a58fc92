# memdash: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.memdash-installed
EXTRAS_STAMP := $(VENV)/.memdash-extras-installed
PORT ?= 8501

.DEFAULT_GOAL := help
.PHONY: help install umap-cache demo test lint format bench sample-run sample-runs clean chromium

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: a CPU build of 2.13.0 lies on this machine's disk,
# while a looser requirement would pull a CUDA build of several GB.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q analysis dashboard memdash  # the first dashboard compiles none
	touch $(STAMP)

# umap-learn's numba code compiled once into numba's on-disk cache (about 25 s of CPU), so
# that the first UMAP of a new process loads it instead of compiling it: a tiny projection
# through memdash's own path (fit, fit from a later epoch's layout, transform of the rest)
# and gemm_knn's kernels (an exact k-NN of 900 points: a first tile and a later one)
UMAP_STAMP := $(VENV)/.memdash-umap-compiled
WARM_UMAP := import numpy as np; from memdash.analysis.measures.projection import \
	aligned_projections as a; x = np.random.default_rng(0).normal(size=(300, 8)).astype(\
	np.float32); a({0: x, 1: 2 * x}, sample=200); from memdash.analysis.measures.gemm_knn \
	import gemm_knn; y = np.tile(x, (3, 1)); gemm_knn(y, y, 3)
$(UMAP_STAMP): $(STAMP)
	@echo "compiling umap-learn's numba code once (numba's cache)"
	$(BIN)/python -c "$(WARM_UMAP)"
	touch $(UMAP_STAMP)

install: $(STAMP) $(UMAP_STAMP) ## Create .venv if missing and install memdash with its test tools (and compile UMAP's numba code)

umap-cache: $(STAMP) ## Compile umap-learn's numba code into numba's cache (install does it once)
	$(BIN)/python -c "$(WARM_UMAP)"

# The optional extras the tests cover: Ray (`memdash estimate --backend ray`), the trainer
# callbacks for Lightning and the Hugging Face Trainer, language models (text), and
# differential privacy with Opacus (dp)
$(EXTRAS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,ray,lightning,transformers,text,dp]'
	touch $(EXTRAS_STAMP)

demo: install ## Open the dashboard on sample_runs/ (http://127.0.0.1:$(PORT))
	$(BIN)/memdash dashboard sample_runs --port $(PORT)

lint: install ## ruff (lint and formatting), and the import contracts of the layers (docs/architecture.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash .ci/lint-imports $(BIN)/python

format: install ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Debian's chromium for the end-to-end browser tests (never `playwright install`)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	  || { echo "could not install chromium: run 'apt-get install chromium' as root"; exit 1; }; }

test: lint $(EXTRAS_STAMP) chromium ## Lint, then run the whole suite (installs the ray, lightning, transformers, text and dp extras, and chromium)
	$(BIN)/python -m pytest

bench: install ## Run the benchmarks (prints ratios)
	$(BIN)/python benchmarks/recording.py
	$(BIN)/python benchmarks/analytics.py
	$(BIN)/python benchmarks/localization.py
	$(BIN)/python benchmarks/heldout.py
	$(BIN)/python benchmarks/membership.py
	$(BIN)/python benchmarks/proxies.py
	$(BIN)/python benchmarks/dp.py
	$(BIN)/python benchmarks/similarity.py
	$(BIN)/python benchmarks/sensitivity.py
	$(BIN)/python benchmarks/callbacks.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/first_chart.py
	$(BIN)/python benchmarks/text_exposure.py
	$(BIN)/python benchmarks/text_recording.py

sample-runs: install ## Rebuild the sample suite with its analyses (commands in sample_runs/README.md)
	bash sample_runs/make_sample_runs.sh

sample-run: sample-runs

clean: ## Remove caches (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .hypothesis
