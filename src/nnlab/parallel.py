"""Independent work spread over one process per core (joblib), with the same numbers as one process.

Every task runs with one BLAS thread and seeds its own random generators, so the
result of :func:`pmap` does not depend on how many processes ran it: a stage's
``metrics.json`` is byte-identical with one worker or several (a test checks this).
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """How many processes to use by default: the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _one_blas_thread(fn, args):
    """``(fn(*args), its warnings)`` with one BLAS thread; the warnings as picklable tuples."""
    import warnings

    from threadpoolctl import threadpool_limits

    # A worker's warnings would go straight to the terminal; they travel back to be raised in the
    # caller instead, where the caller's filters (the stage runner's record) decide.
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        result = fn(*args)
    return result, [(str(w.message), w.category, w.filename, w.lineno) for w in caught]


def _replay(outcomes) -> list:
    """The results of :func:`_one_blas_thread` calls, each call's warnings raised again here."""
    import warnings

    results = []
    for result, caught in outcomes:
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        results.append(result)
    return results


def run_calls(calls, jobs: int = 1) -> list:
    """``[fn(*args) for fn, args in calls]``, computed in ``jobs`` worker processes.

    Args:
        calls: ``(fn, args)`` pairs; ``fn`` a module-level function (it is pickled into the
            workers), ``args`` a tuple of its positional arguments.
        jobs: worker processes; 1 runs every call here, in order, in this process.
    Returns:
        the results, in the order of ``calls``.
    """
    calls = [(fn, tuple(args)) for fn, args in calls]
    if jobs <= 1 or len(calls) <= 1:
        return [fn(*args) for fn, args in calls]
    from joblib import Parallel, delayed

    # Arguments above 1 MB (image arrays) reach the workers as read-only memory maps, written once per call.
    return _replay(Parallel(n_jobs=jobs, backend="loky")(delayed(_one_blas_thread)(fn, args) for fn, args in calls))


def pmap(fn, arg_tuples, jobs: int = 1) -> list:
    """``[fn(*args) for args in arg_tuples]`` in ``jobs`` worker processes (see :func:`run_calls`)."""
    return run_calls([(fn, args) for args in arg_tuples], jobs)
