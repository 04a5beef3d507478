"""``nnlab bench --runs``: the wall and CPU time of whole runs, against the goals set for them.

Two commands are timed, each in a subprocess, one after the other:

- ``nnlab run all`` in full mode (every stage and study, on the default number of worker
  processes), into a temporary folder, with the time of each stage as ``nnlab run`` prints it;
- ``make test`` (lint, the test suite, ``nnlab report --check``), only from a checkout of the
  repository (a ``Makefile`` with a ``test`` target in the working folder), with the test
  suite's own time as pytest prints it.

CPU time is the operating system's account of the subprocess and of every process it waited
for (its worker processes included): ``getrusage(RUSAGE_CHILDREN)`` before and after.  Stages
run side by side, so their times overlap and do not add up to the wall time.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARK = "<!-- nnlab bench --runs -->"

#: Wall-time goals in seconds, set in issue #12 ("Fast by design") for this 2-core machine kind.
GOALS = {"nnlab run all": 90.0, "make test": 180.0}

#: A stage's line in ``nnlab run``'s output: its title, then its wall time in parentheses.
_STAGE_LINE = re.compile(r"^(?P<title>\S.*?)  \((?P<seconds>\d+(?:\.\d+)?) s\)")
#: pytest's closing line, e.g. ``1706 passed, 3 skipped in 176.62s (0:02:56)``.
_PYTEST_LINE = re.compile(r"^=*\s*(?P<counts>\d+ passed.*?) in (?P<seconds>\d+(?:\.\d+)?)s\b", re.MULTILINE)


def time_command(command: list[str], cwd=None) -> dict:
    """Run ``command`` to its end; return its wall and CPU seconds, exit status and output (stdout and stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": command, "wall_seconds": wall, "cpu_seconds": cpu, "returncode": proc.returncode,
            "stdout": proc.stdout, "stderr": proc.stderr}


def stage_seconds(output: str) -> list[tuple[str, float]]:
    """``(title, seconds)`` of every stage in ``nnlab run``'s output, in the order printed."""
    return [(m["title"], float(m["seconds"])) for line in output.splitlines() if (m := _STAGE_LINE.match(line))]


def pytest_summary(output: str) -> tuple[str, float] | None:
    """pytest's counts (``"1706 passed, 3 skipped"``) and its own seconds, from its closing line; None if absent."""
    found = list(_PYTEST_LINE.finditer(output))  # the last closing line is the whole suite's
    return (found[-1]["counts"], float(found[-1]["seconds"])) if found else None


def has_make_test(folder=".") -> bool:
    """Whether ``folder`` is a checkout whose ``Makefile`` has a ``test`` target (and ``make`` is installed)."""
    makefile = Path(folder) / "Makefile"
    from shutil import which

    return which("make") is not None and makefile.is_file() and re.search(
        r"^test\s*:", makefile.read_text(errors="replace"), re.MULTILINE) is not None


def _failed(name: str, timed: dict) -> RuntimeError:
    last = (timed["stderr"].strip() or timed["stdout"].strip()).splitlines()[-1:]
    return RuntimeError(f"{name} failed (exit {timed['returncode']}): {' '.join(last)}")


def run(make_test: bool = True, quick: bool = False) -> dict:
    """Time ``nnlab run all`` (``--quick`` with ``quick``) and, where possible, ``make test``; see the module doc."""
    from nnlab.bench import revision_text

    results = {"cpus": os.cpu_count(), "load_start": os.getloadavg()[0], "quick": quick, "revision": revision_text()}
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "nnlab.cli", "run", "all", "--out", str(Path(tmp) / "runs"),
                   "--no-progress"] + (["--quick"] if quick else [])
        timed = time_command(command)
    if timed["returncode"] not in (0, 1):  # 1: a stage diverged, which its own output says; still timed
        raise _failed("nnlab run all", timed)
    results["nnlab run all"] = {"wall_seconds": timed["wall_seconds"], "cpu_seconds": timed["cpu_seconds"],
                                "stages": stage_seconds(timed["stdout"])}
    if make_test and has_make_test():
        timed = time_command(["make", "--no-print-directory", "test"])
        if timed["returncode"] != 0:
            raise _failed("make test", timed)
        results["make test"] = {"wall_seconds": timed["wall_seconds"], "cpu_seconds": timed["cpu_seconds"],
                                "pytest": pytest_summary(timed["stdout"])}
    results["load_end"] = os.getloadavg()[0]
    return results


def _verdict(name: str, wall: float) -> str:
    goal = GOALS[name]
    return f"{goal:.0f} s: {'met' if wall <= goal else 'missed'}"


def table(results: dict) -> str:
    """The ``--runs`` section of docs/benchmarks.md, between ``MARK`` lines."""
    mode = " --quick" if results["quick"] else ""
    lines = [MARK, "## Whole runs", "",
             f"Made by `nnlab bench --runs{mode}`: each command in a subprocess, one after the other; CPU time counts "
             f"the command and every process it waited for. {results['cpus']} CPUs, load average (1 min) "
             f"{results['load_start']:.1f} at the start, {results['load_end']:.1f} at the end; "
             f"{results.get('revision', 'commit not recorded')}.", "",
             "| command | wall (s) | CPU (s) | goal (wall) |", "|---|---:|---:|---|"]
    names = {"nnlab run all": f"`nnlab run all{mode}`", "make test": "`make test` (lint, tests, `report --check`)"}
    for name, label in names.items():
        if name in results:
            r = results[name]
            lines.append(f"| {label} | {r['wall_seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                         f"{_verdict(name, r['wall_seconds'])} |")
    if "make test" not in results:
        lines += ["", "`make test` was not timed: not run from a checkout of the repository."]
    elif results["make test"]["pytest"]:
        counts, seconds = results["make test"]["pytest"]
        lines += ["", f"The test suite inside `make test`, by pytest's own clock: {seconds:.1f} s ({counts})."]
    stages = results["nnlab run all"]["stages"]
    if stages:
        lines += ["", "Each stage of `nnlab run all`, as it printed its own wall time (stages run side by side on "
                  "the worker processes, so these overlap):", "", "| stage | seconds |", "|---|---:|"]
        lines += [f"| {title} | {seconds:.1f} |" for title, seconds in sorted(stages, key=lambda s: -s[1])]
    return "\n".join(lines + [MARK]) + "\n"
