# make demo: train the Fashion-MNIST MLP end to end.  make test: the test suite.
# Each creates .venv when missing and installs jaxland into it once (a second run installs nothing).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.jaxland-installed
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m jaxland.main --config=configs/fashion_mlp.py

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check jaxland configs tests bench launch

clean-venv:
	rm -rf $(VENV)
