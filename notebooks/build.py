"""Build the notebooks from their sources; with ``--execute``, run them and store their outputs.

Each notebook is written as a plain Python file in ``notebooks/sources/``, in the "percent"
format that editors (VS Code, PyCharm, Jupytext) run cell by cell::

    # %% [markdown]
    # ## A heading
    # The markdown cell's text, every line behind "# ".

    # %%
    print("a code cell")

so that a change to a notebook reads as a diff of a Python file.  This script turns
``sources/<name>.py`` into ``notebooks/<name>.ipynb`` and puts the set-up cell shared by
every notebook (``sources/_setup.py``) right after the title cell.

``--execute`` runs each notebook top to bottom in full mode (``NNLAB_QUICK`` unset), in a
kernel that imports this repository's ``src/nnlab``, and stores it with its outputs (figures
as PNG) and a fingerprint of what made them, in the notebook's metadata under ``"nnlab"``:
a SHA-256 of the library's source and one of the notebook's own cells.
``tests/test_notebooks.py`` recomputes both and fails, saying to run ``make notebooks``, when
either has changed since.  Without ``--execute`` the notebooks are written without outputs
(quick to iterate on; the freshness test then asks for ``make notebooks``).

Usage::

    python notebooks/build.py [--execute] [NAME ...]     # NAME: e.g. stage1_linear_estimator
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent
ROOT = NOTEBOOKS_DIR.parent
SOURCES_DIR = NOTEBOOKS_DIR / "sources"
LIBRARY_DIR = ROOT / "src" / "nnlab"
SETUP_SOURCE = SOURCES_DIR / "_setup.py"

#: Notebook name -> the stage (``nnlab run ID``) it walks through, in reading order.  Every stage
#: of ``nnlab.stages.STAGES`` needs one (``tests/test_notebooks.py`` says which are missing).
NOTEBOOKS = {
    "stage1_linear_estimator": "1",
    "stage2_two_layer_linear": "2",
    "stage3_nonlinear_mlp": "3",
    "stage4_credit_weights": "4",
    "stage5_digits_classifier": "5",
    "stage5_accuracy_study": "accuracy",
    "stage6_keras": "6",
    "stage7_own_network": "7",
    "cnn": "cnn",
    "ablation": "ablation",
}
#: The library files whose content the stored outputs depend on (package data included).
LIBRARY_PATTERNS = ("*.py", "*.j2")
#: Longest cell, in lines: one screen.
MAX_CELL_LINES = 40
#: A notebook's reading budget, so that it reads in about ten minutes: words of markdown and lines
#: of code (a proxy at roughly a hundred words or a dozen lines of code a minute, not a measurement).
MAX_MARKDOWN_WORDS = 900
MAX_CODE_LINES = 130
#: Longest a notebook may run in full mode before the build gives up on it.
TIMEOUT_SECONDS = 3600

_MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?\s*$")


def library_fingerprint(library_dir: Path = LIBRARY_DIR) -> str:
    """SHA-256 over every library source file: sorted relative paths, each followed by its bytes."""
    digest = hashlib.sha256()
    files = sorted({path for pattern in LIBRARY_PATTERNS for path in library_dir.rglob(pattern)
                    if "__pycache__" not in path.parts})
    for path in files:
        digest.update(path.relative_to(library_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def cells_fingerprint(nb) -> str:
    """SHA-256 of a notebook's cells as written: each cell's type and source, in order (outputs excluded)."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def freshness_problems(nb, library_dir: Path = LIBRARY_DIR) -> list[str]:
    """Why the stored outputs of ``nb`` may not be what its cells make with the library now (empty: none).

    Compares the fingerprints recorded by :func:`execute` with the library in ``library_dir`` and
    with the notebook's own cells.
    """
    made = nb.metadata.get("nnlab")
    if not made:
        return ["it holds no executed outputs"]
    problems = []
    if made.get("mode") != "full":
        problems.append(f"it was executed in {made.get('mode')!r} mode, not 'full'")
    if made.get("cells_sha256") != cells_fingerprint(nb):
        problems.append("its cells changed after its outputs were made")
    if made.get("library_sha256") != library_fingerprint(library_dir):
        problems.append("src/nnlab changed after its outputs were made")
    return problems


