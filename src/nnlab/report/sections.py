"""REPORT.md from the stages' results: one Jinja2 template per section, numbers never typed.

``render(results, figures_rel, docs)`` builds each section's values with
:mod:`nnlab.report.context` and renders ``templates/<section>.md.j2`` with
``StrictUndefined``, so a template that names a value the results do not hold is an
error, not a blank.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

from nnlab.report import context
from nnlab.report.format import FILTERS, figure, table

#: The report's stage sections, in order: (stage id, template, context builder).
SECTIONS = (
    ("1", "stage1", context.stage1), ("2", "stage2", context.stage2), ("3", "stage3", context.stage3),
    ("4", "stage4", context.stage4), ("5", "stage5", context.stage5), ("accuracy", "accuracy", context.accuracy),
    ("cnn", "cnn", context.cnn),
    ("6", "stage6", context.stage6), ("7", "stage7", context.stage7), ("ablation", "ablation", context.ablation),
)
ORDER = tuple(sid for sid, _, _ in SECTIONS)
TEMPLATES = Path(__file__).parent / "templates"


@functools.lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment: templates from this package, strict about undefined values."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(FILTERS)
    env.globals["table"] = table
    return env


def render_section(name: str, values: dict, figures_rel: str = "", sid: str = "", figures: dict | None = None) -> str:
    """Render ``templates/<name>.md.j2`` with ``values``; ``fig(key, caption)`` draws the stage's figures.

    ``figures`` (figure key -> file name) is also visible to the template, for figures a
    stage draws only sometimes (misclassified images when there are any).
    """
    def fig(key, caption):
        return figure(figures_rel, sid, figures or {}, key, caption)

    return environment().get_template(f"{name}.md.j2").render(**values, fig=fig, figures=figures or {})


def _copied(path: Path, start: str, fallback: str) -> str:
    """The part of a generated Markdown file from ``start`` on (its own title and preamble dropped)."""
    if not path.exists():
        return fallback
    text = path.read_text()
    return text[text.index(start):] if start in text else text


def render(results: dict, figures_rel: str, docs: Path) -> str:
    """REPORT.md's text from the stage results (``metrics.json`` contents) and the files in ``docs``."""
    parts = [render_section("header", {"stages": [sid for sid in ORDER if sid in results]})]
    docs = Path(docs)
    for sid, name, build in SECTIONS:
        if sid in results:
            # a section that quotes a hand-run file in ``docs`` (the ablation's times) takes the folder too
            values = build(results, docs) if "docs" in inspect.signature(build).parameters else build(results)
            parts.append(render_section(name, values, figures_rel, sid, results[sid]["figures"]))
    parts.append(render_section("speed", {"benchmarks": _copied(docs / "benchmarks.md", "Made by",
                                                                "(not run yet)\n")}))
    parts.append(render_section("robustness", {"robustness": _copied(docs / "robustness.md", "| entry point",
                                                                     "(not generated yet)\n")}))
    parts.append(render_section("closing", context.closing(results)))
    return "\n".join(parts)
