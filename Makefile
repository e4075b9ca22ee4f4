# serverless-ml: every target runs `make setup` first when the venv is missing or stale.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock
UV := $(BIN)/uv
# The locks are for CPython 3.11 on Linux x86_64 (glibc), wheels only: no package is built on install.
LOCK_FLAGS := --generate-hashes --no-build --python-version 3.11 --python-platform x86_64-manylinux_2_28
# The runtime lock (the container image's): the dependencies alone, at requirements.lock's versions, without
# nvidia-nccl-cu12 (470 MB: xgboost's collectives for training on several GPUs, loaded only then).
RUNTIME_LOCK_FLAGS := --constraint $(LOCK) --no-emit-package nvidia-nccl-cu12
PORT ?= 8866
BASE_URL ?= /
DAYS ?= 30
DATASETS ?= iris titanic
# new rows per dataset and day: 700 in a 7-day window, enough for drift's PSI to mean something (sml-run alone: 1)
ROWS ?= 100
# 0 to 1: shift the new rows so the model does worse (make daily DRIFT=0.6), to watch monitoring catch it
DRIFT ?= 0
STAGE_FLAGS = --datasets $(DATASETS) --rows $(ROWS) --drift $(DRIFT)

# Papermill and Voila must start kernels from this venv, never a user-level kernelspec.
export JUPYTER_PREFER_ENV_PATH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help setup lock check-lock run daily backfill check test lint tidy check-sync nbtest pytest mutants serve lab bench site image image-test clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv, install the exact versions in requirements.lock, register its python3 kernel (idempotent)

# The venv, and uv at the version the lock pins, installed by pip and checked against the lock's hashes.
$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes \
	  -r <(awk '/^uv==/ {keep=1; print; next} keep && /^ / {print; next} {keep=0}' $(LOCK))

# --compile-bytecode: every module is compiled once, here (about 10 s on 2 cores). Without it, a machine that
# sets PYTHONDONTWRITEBYTECODE (this CI's does, as many container images do) compiles every imported module
# again in every kernel: 4.5 s instead of 2.6 s of CPU to import the apps, in each preheated and stage kernel.
$(STAMP): pyproject.toml $(LOCK) Makefile | $(UV)
	@$(BIN)/python .ci/lockfile.py check
	$(UV) pip sync --quiet --require-hashes --compile-bytecode --python $(BIN)/python $(LOCK)
	$(UV) pip install --quiet --no-deps --build-constraints $(LOCK) --python $(BIN)/python -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (serverless-ml)"
	@touch $(STAMP)

lock: | $(UV)  ## re-resolve requirements.lock (every extra) and requirements-runtime.lock (the image's) from pyproject.toml with uv, keeping pins that still fit (UPGRADE=1: newest allowed)
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) --all-extras $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" -o $(LOCK)
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) $(RUNTIME_LOCK_FLAGS) --custom-compile-command "make lock" -o $(RUNTIME_LOCK)
	$(BIN)/python .ci/lockfile.py stamp

check-lock:  ## fail when pyproject.toml's dependencies changed since the locks were made, or the runtime lock strays from requirements.lock
	@$(PYTHON) .ci/lockfile.py check

run: setup  ## feature + training for both datasets, then a $(DAYS)-day backfill of daily + inference (exit 3: alerts)
	$(BIN)/sml-run run --days $(DAYS) $(STAGE_FLAGS)

daily: setup  ## one daily + inference round for both datasets (ROWS=100 a dataset, DRIFT=0.6 to shift them; exit 3: alerts)
	$(BIN)/sml-run daily $(STAGE_FLAGS)

backfill: setup  ## DAYS=N days of daily + inference in one vectorised pass per stage (ROWS, DRIFT as for daily)
	$(BIN)/sml-run backfill --days $(DAYS) $(STAGE_FLAGS)

check: setup  ## self-test of the chosen backend (SML_BACKEND): every capability on scratch objects (a few minutes on Hopsworks)
	$(BIN)/sml-run check

test: check-lock setup lint check-sync nbtest pytest  ## lock freshness, ruff, nbdev sync check, nbdev-test, pytest (stops at the first failure)

lint: setup  ## ruff over the library, tests, benchmarks and notebooks
	$(BIN)/ruff check

tidy: setup  ## export lib/ from the notebooks, strip notebook outputs and metadata: run before committing
	$(BIN)/nbdev-export
	find notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -print0 \
	  | xargs -0 $(BIN)/jupyter nbconvert --clear-output --inplace --log-level=WARN
	$(BIN)/nbdev-clean

