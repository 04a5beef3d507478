"""The ablation's timed run: ``python -m nnlab.stages.ablation_timing [--times FILE] [--jobs N] [--out DIR]``.

Times vary from run to run (and with whatever else the machine is doing), so they stay out
of ``metrics.json`` and out of ``nnlab report --check``.  This command runs the full
ablation once, measures it, and writes the times to a file the report quotes, as the Speed
section quotes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from nnlab.parallel import available_cores
from nnlab.stages.ablation import Config
from nnlab.stages.runner import run_stage


def write_times(path: Path, jobs: int | None = None, out: Path | None = None, config: Config | None = None) -> dict:
    """Run the ablation (the full one unless ``config`` says otherwise), timing it; write the times to ``path``.

    The run goes through the stage runner into ``out/stageablation/`` (a temporary folder when
    ``out`` is ``None``), so it is the run ``nnlab run ablation`` makes.  The JSON file holds the
    command, the configuration, the processes, the wall time of the whole run, the load average
    before and after (other work on the machine slows the run down), every training's CPU
    seconds by dataset and row, and the commit of the code that ran (``commit <hash>``, see
    :func:`nnlab.bench.revision_text`).
    """
    from nnlab.bench import revision_text

    jobs = jobs or available_cores()
    config = config or Config()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        done = run_stage("ablation", config, Path(out) if out is not None else Path(tmp), jobs=jobs)
        cpu = json.loads((Path(out or tmp) / "stageablation" / "times.json").read_text())
    record = {"command": f"python -m nnlab.stages.ablation_timing --times {path}",
              "config": done.result.to_json()["config"], "jobs": jobs, "wall_seconds": done.seconds,
              "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0], "cpu_seconds": cpu,
              "revision": revision_text()}
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def main(argv=None) -> int:
    """``python -m nnlab.stages.ablation_timing --times FILE [--jobs N] [--out DIR]``: the timed full run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nnlab.stages.ablation_timing", description=write_times.__doc__)
    parser.add_argument("--times", default="docs/ablation_times.json", help="where to write the measured times")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--out", default=None, help="keep the run (stageablation/) in this folder")
    args = parser.parse_args(argv)
    record = write_times(Path(args.times), args.jobs, None if args.out is None else Path(args.out))
    print(f"wrote {args.times}: {record['wall_seconds']:.1f} s of wall time on {record['jobs']} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
