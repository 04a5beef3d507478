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
import time
from pathlib import Path

from nnlab.stages.ablation import Config, available_cores, run
from nnlab.stages.common import write_metrics


def write_times(path: Path, jobs: int | None = None, out: Path | None = None, config: Config | None = None) -> dict:
    """Run the ablation (the full one unless ``config`` says otherwise), timing it; write the times to ``path``.

    ``out`` keeps the run's ``metrics.json`` and figures (a temporary folder when ``None``).

    The JSON file holds the command, the configuration, the processes, the wall time of the whole run, the load
    average before and after (other work on the machine slows the run down), and every
    training's CPU seconds by dataset and row.
    """
    jobs = jobs or available_cores()
    load_before = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = run(config or Config(), folder, jobs=jobs)
        write_metrics(result, folder)
        wall = time.perf_counter() - start
        cpu = json.loads((folder / "times.json").read_text())
    record = {"command": f"python -m nnlab.stages.ablation_timing --times {path}", "config": result.to_json()["config"],
              "jobs": jobs, "wall_seconds": wall,
              "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0], "cpu_seconds": cpu}
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def main(argv=None) -> int:
    """``python -m nnlab.stages.ablation_timing --times FILE [--jobs N] [--out DIR]``: the timed full run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nnlab.stages.ablation_timing", description=write_times.__doc__)
    parser.add_argument("--times", default="docs/ablation_times.json", help="where to write the measured times")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--out", default=None, help="keep the run's metrics.json and figures in this folder")
    args = parser.parse_args(argv)
    record = write_times(Path(args.times), args.jobs, None if args.out is None else Path(args.out))
    print(f"wrote {args.times}: {record['wall_seconds']:.1f} s of wall time on {record['jobs']} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