check-sync: setup  ## fail when lib/ differs from the notebooks, or a notebook holds outputs
	@snap=$$(mktemp -d); cp -r lib notebooks $$snap/; \
	$(MAKE) --no-print-directory --quiet tidy >/dev/null; \
	if ! diff -r $$snap/lib lib >/dev/null || ! diff -r $$snap/notebooks notebooks >/dev/null; then \
	  diff -r $$snap/lib lib || true; diff -rq $$snap/notebooks notebooks || true; rm -rf $$snap; \
	  echo "lib/ or notebooks/ were out of sync: now re-exported and cleaned (make tidy); review and commit them."; exit 1; \
	fi; rm -rf $$snap; echo "lib/ matches the notebooks; notebooks hold no outputs."

nbtest: setup  ## run the library notebooks' inline tests
	$(BIN)/nbdev-test notebooks/lib --n-workers 2

# Workers: each module (or test class) stays on one worker, its module fixtures built once, and the slow
# ones go out first (tests/helpers/scheduling.py). Two, one per core of the CI machine. A third filled the
# suite's waits on kernels, servers and browsers while every kernel still compiled its modules (8:19 against
# 9:32, same seed and tree); with the modules compiled at setup it gains 5 % (320 s against 338 s) and puts
# 3 busy workers on 2 cores, so two it is. PYTEST_WORKERS=N to choose. A random order, whose seed pytest prints:
# PYTEST_ARGS=--random-order-seed=N repeats an order, PYTEST_ARGS="-n 0" runs in one process.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
pytest: setup  ## the pytest suite, on 2 workers in a random order (PYTEST_ARGS=--random-order-seed=N to repeat one)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope --random-order $(PYTEST_ARGS)

mutants: setup  ## mutation testing ([tool.mutmut] in pyproject.toml) in a scratch copy, mutants/tree/; then its survivors
	rm -rf mutants/tree && mkdir -p mutants/tree
	cp -r lib mutants/tree/src && cp -r tests pyproject.toml mutants/tree/
	cd mutants/tree && env -u PYTHONPATH ../../$(BIN)/mutmut run --max-children 2 && ../../$(BIN)/mutmut results

serve: setup  ## the Voila apps on http://127.0.0.1:$(PORT)$(BASE_URL) once each has a preheated kernel (BASE_URL=/ml/ behind a proxy; settings: notebooks/apps_server/voila.py)
	@base="$(BASE_URL)"; base=/$${base#/}; base=$${base%/}/; \
	echo "Starting the apps: the port opens once each app has a preheated kernel (60 s at most)"; \
	$(BIN)/python notebooks/apps_server/serve.py notebooks/apps --no-browser --port=$(PORT) --Voila.ip=127.0.0.1 \
	  --Voila.config_file_paths=notebooks/apps_server --Voila.base_url=$$base

# The container image (Dockerfile). `make image` builds FROM python:3.11-slim (IMAGE_BASE= another base);
# `make image-test` builds FROM a Debian 12 base it makes from Debian's packages (image/build_base.sh: no image
# registry needed), runs the image's server and drives it in Chromium (tests/test_image.py). Root and podman
# (installed from Debian when missing); a few minutes.
IMAGE ?= serverless-ml:latest
IMAGE_BASE ?=
TEST_IMAGE := localhost/serverless-ml:test
TEST_BASE := localhost/sml-base:bookworm

image:  ## build the apps' container image $(IMAGE) with podman or docker, FROM python:3.11-slim (IMAGE_BASE=... another)
	image/build.sh $(IMAGE) $(IMAGE_BASE)

image-test: setup  ## build the image FROM a Debian 12 base made here, run it (podman), drive it in Chromium: index, apps, links, the store read-only
	image/build_base.sh $(TEST_BASE)
	image/build.sh $(TEST_IMAGE) $(TEST_BASE)
	SML_IMAGE=$(TEST_IMAGE) $(BIN)/pytest -n 0 tests/test_image.py

site: setup  ## the dashboard and the models page of each dataset as static HTML in outputs/site/, read from the store (SML_PUBLIC_URL: the live apps to link)
	$(BIN)/python -m serverless_ml.apps.site

lab: setup  ## JupyterLab on the notebooks, with this venv's kernel (--allow-root when run as root)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup  ## benchmarks as ratios against a floor measured in the same run
	$(BIN)/python bench/run.py

clean:  ## delete run state (outputs/ but its README)
	find outputs -mindepth 1 -not -name README.md -prune -exec rm -rf {} +
