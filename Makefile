# The README's two commands:  `make report`  and  `make test`.
# Each creates its own virtual environment (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/latest

.PHONY: all report test lint venv demo clean

all: report

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[mnist,tf,torch,dev]"
	touch $(STAMP)

venv: $(STAMP)

## Set up and run the main job: every stage, its figures and metrics.
report: $(STAMP)
	$(VENV)/bin/nnlab run all --out $(OUT)

## Set up and run every check: lint, then the test suite.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs figures .pytest_cache .ruff_cache
