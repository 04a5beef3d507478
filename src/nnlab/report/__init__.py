"""REPORT.md from the stages' results: gathered here, rendered from templates, numbers never typed.

``nnlab report`` runs every stage through the stage runner (or, with ``--reuse``, reads
the ``metrics.json`` files an earlier ``nnlab run all`` left in the same folder), copies
the figures to ``docs/figures/`` and writes ``REPORT.md``; it also regenerates the design
document's generated tables (``docs/generated/``).  ``nnlab report --check`` does the
same in a temporary folder and fails if the committed REPORT.md or a generated table
differs, so a stale or hand-edited number fails CI.  Only text is compared: PNG bytes
depend on the Matplotlib and FreeType versions, so the figures are regenerated but not
checked.
"""

from __future__ import annotations

import difflib
import json
import shutil
import tempfile
from pathlib import Path

from nnlab._io import atomic_write_text
from nnlab.report.sections import ORDER, render

__all__ = ["ORDER", "check", "collect", "render", "write"]


def collect(out: Path, reuse: bool, progress: bool = False, jobs: int = 1) -> dict:
    """Every stage's ``metrics.json`` contents: read from ``out`` when ``reuse`` and present, else run now."""
    from nnlab.stages import STAGES
    from nnlab.stages.runner import run_stages

    out = Path(out)
    todo = {sid: STAGES[sid].Config() for sid in ORDER
            if not (reuse and (out / f"stage{sid}" / "metrics.json").exists())}
    for run in run_stages(todo, out, jobs=jobs, progress=progress, skip_missing=True):
        if run.skipped:
            print(f"report: skipping stage {run.stage}: {run.skipped}")
    return {sid: json.loads((out / f"stage{sid}" / "metrics.json").read_text()) for sid in ORDER
            if (out / f"stage{sid}" / "metrics.json").exists()}


def _generated(docs: Path) -> dict:
    from nnlab.report.docgen import generated_files

    return {docs / "generated" / name: text for name, text in generated_files().items()}


def write(out: Path, report: Path, figures: Path, docs: Path, reuse: bool, progress: bool = False,
          jobs: int = 1) -> str:
    """Run (or reuse) the stages, copy figures, write the report and the design tables; returns the report."""
    results = collect(out, reuse, progress, jobs)
    for sid, res in results.items():
        dest = Path(figures) / f"stage{sid}"
        dest.mkdir(parents=True, exist_ok=True)
        for name in res["figures"].values():
            shutil.copy2(Path(out) / f"stage{sid}" / name, dest / name)
    text = render(results, Path(figures).as_posix(), docs)
    atomic_write_text(report, text, "--report")
    from nnlab.report.docgen import write as write_generated

    write_generated(Path(docs) / "generated")
    return text


def _diff(path: Path, fresh: str) -> list[str]:
    old = path.read_text() if path.exists() else ""
    if fresh == old:
        return []
    return list(difflib.unified_diff(old.splitlines(), fresh.splitlines(), str(path), "regenerated", lineterm="",
                                     n=1))


def check(report: Path, figures: Path, docs: Path, jobs: int = 1) -> int:
    """Regenerate in a temporary folder; 0 if ``report`` and the design tables are identical, 1 with a diff."""
    with tempfile.TemporaryDirectory() as tmp:
        results = collect(Path(tmp), reuse=False, jobs=jobs)
    fresh = {Path(report): render(results, Path(figures).as_posix(), docs), **_generated(Path(docs))}
    stale = {path: diff for path, text in fresh.items() if (diff := _diff(path, text))}
    if not stale:
        print(f"{report} and {Path(docs) / 'generated'}/ are up to date")
        return 0
    for path, diff in stale.items():
        print("\n".join(diff[:80]))
        print(f"\n{path} differs from a fresh run: run `nnlab report` and commit the result")
    return 1
