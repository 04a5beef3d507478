"""The one place that runs a stage into its folder: used by ``nnlab run`` and ``nnlab report``.

A stage runs into ``OUT/.stage<ID>.partial``; its ``metrics.json`` is written there, the
figures of a diverged run are stamped DIVERGED, and only then is the folder renamed to
``OUT/stage<ID>``.  An error (or an interrupt) removes the partial folder, so a result
under the real name is always a finished one.

Several stages: the ones marked ``RUN_ALONE`` (whose own independent work fills every
core) run first, one at a time, each spreading its work over ``jobs`` processes; the
others then run side by side, one process per stage.  A stage run by itself always gets
all ``jobs`` processes for its own work.  Every stage seeds its own
generators and each process uses one BLAS thread, so the numbers do not depend on
``jobs``.
"""

from __future__ import annotations

import inspect
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nnlab.parallel import pmap
from nnlab.stages import STAGES
from nnlab.stages.common import Result, write_metrics


@dataclass
class StageRun:
    """What running one stage gave: its result and wall time, or why it was skipped."""

    stage: str
    result: Result | None
    seconds: float
    skipped: str | None = None


def run_stage(sid: str, config, out: Path, progress: bool = False, jobs: int = 1) -> StageRun:
    """Run stage ``sid`` with ``config`` into ``out/stage<sid>/`` (atomically); return its :class:`StageRun`.

    ``jobs`` is how many processes the stage may spread its own independent work over.
    """
    module = STAGES[sid]
    out = Path(out)
    final, partial = out / f"stage{sid}", out / f".stage{sid}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    options = {"jobs": jobs} if "jobs" in inspect.signature(module.run).parameters else {}
    start = time.perf_counter()
    try:
        result = module.run(config, partial, progress=progress, **options)
        write_metrics(result, partial)
        if result.diverged:  # never let a diverged run's figures pass for a trained model's
            from nnlab.plots import stamp

            for name in result.figures.values():
                stamp(partial / name, "DIVERGED")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return StageRun(sid, result, time.perf_counter() - start)


def _run_or_skip(sid, config, out, progress, jobs, skip_missing) -> StageRun:
    try:
        return run_stage(sid, config, out, progress, jobs)
    except ImportError as exc:  # an optional extra (TensorFlow for Stage 6) is not installed
        if not skip_missing:
            raise
        return StageRun(sid, None, 0.0, skipped=str(exc))


def run_stages(configs: dict, out: Path, jobs: int = 1, progress: bool = False, skip_missing: bool = False,
               threads: int = 1) -> list[StageRun]:
    """Run the stages of ``configs`` (stage id -> config) into ``out``; return their runs in the given order.

    Args:
        jobs: worker processes (1: everything here, one stage after another).
        progress: progress bars (only where a stage runs in this process).
        skip_missing: a stage whose optional dependency is missing is skipped, not an error.
        threads: BLAS threads for the work done in this process.
    """
    from threadpoolctl import threadpool_limits

    ids = list(configs)
    alone = [sid for sid in ids if jobs <= 1 or len(ids) == 1 or getattr(STAGES[sid], "RUN_ALONE", False)]
    together = [sid for sid in ids if sid not in alone]
    runs = {}
    with threadpool_limits(threads):  # (workers set their own single thread)
        for sid in alone:
            runs[sid] = _run_or_skip(sid, configs[sid], out, progress, jobs, skip_missing)
        # no progress bars side by side: bars from several processes would interleave
        calls = [(sid, configs[sid], out, False, 1, skip_missing) for sid in together]
        runs.update(zip(together, pmap(_run_or_skip, calls, jobs)))
    return [runs[sid] for sid in ids]
