"""The one place that runs a stage into its folder: used by ``nnlab run`` and ``nnlab report``.

A stage runs into ``OUT/.stage<ID>.partial``; its ``metrics.json`` is written there, the
figures of a diverged run are stamped DIVERGED, and only then is the folder renamed to
``OUT/stage<ID>``.  An error or an interrupt (Ctrl-C, SIGTERM) removes the partial folder,
and every folder the run created on the way to ``OUT``, so a result under the real name is
always a finished one and a rejected run leaves nothing behind.  A run killed outright
(SIGKILL, a power cut) cannot clean up: its partial folder names the process that owned
it, and the next run into the same ``OUT`` removes it once that process is gone (and says
so), or refuses while it is still running.

Warnings: a stage runs with its warnings recorded, not printed.  NumPy's floating-point
warnings from a diverged run are what the divergence message already says, so they are
dropped; any other warning becomes one of the stage's messages (printed in its summary,
kept in ``metrics.json``), so nothing but nnlab's own lines reaches the terminal.

Several stages: the ones marked ``RUN_ALONE`` (whose own independent work fills every
core) run first, one at a time, each spreading its work over ``jobs`` processes; the
others then run side by side, one process per stage.  A stage run by itself always gets
all ``jobs`` processes for its own work.  Every stage seeds its own
generators and each process uses one BLAS thread, so the numbers do not depend on
``jobs``.
"""

from __future__ import annotations

import inspect
import os
import shutil
import stat
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from nnlab._io import PathError, check_output_dir
from nnlab.errors import NnlabRuntimeError
from nnlab.parallel import pmap
from nnlab.stages import STAGES
from nnlab.stages.common import Result, write_metrics

#: The file inside a partial folder naming the process that writes it.
OWNER = ".nnlab-owner"


@dataclass
class StageRun:
    """What running one stage gave: its result and wall time, or why it was skipped."""

    stage: str
    result: Result | None
    seconds: float
    skipped: str | None = None


def partial_folder(out: Path, sid: str) -> Path:
    """Where stage ``sid`` runs before it is renamed into ``out/stage<sid>``."""
    return Path(out) / f".stage{sid}.partial"


def check_out(out, ids, flag: str = "--out") -> Path:
    """Check before any work that ``out`` can receive the stages ``ids``; nothing is created.

    ``out`` must be (or be creatable as) a writable folder, and each ``out/stage<ID>`` that
    exists must be a real folder (the finished result is renamed over it).

    Raises:
        PathError: naming ``flag``, the path and what is wrong with it.
    """
    out = check_output_dir(out, flag)
    for sid in ids:
        final = out / f"stage{sid}"
        if os.path.lexists(final) and not stat.S_ISDIR(os.lstat(final).st_mode):
            raise PathError(f"{flag} {out}: {final} exists and is not a folder (a stage's result replaces "
                                  "it); move it away or choose another folder")
    return out


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat(5); the name before ")" may hold spaces
    except (OSError, IndexError):
        return None


def _owner_record() -> str:
    """What a partial folder's owner file holds: this process's id and, where known, its start time."""
    started = _started(os.getpid())
    return f"{os.getpid()}" + (f" {started}" if started else "")


def _owner(partial: Path) -> tuple[int, str | None] | None:
    """``(process id, start time or None)`` recorded in a partial folder, or None (no record, or not readable)."""
    try:
        pid, *started = (partial / OWNER).read_text().split()
        return int(pid), (started[0] if started else None)
    except (OSError, ValueError):
        return None


def _alive(pid: int, started: str | None = None) -> bool:
    """Whether the process that wrote an owner record still runs.  Why the start time: the id of a killed run
    may since have been given to another program, which must not keep its folder forever."""
    if pid == os.getpid():
        return False  # a folder this process left (from an earlier call in the same session) is stale too
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    now = _started(pid)
    return started is None or now is None or now == started