def parse_source(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into ``(cell_type, source)`` pairs.

    Lines before the first ``# %%`` marker must be blank.  A markdown cell's lines lose their
    leading ``# `` (a lone ``#`` is an empty line); blank lines around every cell are dropped.
    """
    cells: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        marker = _MARKER.match(line)
        if marker:
            cells.append(("markdown" if marker["markdown"] else "code", []))
        elif not cells:
            if line.strip():
                raise ValueError(f"line {number}: text before the first '# %%' cell marker")
        elif cells[-1][0] == "markdown":
            if line.strip() and line != "#" and not line.startswith("# "):
                raise ValueError(f"line {number}: a markdown line must start with '# ': {line!r}")
            cells[-1][1].append(line[2:])
        else:
            cells[-1][1].append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def build_notebook(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` from its source, without outputs: title cell, shared set-up cell, the rest."""
    cells = parse_source((SOURCES_DIR / f"{name}.py").read_text())
    setup = parse_source(SETUP_SOURCE.read_text())
    if not cells or cells[0][0] != "markdown":
        raise ValueError(f"sources/{name}.py must open with a markdown title cell")
    cells = [cells[0], *setup, *cells[1:]]
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for index, (kind, source) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"{name[:50]}-{index:02d}"))  # fixed ids: rebuilding changes nothing
    return nb


def available(names=None) -> tuple[list[str], list[str]]:
    """``(to build, skipped)``: the notebooks of ``names`` (default all) whose stage the library has, and the rest."""
    from nnlab.stages import STAGES

    chosen = names or list(NOTEBOOKS)
    unknown = [n for n in chosen if n not in NOTEBOOKS]
    if unknown:
        raise SystemExit(f"build.py: unknown notebook(s) {unknown}; known: {', '.join(NOTEBOOKS)}")
    return [n for n in chosen if NOTEBOOKS[n] in STAGES], [n for n in chosen if NOTEBOOKS[n] not in STAGES]


def stages_without_notebook() -> list[str]:
    """The ids of the library's stages (``nnlab.stages.STAGES``) that no notebook walks through yet."""
    from nnlab.stages import STAGES

    return sorted(set(STAGES) - set(NOTEBOOKS.values()))


def kernel_environment() -> dict:
    """The kernel's environment: full mode, this repository's ``src`` first on the path, one BLAS thread."""
    env = {k: v for k, v in os.environ.items() if k != "NNLAB_QUICK"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrix products slow down with more threads
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    return env


def execute(nb) -> float:
    """Run ``nb`` in place in the notebooks folder, in full mode; record its fingerprints; return the seconds."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=TIMEOUT_SECONDS, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    start = time.perf_counter()
    client.execute(env=kernel_environment())
    seconds = time.perf_counter() - start
    merge_streams(nb)
    stamp(nb)
    return seconds


def merge_streams(nb) -> None:
    """Join each code cell's consecutive outputs to the same stream (stdout, stderr) into one output, in place.

    Why: the kernel sends printed text in chunks whose boundaries depend on timing, so the same
    cell printed the same lines as one output in one run and as two in the next; merged, a
    rebuild that prints the same text stores the same file.
    """
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if out.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream" \
                    and last.get("name") == out.get("name"):
                last["text"] = "".join(last["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        if "outputs" in cell:
            cell["outputs"] = merged


def stamp(nb, library_dir: Path = LIBRARY_DIR) -> None:
    """Record in ``nb``'s metadata that its outputs were made in full mode by these cells and this library."""
    nb.metadata["nnlab"] = {"mode": "full", "library_sha256": library_fingerprint(library_dir),
                            "cells_sha256": cells_fingerprint(nb)}


def main(argv=None) -> int:
    """Write the notebooks; with ``--execute`` run them first and print each one's run time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all)")
    parser.add_argument("--execute", action="store_true", help="run each in full mode and store its outputs")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))  # this repository's nnlab, whose source the fingerprint covers
    names, skipped = available(args.names)
    for name in skipped:
        print(f"skipped {name}: the library has no stage {NOTEBOOKS[name]!r}")
    for stage in stages_without_notebook():
        print(f"no notebook for stage {stage!r}: write notebooks/sources/<name>.py and add it to NOTEBOOKS")
    times = {}
    for name in names:
        nb = build_notebook(name)
        if args.execute:
            print(f"running {name} ...", flush=True)
            times[name] = execute(nb)
            print(f"  {times[name]:.1f} s", flush=True)
        nbformat.write(nb, NOTEBOOKS_DIR / f"{name}.ipynb")
    if times:
        print(f"all notebooks: {sum(times.values()):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
