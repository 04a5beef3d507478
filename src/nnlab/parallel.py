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
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # two BLAS threads per worker would fight over the same cores
        return fn(*args)


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
    return Parallel(n_jobs=jobs, backend="loky")(delayed(_one_blas_thread)(fn, args) for fn, args in calls)


def pmap(fn, arg_tuples, jobs: int = 1) -> list:
    """``[fn(*args) for args in arg_tuples]`` in ``jobs`` worker processes (see :func:`run_calls`)."""
    return run_calls([(fn, args) for args in arg_tuples], jobs)
