"""What every stage shares: its ``Result`` record and small helpers.

A stage's ``run(config, out_dir)`` trains, measures, writes its figures into
``out_dir`` and returns a :class:`Result`.  It never writes the report: that is
:mod:`nnlab.report`'s job, from the ``Result`` alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Result:
    """A stage's measured outcome.

    Attributes:
        stage: stage id, e.g. ``"1"``.
        title: human title.
        config: the configuration that ran (all hyper-parameters, the seed).
        metrics: nested dict of numbers, lists and strings (JSON-ready).
        figures: figure name -> file name inside the stage's folder.
        summary: ``(label, value)`` rows for the printed summary table.
        diverged: True if any training run in the stage diverged.
        messages: warnings and divergence messages.

    A stage may also set ``result.checkpoints`` to ``[(model, path, extra), ...]``: the runner
    saves them once the stage's folder is in place, so an unfinished run writes no model.
    """

    stage: str
    title: str
    config: dict
    metrics: dict
    figures: dict = field(default_factory=dict)
    summary: list = field(default_factory=list)
    diverged: bool = False
    messages: list = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready dict (what ``metrics.json`` holds)."""
        return jsonable(dataclasses.asdict(self))


def jsonable(obj):
    """Convert NumPy scalars/arrays and tuples to plain JSON types; NaN/inf become strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else str(value)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_metrics(result: Result, out_dir: Path) -> Path:
    """Write ``metrics.json`` (sorted keys, stable formatting) into ``out_dir``."""
    path = Path(out_dir) / "metrics.json"
    path.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    return path


def config_dict(config) -> dict:
    """A config dataclass as a plain dict."""
    return jsonable(dataclasses.asdict(config))


def least_squares_line(x, y) -> tuple[float, float, float]:
    """The least-squares line through the points ``(x, y)`` (both (n,)): ``(w, b, mean((w x + b - y)^2))``."""
    w, b = np.polyfit(x, y, 1)
    return float(w), float(b), float(np.mean((w * x + b - y) ** 2))


def fmt(x, digits=4) -> str:
    """Format a number compactly for summary tables."""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"
