# Entry points, each setting itself up on a fresh clone:
#   make demo   train the DCGAN on MNIST, then sample 64 digits from it
#   make test   run the test suite, after make lint
#   make lint   ruff and mypy over the code
#   make serve  every trained run on a local web page (zoo serve)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Offline development data (the project's shared folder beside the clone), when present.
export ZOO_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: setup demo serve lint test clean

# The suite runs on one worker process per core (pytest-xdist; at most 4), each on one thread:
# its networks are tiny, so a second thread per process buys nothing and the cores go further
# as processes (on 2 cores: 1.5x faster than one process on both). TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto

$(BIN)/zoo: pyproject.toml tests/thirdparty/zoo-tiny/pyproject.toml
	@echo "setting up $(VENV): torch, torchvision, wandb, ... (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]" -e ./tests/thirdparty/zoo-tiny
	@touch $@

setup: $(BIN)/zoo

demo: setup
	$(BIN)/zoo train dcgan --preset demo
	$(BIN)/zoo sample dcgan --n 64 --force
	@if [ "$$(command -v zoo)" != "$(abspath $(BIN))/zoo" ]; then \
		echo "zoo is in $(VENV), not on your PATH: type $(BIN)/zoo, or first run '. $(BIN)/activate' in"; \
		echo "this shell and then zoo, as the README does: zoo eval dcgan, zoo report dcgan, zoo list"; fi

# zoo serve's page (the serve extra: Gradio), on http://127.0.0.1:7860
serve: setup
	$(BIN)/python -m pip install --quiet -e ".[serve]"
	$(BIN)/zoo serve

# mypy cannot run setuptools' editable-install finder, so it reads the code through links that
# lay plugins/ and pipelines/ out under their installed names, zoo.plugins and zoo.pipelines
# ([tool.mypy] in pyproject.toml).
TYPECHECK_TREE := build/typecheck

lint: setup
	$(BIN)/ruff check .
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)/zoo
	ln -s $(CURDIR)/zoo/* $(CURDIR)/plugins $(CURDIR)/pipelines $(TYPECHECK_TREE)/zoo/
	$(BIN)/mypy

# Fashion-MNIST's tests need Debian's package, zoo serve's browser tests Debian's Chromium and its
# driver: installed here when we are root; a failed install stops make test (as root or not, the
# tests that need them fail saying how to install them).
FASHION_MNIST := /usr/share/datasets/fashion-mnist

test: setup lint
	@test -d $(FASHION_MNIST) || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
		{ echo "make test: could not install Fashion-MNIST (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
	@{ command -v chromium && command -v chromedriver; } >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq chromium chromium-driver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
		{ echo "make test: could not install Chromium (apt-get install chromium chromium-driver)" >&2; exit 1; }
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(TYPECHECK_TREE)
