# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs.
# `make notebook` opens the chapter's notebooks in JupyterLab (installed into .venv on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The official MNIST test set, when it sits beside the project (workspace and CI only):
# the demo then validates on it, so its numbers compare with the book's.
TEST_SET := $(wildcard ../shared/data/mnist-test)

.PHONY: install demo lint test test-fast notebook strip-notebooks bench clean

# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/digitlab data get mnist_sample
	$(BIN)/digitlab demo --data mnist_sample $(if $(TEST_SET),--valid $(TEST_SET))
	$(BIN)/digitlab data samples samples

# The quality gate, before the tests: ruff (lint, import order, formatting) and mypy --strict on src/.
lint: install
	$(BIN)/ruff check src tests bench notebooks scripts
	$(BIN)/ruff format --check src tests bench notebooks scripts
	$(BIN)/mypy

test: lint
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest

# The unit tests alone (a few minutes): not the README's run, the notebooks, the sandboxed class, the
# browser or the multi-process tests (marked slow). `make test` runs everything; `-m cuda` the GPU's.
test-fast: lint
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest -m "not slow"

# JupyterLab is not a test dependency (the tests run the notebooks with nbclient): installed on first use.
# The notebooks validate on the official test set when DIGITLAB_TEST_SET names it (as `make demo` does).
# As root (a container, this workspace) JupyterLab refuses to start without --allow-root.
notebook: install
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/pip install --quiet jupyterlab
	$(if $(TEST_SET),DIGITLAB_TEST_SET=$(abspath $(TEST_SET))) $(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# Outputs stay out of git (tests/test_notebooks.py checks): run this after saving a notebook you ran.
strip-notebooks: install
	$(BIN)/python scripts/strip_notebooks.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache .mypy_cache
