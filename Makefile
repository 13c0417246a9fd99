# The two commands of the README. Each creates its own virtual environment and installs
# what it needs, so they work on a fresh machine (Python 3.11, no GPU, package registries only).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: book book-power test test-fast setup sync clean-book

# Install once per change of pyproject.toml, one stamp per extra: the book needs `.[book]`,
# the tests `.[dev]` (the book's packages plus pytest and the landmark detectors the tests
# exercise). torch is pinned (==2.13.0) in pyproject.toml so that pip takes the CPU build; an
# unpinned torch pulls a multi-GB CUDA build.
# Both extras also get the `resemblyzer` wheel, for the GE2E speaker encoder's pretrained
# weights (`ge2e`, a demo backbone): only its weights file is read, so it is installed
# without its dependencies (librosa, webrtcvad, which would need a C compiler); pip cannot
# say "no dependencies" for one requirement of pyproject.toml, hence the second command.
# The stamp also follows this Makefile, so a checkout set up before a change here catches up.
RESEMBLYZER := resemblyzer==0.1.4

$(VENV)/.installed-%: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$*]"
	$(BIN)/pip install --quiet --no-deps "$(RESEMBLYZER)"
	touch $@

setup: $(VENV)/.installed-dev

# Main job: build the book on the demo profile. Generates the synthetic benchmark and extracts
# features on first use (cached under .avdd/), executes stale notebooks with papermill, renders.
book: $(VENV)/.installed-book
	$(BIN)/jupyter-book build book/ -W -n --keep-going
	@echo "book: open book/_build/html/index.html"

# The demo with statistical power (profiles/demo-power.yaml: the benchmark at scale 2, the
# ten representations the checks and Tables 3-4 read; ~22 min on 2 cores). It writes the same
# book/generated/ pages, so a later `make book` runs them again with the default demo.
book-power: $(VENV)/.installed-book
	$(BIN)/avdd book --params profiles/demo-power.yaml
	@echo "book: open book/_build/html/index.html"

# Tests, all of them (what CI runs). pytest exits 5 when it collected nothing; that must not pass.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

# The development tier: everything but the end-to-end tests marked slow, one process per
# core (whole files per process, so module fixtures are built once).
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile

# Re-pair notebooks after editing either file of a pair.
sync: $(VENV)/.installed-book
	$(BIN)/jupytext --sync notebooks/*.py

clean-book:
	rm -rf book/_build book/generated
