"""The notebooks as stored: built from their sources, complete with outputs, and made by the current code.

``make notebooks`` (``notebooks/build.py --execute``) writes every notebook with its outputs and,
in its metadata, fingerprints of the library source and of its own cells.  CI runs the notebooks
in quick mode (``pytest notebooks --nbmake``) but never writes them back, so the stored outputs
can only go stale: these tests say so, and what to run, when they have.
"""

from __future__ import annotations

import importlib.util
import re
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
    missing = build.stages_without_notebook()
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
    problems = build.freshness_problems(_stored(name))
    assert not problems, f"notebooks/{name}.ipynb: {'; '.join(problems)}: {RERUN}"


def test_the_freshness_check_fails_when_the_library_changes_without_regeneration(tmp_path):
    """A notebook stamped as made by a copy of src/nnlab: fresh as stamped, stale after a one-line edit of the copy."""
    nb = build.build_notebook(NAMES[0])
    library = tmp_path / "nnlab"
    shutil.copytree(build.LIBRARY_DIR, library, ignore=shutil.ignore_patterns("__pycache__"))
    build.stamp(nb, library)
    assert build.freshness_problems(nb, library) == []
    layer = library / "layers.py" if (library / "layers.py").exists() else next(library.rglob("*.py"))
    layer.write_text(layer.read_text() + "# an edit after the notebooks were made\n")
    assert build.freshness_problems(nb, library) == ["src/nnlab changed after its outputs were made"]
    nb.cells[-1].source += "\nprint('an edited cell')"
    assert "its cells changed after its outputs were made" in build.freshness_problems(nb, library)
    del nb.metadata["nnlab"]
    assert build.freshness_problems(nb, library) == ["it holds no executed outputs"]


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


@pytest.mark.parametrize("name", NAMES)
def test_notebook_reads_in_ten_minutes(name):
    cells = build.build_notebook(name).cells
    words = sum(len(c.source.split()) for c in cells if c.cell_type == "markdown")
    lines = sum(c.source.count("\n") + 1 for c in cells if c.cell_type == "code")
    assert words <= build.MAX_MARKDOWN_WORDS, f"notebooks/sources/{name}.py: {words} words of markdown"
    assert lines <= build.MAX_CODE_LINES, f"notebooks/sources/{name}.py: {lines} lines of code"


# A number in prose: a decimal, a percentage or an integer of two or more digits.  Digits inside a
# name (float64, L2, stage1) and an image size (8×8) are not numbers of this kind; code spans are
# code, and quote the handout's (``X[:2000]``).
_CODE_SPAN = re.compile(r"`[^`]*`")
_IMAGE_SIZE = re.compile(r"\d+×\d+")
_TYPED_NUMBER = re.compile(r"(?<![\w.])(?:\d+[.,]\d+|\d+\s*%|\d{2,})(?![\w×])")


def typed_numbers(markdown: str) -> list[str]:
    """The numbers typed into ``markdown`` prose (see above): each one a result a cell should print instead."""
    prose = _IMAGE_SIZE.sub(" ", _CODE_SPAN.sub(" ", markdown))
    return _TYPED_NUMBER.findall(prose)


def test_typed_numbers_finds_results_typed_into_prose():
    planted = "The test accuracy is 0.9731, 97 % of the 360 rows; about 1,000 steps."
    assert typed_numbers(planted) == ["0.9731", "97 %", "360", "1,000"]
    allowed = "Stage 5 in float64 with L2, the 8×8 digits, `X[:2000]`, `lr < 2/λ_max`, [0, 1], the 2 forgotten."
    assert typed_numbers(allowed) == []


@pytest.mark.parametrize("name", NAMES)
def test_markdown_holds_no_typed_numbers(name):
    """Checkpoint answers come from numbers the cells print, never from numbers typed into the prose."""
    typed = {i: typed_numbers(c.source) for i, c in enumerate(build.build_notebook(name).cells)
             if c.cell_type == "markdown"}
    typed = {i: found for i, found in typed.items() if found}
    assert not typed, f"notebooks/sources/{name}.py: numbers typed into markdown (cell: numbers): {typed}"


#: Stages for which the handout lists no checkpoint questions.
WITHOUT_CHECKPOINTS = {"6"}


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_questions_are_headings_answered_by_code(name):
    """Every checkpoint is a markdown heading, and a code cell that prints or shows follows it."""
    if build.NOTEBOOKS[name] in WITHOUT_CHECKPOINTS:
        pytest.skip(f"the handout asks no checkpoint questions in stage {build.NOTEBOOKS[name]}")
    cells = build.build_notebook(name).cells
    headings = [i for i, c in enumerate(cells) if c.cell_type == "markdown"
                and re.search(r"^#+ Checkpoint", c.source, re.MULTILINE)]
    assert headings, f"notebooks/sources/{name}.py has no '## Checkpoint: ...' heading"
    for i in headings:
        answer = next((c for c in cells[i + 1:] if c.cell_type == "code"), None)
        assert answer is not None and re.search(r"\b(print|show)\(", answer.source), \
            f"notebooks/sources/{name}.py: the checkpoint in cell {i} is not followed by a cell that prints its answer"


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


def test_consecutive_outputs_to_one_stream_are_merged():
    """The kernel splits printed text at timing-dependent points; merged, the same prints store the same file."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('a'); print('b')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
                    nbformat.v4.new_output("stream", name="stdout", text=["b\n", "c\n"]),
                    nbformat.v4.new_output("stream", name="stderr", text="warn\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="d\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), cell]
    build.merge_streams(nb)
    assert [(o.name, o.text) for o in nb.cells[1].outputs] == [("stdout", "a\nb\nc\n"), ("stderr", "warn\n"),
                                                                ("stdout", "d\n")]


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebooks_hold_no_split_stream(name):
    for i, cell in enumerate(_stored(name).cells):
        outs = cell.get("outputs", [])
        for a, b in zip(outs, outs[1:]):
            assert not (a.output_type == b.output_type == "stream" and a.name == b.name), \
                f"notebooks/{name}.ipynb cell {i}: two outputs to {a.name} in a row: {RERUN}"