def _remove(path: Path) -> None:
    """Remove a folder tree, or a file or link in its place."""
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_partials(out, ids) -> list[Path]:
    """Remove every partial folder in ``out`` that a killed run left behind; return them.

    A partial folder whose owner is still running is left alone, unless it is one of the
    stages ``ids`` about to run: two runs cannot write the same stage into the same folder.

    Raises:
        NnlabRuntimeError: a stage of ``ids`` is being written into ``out`` by another running process.
    """
    out = Path(out)
    stale = []
    for partial in sorted(out.glob(".stage*.partial")) if out.is_dir() else []:
        owner = _owner(partial)
        pid = owner[0] if owner else None
        if owner is not None and _alive(*owner):
            if partial.name in {partial_folder(out, sid).name for sid in ids}:
                raise NnlabRuntimeError(f"{partial} belongs to a running nnlab (process {pid}); wait for it to "
                                        "finish or choose another --out")
            continue
        _remove(partial)
        stale.append(partial)
    return stale


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _record_warnings(caught, result: Result) -> None:
    """Turn the warnings a stage raised into its messages (a diverged run's numerics are already explained)."""
    lines = []
    for w in caught:
        line = f"warning during the stage ({w.category.__name__}: {w.message})"
        if not (result.diverged and issubclass(w.category, RuntimeWarning)) and line not in lines:
            lines.append(line)
    result.messages.extend(lines)


def run_stage(sid: str, config, out: Path, progress: bool = False, jobs: int = 1) -> StageRun:
    """Run stage ``sid`` with ``config`` into ``out/stage<sid>/`` (atomically); return its :class:`StageRun`.

    ``jobs`` is how many processes the stage may spread its own independent work over.
    """
    module = STAGES[sid]
    out = Path(out)
    final, partial = out / f"stage{sid}", partial_folder(out, sid)
    if os.path.lexists(partial):
        _remove(partial)
    partial.mkdir(parents=True)
    options = {"jobs": jobs} if "jobs" in inspect.signature(module.run).parameters else {}
    start = time.perf_counter()
    try:
        (partial / OWNER).write_text(_owner_record())
        with warnings.catch_warnings(record=True) as caught:
            # NumPy's floating-point warnings are recorded whatever the caller's filters say
            warnings.filterwarnings("always", category=RuntimeWarning)
            result = module.run(config, partial, progress=progress, **options)
        _record_warnings(caught, result)
        write_metrics(result, partial)
        if result.diverged:  # never let a diverged run's figures pass for a trained model's
            from nnlab.plots import stamp

            for name in result.figures.values():
                stamp(partial / name, "DIVERGED")
        (partial / OWNER).unlink()
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if os.path.lexists(final):
        _remove(final)
    partial.rename(final)
    for model, path, extra in getattr(result, "checkpoints", ()):  # last: a failed or stopped run leaves none
        model.save(path, extra=extra)
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

    A partial folder a killed run left in ``out`` is removed first (one line on stderr says
    so).  If the run fails or is interrupted, no partial folder remains, and the folders it
    created to reach ``out`` are removed again when they are empty.

    Args:
        jobs: worker processes (1: everything here, one stage after another).
        progress: progress bars (only where a stage runs in this process).
        skip_missing: a stage whose optional dependency is missing is skipped, not an error.
        threads: BLAS threads for the work done in this process.
    """
    from threadpoolctl import threadpool_limits

    out = Path(out)
    ids = list(configs)
    stale = remove_stale_partials(out, ids)
    if stale:
        print(f"nnlab: removed {', '.join(map(str, stale))}, left by a run that was killed before it finished",
              file=sys.stderr)
    alone = [sid for sid in ids if jobs <= 1 or len(ids) == 1 or getattr(STAGES[sid], "RUN_ALONE", False)]
    together = [sid for sid in ids if sid not in alone]
    created = _missing_folders(out)
    runs = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        with threadpool_limits(threads):  # (workers set their own single thread)
            for sid in alone:
                runs[sid] = _run_or_skip(sid, configs[sid], out, progress, jobs, skip_missing)
            # no progress bars side by side: bars from several processes would interleave
            calls = [(sid, configs[sid], out, False, 1, skip_missing) for sid in together]
            runs.update(zip(together, pmap(_run_or_skip, calls, jobs)))
    except BaseException:
        # a stage in a worker that was stopped (the error of another, or an interrupt) cannot clean up itself
        for sid in ids:
            if sid not in runs and os.path.lexists(partial_folder(out, sid)):
                _remove(partial_folder(out, sid))
        for folder in created:  # deepest first; a folder holding a finished stage stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return [runs[sid] for sid in ids]
