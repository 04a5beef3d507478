"""``nnlab bench --runs``: whole runs timed in subprocesses, their output parsed, the section written and kept."""

import sys

import pytest

from nnlab import bench_runs
from nnlab.bench_runs import GOALS, MARK, has_make_test, pytest_summary, stage_seconds, table, time_command


def test_stage_lines_are_read_from_nnlab_runs_own_output():
    output = ("\nStage 1: linear regression  (0.4 s)\n  loss  0.12 (3.4 s)\n\n"
              "Stage 5: digits (softmax)  (14.8 s)  ** DIVERGED: these numbers are not a trained model's **\n"
              "  ! warning during the stage (RuntimeWarning: overflow (2.0 s))\n"
              "All stages took 392.0 s on 2 process(es). Results in runs/\n")
    # summary rows are indented, so only the two titles count; the closing line has no "  (" before its time
    assert stage_seconds(output) == [("Stage 1: linear regression", 0.4), ("Stage 5: digits (softmax)", 14.8)]


def test_pytests_closing_line_gives_its_counts_and_seconds():
    assert pytest_summary("....\n1706 passed, 3 skipped in 176.62s (0:02:56)\n") == ("1706 passed, 3 skipped",
                                                                                        176.62)
    assert pytest_summary("== 12 passed in 3.5s ==\n") == ("12 passed", 3.5)
    assert pytest_summary("E   ImportError\n1 error in 0.2s\n") is None


def test_a_command_is_timed_with_the_cpu_of_its_children(tmp_path):
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done')"
    timed = time_command([sys.executable, "-c", spin])
    assert timed["returncode"] == 0 and timed["stdout"] == "done\n"
    assert timed["cpu_seconds"] >= 0.3 and timed["wall_seconds"] >= 0.3
    # a grandchild's CPU counts too, once its parent has waited for it
    nested = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {spin!r}])"
    assert time_command([sys.executable, "-c", nested])["cpu_seconds"] >= 0.3


def test_make_test_is_timed_only_from_a_checkout(tmp_path):
    assert not has_make_test(tmp_path)
    (tmp_path / "Makefile").write_text("lint:\n\ttrue\n")
    assert not has_make_test(tmp_path)
    (tmp_path / "Makefile").write_text("venv:\n\ttrue\ntest: venv\n\ttrue\n")
    assert has_make_test(tmp_path)


def _results(run_all_wall, make_test_wall=None):
    results = {"cpus": 2, "load_start": 0.5, "load_end": 0.7, "quick": False,
               "nnlab run all": {"wall_seconds": run_all_wall, "cpu_seconds": 2 * run_all_wall,
                                 "stages": [("Stage 1", 0.5), ("CNN study", 158.0)]}}
    if make_test_wall is not None:
        results["make test"] = {"wall_seconds": make_test_wall, "cpu_seconds": 300.0,
                                "pytest": ("1706 passed, 3 skipped", 176.6)}
    return results


def test_the_table_says_met_or_missed_against_each_goal():
    text = table(_results(GOALS["nnlab run all"] + 0.1, GOALS["make test"]))
    assert text.startswith(MARK) and text.rstrip().endswith(MARK)
    assert f"{GOALS['nnlab run all']:.0f} s: missed" in text and f"{GOALS['make test']:.0f} s: met" in text
    assert "176.6 s (1706 passed, 3 skipped)" in text
    # the slowest stage first
    assert text.index("| CNN study | 158.0 |") < text.index("| Stage 1 | 0.5 |")
    text = table(_results(GOALS["nnlab run all"]))
    assert f"{GOALS['nnlab run all']:.0f} s: met" in text and "was not timed: not run from a checkout" in text


def test_a_failed_run_is_an_error_not_a_time(monkeypatch):
    failed = {"returncode": 2, "stdout": "", "stderr": "Traceback\nnnlab: error: out of memory\n",
              "wall_seconds": 1.0, "cpu_seconds": 1.0}
    monkeypatch.setattr(bench_runs, "time_command", lambda command, cwd=None: failed)
    with pytest.raises(RuntimeError, match="nnlab run all failed \\(exit 2\\): nnlab: error: out of memory"):
        bench_runs.run(make_test=False)


@pytest.mark.slow
def test_bench_runs_quick_times_every_stage_and_writes_its_section(tmp_path):
    """The real command, in quick mode: one line per stage, and only its own section of the file replaced."""
    from nnlab.cli import main
    from nnlab.stages import STAGES

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nthe MLP tables\n")
    assert main(["bench", "--runs", "--quick", "--markdown", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nthe MLP tables\n") and text.count(MARK) == 2
    assert "`nnlab run all --quick`" in text and "`make test`" in text  # (not timed in quick mode)
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.endswith(" |")]
    stage_rows = rows[rows.index("| stage | seconds |") + 1:]  # (the "|---|" rule is not a row here)
    assert len(stage_rows) == len(STAGES)
