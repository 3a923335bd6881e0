# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The official MNIST test set, when it sits beside the project (workspace and CI only):
# the demo then validates on it, so its numbers compare with the book's.
TEST_SET := $(wildcard ../shared/data/mnist-test)

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/digitlab data get mnist_sample
	$(BIN)/digitlab demo --data mnist_sample $(if $(TEST_SET),--valid $(TEST_SET))

test: install
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
