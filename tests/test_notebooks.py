"""The notebooks as stored: built from their sources, complete with outputs, and made by the current code.

``make notebooks`` (``notebooks/build.py --execute``) writes every notebook with its outputs and,
in its metadata, fingerprints of the library source and of its own cells.  CI runs the notebooks
in quick mode (``pytest notebooks --nbmake``) but never writes them back, so the stored outputs
can only go stale: these tests say so, and what to run, when they have.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
RERUN = "run `make notebooks` (python notebooks/build.py --execute) and commit the notebooks"


def _load_build():
    spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "notebooks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
NAMES, _ = build.available()


def _stored(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    assert path.exists(), f"notebooks/{name}.ipynb is missing: {RERUN}"
    return nbformat.read(path, as_version=4)


def test_every_stage_has_a_notebook():
    from nnlab.stages import STAGES

    missing = sorted(set(STAGES) - set(build.NOTEBOOKS.values()))
    assert not missing, f"stage(s) {missing} have no notebook: add notebooks/sources/<name>.py and an entry in " \
                        "NOTEBOOKS in notebooks/build.py, then " + RERUN


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_built_from_its_source(name):
    """The stored cells are what ``build.py`` makes of ``sources/<name>.py`` (plus the shared set-up cell)."""
    assert (build.SOURCES_DIR / f"{name}.py").exists(), f"notebooks/sources/{name}.py is missing"
    expected = [(c.cell_type, c.source) for c in build.build_notebook(name).cells]
    stored = [(c.cell_type, c.source) for c in _stored(name).cells]
    if stored != expected:
        first = next((i for i, pair in enumerate(zip(stored, expected)) if pair[0] != pair[1]), len(stored))
        pytest.fail(f"notebooks/{name}.ipynb differs from notebooks/sources/{name}.py from cell {first} on: {RERUN}")


@pytest.mark.parametrize("name", NAMES)
def test_stored_outputs_come_from_the_current_code(name):
    """The fingerprints recorded when the outputs were made match the library and the cells as they are now."""
    nb = _stored(name)
    made = nb.metadata.get("nnlab")
    assert made, f"notebooks/{name}.ipynb holds no executed outputs: {RERUN}"
    assert made["mode"] == "full", f"notebooks/{name}.ipynb was executed in {made['mode']} mode: {RERUN}"
    assert made["cells_sha256"] == build.cells_fingerprint(nb), \
        f"notebooks/{name}.ipynb: its cells changed after its outputs were made: {RERUN}"
    assert made["library_sha256"] == build.library_fingerprint(), \
        f"notebooks/{name}.ipynb: src/nnlab changed after its stored outputs were made: {RERUN}"


@pytest.mark.parametrize("name", NAMES)
def test_stored_outputs_are_complete(name):
    """Every code cell ran, in order, without an error, and the figures are embedded as PNG."""
    nb = _stored(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), \
        f"notebooks/{name}.ipynb: not every cell ran, top to bottom: {RERUN}"
    outputs = [o for c in code for o in c.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, f"notebooks/{name}.ipynb stored an error: {errors[0]}"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"notebooks/{name}.ipynb has no figure"


@pytest.mark.parametrize("name", NAMES)
def test_cells_fit_on_a_screen(name):
    lines = [c.source.count("\n") + 1 for c in build.build_notebook(name).cells]
    long = {i: n for i, n in enumerate(lines) if n > build.MAX_CELL_LINES}
    assert not long, f"notebooks/sources/{name}.py: cells (index: lines) longer than a screen: {long}"


def test_the_fingerprint_sees_a_one_line_change(tmp_path):
    """The library fingerprint changes with any line of any source file (and not with byte-code)."""
    library = tmp_path / "nnlab"
    shutil.copytree(build.LIBRARY_DIR, library, ignore=shutil.ignore_patterns("__pycache__"))
    before = build.library_fingerprint(library)
    (library / "__pycache__").mkdir(exist_ok=True)
    (library / "__pycache__" / "cached.cpython.pyc").write_bytes(b"\0")
    assert build.library_fingerprint(library) == before
    target = library / "functional.py"
    target.write_text(target.read_text() + "# one more line\n")
    assert build.library_fingerprint(library) != before
    template = next(library.rglob("*.j2"))
    target.write_text(target.read_text().removesuffix("# one more line\n"))
    assert build.library_fingerprint(library) == before
    template.write_text(template.read_text() + " ")
    assert build.library_fingerprint(library) != before


def test_the_cells_fingerprint_sees_an_edited_cell():
    nb = build.build_notebook(NAMES[0])
    before = build.cells_fingerprint(nb)
    nb.cells[-1].source += " "
    assert build.cells_fingerprint(nb) != before


def test_parse_source_reads_the_percent_format():
    text = "\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\nprint(x)\n\n# %%\ny = 2\n"
    assert build.parse_source(text) == [("markdown", "# Title\n\ntext"), ("code", "x = 1\n\nprint(x)"),
                                        ("code", "y = 2")]
    with pytest.raises(ValueError, match="before the first"):
        build.parse_source("stray\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match="must start with"):
        build.parse_source("# %% [markdown]\nnot a comment\n")
