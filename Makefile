# Two commands for a new user: `make run` (every lesson, headless) and `make test`.
# Both create .venv and install the package on first use; later calls skip set-up
# unless pyproject.toml changed. Maintainers: `make refresh` (see below).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LESSONS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Threads (measured on the 2-core development machine, README "Threads and workers"):
# `make run` leaves them to the lessons' threads="auto" (every usable core for a lesson
# alone; lesson 02's two workers one each), which ran lesson 04's DCGAN step 1.28x faster
# on an idle machine. The commands that promise equal numbers pin one thread per process:
# the tests, the refresh of the committed results, the reference models and the bench
# (same seed, same numbers needs the same thread count; one thread also keeps a shared
# machine usable: two spinning threads per kernel ran 5-20x slower next to other work).
# An OMP_NUM_THREADS in your environment wins everywhere.
PINNED_THREADS ?= 1

test test-unit test-notebooks test-browser refresh readme pretrain bench: export OMP_NUM_THREADS ?= $(PINNED_THREADS)

.PHONY: setup run refresh readme pretrain bench test test-unit test-notebooks test-browser browser-deps lint format lab clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,cluster]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (gan course)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

# Executed copies under runs/<lesson>/, figures under runs/figures: never the tracked files.
run: $(STAMP)
	$(BIN)/python -m gan_utils.core.lessons $(LESSONS)

# Maintainers: execute every lesson (or LESSONS) in place at its defaults, figures to the
# tracked figures/ (GAN_UTILS_REFRESH_FIGURES=1 for those runs), then rewrite the README's
# generated sections; stops at the first failing lesson and leaves its notebook unchanged.
refresh: $(STAMP)
	$(BIN)/python -m gan_utils.core.lessons --refresh $(LESSONS)

# Only the README's generated sections, from the committed notebooks (offline, seconds).
readme: $(STAMP)
	$(BIN)/python -m gan_utils.core.lessons --readme

# Maintainers: train the reference models into the tracked pretrained/ (resumable: run it
# again after an interruption; runs already up to date are skipped). NAMES="a b" for some,
# PRETRAIN_ARGS="--workers 2" or "--check NAME" or "--list"; see gan_utils/images/pretrain.py.
NAMES ?=
PRETRAIN_ARGS ?=
pretrain: $(STAMP)
	$(BIN)/python -m gan_utils.images.pretrain $(NAMES) $(PRETRAIN_ARGS)

# Speed against plain-PyTorch references measured in the same run (about 5 minutes);
# prints a table and writes runs/bench/results.json (`make bench BENCH_ARGS=--quick`).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gan_utils benchmarks tests notebooks conftest.py
	$(BIN)/ruff format --check gan_utils benchmarks tests conftest.py

format: $(STAMP)
	$(BIN)/ruff format gan_utils benchmarks tests conftest.py
	$(BIN)/ruff check --fix gan_utils benchmarks tests notebooks conftest.py

# Unit tests, papermill runs at small settings, then nbval on every committed notebook.
# Both pytest calls share one temporary output root (tracked figures/ stay untouched).
test: lint
	export GAN_UTILS_ROOT=$$(mktemp -d) && \
	$(BIN)/python -m pytest -ra --durations=30 $(PYTEST_ARGS) tests && \
	$(BIN)/python -m pytest -ra --durations=30 --nbval-lax --nbval-current-env $(PYTEST_ARGS) notebooks

test-unit: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not notebook" $(PYTEST_ARGS) tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -ra --durations=30 --nbval-lax --nbval-current-env $(PYTEST_ARGS) notebooks

# Browser tests alone (JupyterLab in Chromium through Playwright); skipped without a browser.
test-browser: $(STAMP)
	$(BIN)/python -m pytest -ra -m browser $(PYTEST_ARGS) tests/browser

# Chromium from the distribution (no Playwright download, which fails offline).
browser-deps:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
		echo "Chromium is installed."; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf runs artifacts .pytest_cache .ruff_cache
