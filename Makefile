# Quick start: `make demo` (fetch the assets, run the default recipe) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint study study-demo clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The local CPU build of PyTorch; any other spec pulls gigabytes of CUDA packages.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,baselines,fast]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/mkd fetch minilm-l6 glove-6b-50d spacy-en-md rt-snippets snli
	$(BIN)/mkd run

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mkd fetch minilm-l6 glove-6b-50d spacy-en-md rt-snippets snli
	# two workers: each test runs on one thread (tests/conftest.py), so two share a 2-core machine well; one test
	# at a time to whichever is free, the longest first (tests/conftest.py)
	$(BIN)/python -m pytest -q --timeout=900 -n 2 --maxschedchunk 1 --durations=25

# The study of benchmarks/study/ (hours on 2 CPU cores; resumes where it stopped): every row and the
# peers (the `study` extra), then one interleaved bench over all of them, the tables and the figures.
# On one GPU: `make study STUDY_SCALE=gpu` (under 8 minutes with MPNet-base; see RESULTS.md).
STUDY_SCALE ?= full
study: $(STAMP)
	$(BIN)/python benchmarks/study/study.py --scale $(STUDY_SCALE)
	$(BIN)/python benchmarks/study/study.py --scale $(STUDY_SCALE) --bench --table --plot benchmarks/study/figures-$(STUDY_SCALE)

study-demo:
	$(MAKE) study STUDY_SCALE=demo

# While you work: the unit tests only (no `real` or `slow` end-to-end tests); CI runs `make test` in full.
test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q --timeout=900 -n 2 -m "not real and not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info
