# The README's two commands:  `make report`  and  `make test`.
# Each creates its own virtual environment (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/latest

.PHONY: all report test lint venv docs notebooks bench mutation clean

all: report

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[mnist,tf,torch,dev]"
	touch $(STAMP)

venv: $(STAMP)

## Set up and run the main job: every stage, then REPORT.md with its figures (docs/figures/), then the notebooks.
report: $(STAMP)
	$(VENV)/bin/nnlab report --out $(OUT)
	$(MAKE) --no-print-directory notebooks

## Build notebooks/*.ipynb from notebooks/sources/, execute each in full mode and store it with its outputs
## (figures as PNG) and the fingerprints tests/test_notebooks.py checks. One BLAS thread, as in the stages.
notebooks: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) notebooks/build.py --execute

## Set up and run every check: lint, the test suite (notebooks included, on two worker processes), and
## REPORT.md and docs/generated/ against a fresh run. One BLAS thread per process: with more, the small
## matrix products of these networks slow down on a busy machine.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 NNLAB_QUICK=1 $(PY) -m pytest -q -p no:cacheprovider -n 2 tests notebooks --nbmake
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(VENV)/bin/nnlab report --check

## The design document: docs/design.tex -> docs/design.pdf (needs texlive-latex-recommended and latexmk);
## its module table and CLI synopsis (docs/generated/) are generated from the code first.
docs: $(STAMP)
	$(PY) -m nnlab.report.docgen docs/generated
	cd docs && latexmk -pdf -interaction=nonstopmode -halt-on-error design.tex >/dev/null && latexmk -c design.tex >/dev/null

## The speed comparison (not part of the tests: timings are noisy); rewrites docs/benchmarks.md's main tables.
## Its other sections each have their own, longer command: nnlab bench --tabular, --cnn, --runs (with --markdown).
bench: $(STAMP)
	$(VENV)/bin/nnlab bench --keras --repeats 7 --markdown docs/benchmarks.md

## Mutation testing of the core (slow, by hand, not in CI): mutmut with the test selection and timeouts of
## [tool.mutmut] in pyproject.toml, then docs/testing.md with the score and every mutant left alive.
## Results are cached in mutants/; delete it to start afresh.
mutation: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 NNLAB_QUICK=1 $(VENV)/bin/mutmut run --max-children 2
	$(PY) tools/mutation_report.py docs/testing.md

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs figures .pytest_cache .ruff_cache mutants
