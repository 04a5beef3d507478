"""Safe under misuse (issue 13): files, signals, checkpoints and resources, tried as a careless user would.

Every rejected command must answer with one ``nnlab: error:`` line and exit status 2, before
any work starts, and leave the folder it was run in exactly as it was.  Special files are
made here (``os.mkfifo``, a bound Unix socket, symbolic links); no real device is touched.
Unwritable places are paths under a file or under ``/proc``, since the tests may run as root,
whom permission bits do not stop.
"""

import os
import signal
import socket
import stat
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from misuse_cases import EXTRA, hostile_checkpoints, listing, peak_rss_mb, signal_a_run

import nnlab
from nnlab import resources
from nnlab._io import PathError, _kind, atomic_write_text, check_output_file
from nnlab.cli import main
from nnlab.errors import NnlabRuntimeError, NnlabTypeError, NnlabValueError
from nnlab.stages import runner

pytestmark = pytest.mark.filterwarnings("error")


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(code, err, fragment):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("nnlab: error:") and "Traceback" not in err, err
    assert fragment in err, err


@pytest.fixture
def no_work(monkeypatch):
    """Make any stage run or report write fail loudly: a refusal must come before any work."""
    from nnlab import report

    def started(*args, **kwargs):
        raise AssertionError("work started before the paths were checked")

    monkeypatch.setattr(runner, "run_stages", started)
    monkeypatch.setattr(report, "write", started)


@pytest.fixture
def saved(tmp_path):
    """A two-column classifier checkpoint and a CSV for it, in ``tmp_path/in``."""
    folder = tmp_path / "in"
    folder.mkdir()
    nnlab.MLP(2, 3, 2, rng=np.random.default_rng(0)).save(folder / "m.npz", extra=EXTRA)
    (folder / "x.csv").write_text("a,b\n1,2\n3,4\n")
    return folder / "m.npz", folder / "x.csv"


def _special(path, kind):
    """Make a directory, FIFO or bound Unix socket at ``path``; returns what keeps a socket alive."""
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock
    return None


# ---- writing files ----------------------------------------------------------------------------------------------

def test_predict_out_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path, capsys, saved):
    model, csv = saved
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link.symlink_to(target.name)
    code, out, err = _cli(capsys, "predict", "--model", model, "--csv", csv, "--out", link)
    assert code == 0 and err == ""
    assert link.is_symlink() and os.readlink(link) == "real.csv"
    assert target.read_text().startswith("row,prediction,p_n,p_p\n1,")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file keeps its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "link.csv", "real.csv"]  # no temporary file left


def test_a_checkpoint_saved_through_a_symlink_chain_lands_in_the_final_target(tmp_path, rng):
    (tmp_path / "models").mkdir()
    (tmp_path / "latest.npz").symlink_to("models/hop.npz")
    (tmp_path / "models/hop.npz").symlink_to("sub/real.npz")  # dangling: sub/ does not exist yet
    model = nnlab.Linear(3, 2, rng=rng)
    model.save(tmp_path / "latest.npz")
    assert (tmp_path / "latest.npz").is_symlink() and (tmp_path / "models/hop.npz").is_symlink()
    loaded = nnlab.load(tmp_path / "models/sub/real.npz")
    np.testing.assert_array_equal(loaded.W, model.W)


@pytest.mark.parametrize("kind", ["directory", "FIFO", "socket"])
@pytest.mark.parametrize("command", ["predict --out", "run --save", "report --report", "library save"])
def test_a_special_file_is_refused_as_an_output_and_left_alone(tmp_path, capsys, saved, no_work, kind, command):
    model, csv = saved
    target = tmp_path / "target.npz"
    keep = _special(target, kind)
    before = listing(tmp_path)
    try:
        if command == "library save":
            with pytest.raises(PathError, match=f"is a {kind}"):
                nnlab.Linear(2, 2).save(target)
        else:
            argv = {"predict --out": ["predict", "--model", model, "--csv", csv, "--out", target],
                    "run --save": ["run", "5", "--quick", "--save", target, "--out", tmp_path / "runs"],
                    "report --report": ["report", "--report", target, "--out", tmp_path / "runs",
                                        "--figures", tmp_path / "figs", "--docs", tmp_path / "docs"]}[command]
            _refused(*_cli(capsys, *argv)[::2], f"is a {kind}")
        assert listing(tmp_path) == before
    finally:
        if keep is not None:
            keep.close()


def test_device_kinds_are_named():
    """Device files are never made in a test; the refusal names them from their mode bits."""
    assert _kind(stat.S_IFCHR) == "a character device" and _kind(stat.S_IFBLK) == "a block device"


@pytest.mark.parametrize("argv, fragment", [
    (["run", "1", "--quick", "--out", "{file}"], "is a file, not a folder"),
    (["run", "1", "--quick", "--out", "{file}/x"], "is a file, not a folder"),
    (["run", "1", "--quick", "--out", "/proc/nnlab-misuse/x"], "cannot write in /proc"),
    (["run", "1", "--quick", "--out", "{tmp}"], "stage1 exists and is not a folder"),
    (["run", "5", "--quick", "--save", "{dir}/", "--out", "{tmp}/runs"], "expected a file name"),
    (["run", "5", "--quick", "--save", "/proc/nnlab-misuse/m.npz", "--out", "{tmp}/runs"], "cannot write in /proc"),
    (["run", "5", "--quick", "--save", "{file}/m.npz", "--out", "{tmp}/runs"], "is a file, not a folder"),
    (["predict", "--model", "{model}", "--csv", "{csv}", "--out", "{dir}/"], "expected a file name"),
    (["predict", "--model", "{model}", "--csv", "{csv}", "--out", "{dir}"], "is a directory"),
    (["predict", "--model", "{model}", "--csv", "{csv}", "--out", "/proc/nnlab-misuse.csv"], "cannot write in /proc"),
    (["report", "--out", "{file}"], "is a file, not a folder"),
    (["report", "--out", "{tmp}/r", "--figures", "{file}"], "--figures"),
    (["report", "--out", "{tmp}/r", "--docs", "{file}"], "--docs"),
    (["report", "--out", "{tmp}/r", "--report", "/proc/nnlab-misuse/REPORT.md"], "cannot write in /proc"),
])
def test_a_bad_output_path_is_refused_before_any_work(tmp_path, capsys, saved, no_work, argv, fragment):
    model, csv = saved
    (tmp_path / "plain").write_text("not a folder")
    (tmp_path / "stage1").write_text("in the way of stage 1's folder")
    (tmp_path / "somedir").mkdir()
    names = {"file": tmp_path / "plain", "dir": tmp_path / "somedir", "tmp": tmp_path, "model": model, "csv": csv}
    before = listing(tmp_path)
    code, _, err = _cli(capsys, *[a.format(**names) for a in argv])
    _refused(code, err, fragment)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("argv, fragment", [
    (["run", "7", "--quick", "--csv", "{tmp}/text.csv", "--target", "y", "--categorical", "none"], "text"),
    (["run", "7", "--quick", "--csv", "{tmp}/text.csv", "--target", "zz"], "zz"),
    (["run", "7", "--quick", "--csv", "{tmp}/missing.csv", "--target", "y"], "file not found"),
    (["run", "7", "--quick", "--csv", "{tmp}/fifo", "--target", "y"], "is a FIFO"),
    (["run", "7", "--quick", "--load", "{tmp}/fifo"], "is a FIFO"),
    (["run", "5", "--quick", "--load", "{tmp}/text.csv"], "not a readable nnlab checkpoint"),
    (["run", "5", "--quick", "--mnist-dir", "{tmp}/no-such-dir", "--dataset", "mnist"], "not found"),
    (["predict", "--model", "{tmp}/fifo", "--csv", "{tmp}/text.csv"], "is a FIFO"),
    (["predict", "--model", "{model}", "--csv", "{tmp}/fifo"], "is a FIFO"),
])
def test_rejected_input_creates_no_folders(tmp_path, capsys, saved, argv, fragment):
    """A bad CSV, a missing target, an unreadable file: one line, and not one folder made on the way to --out."""
    model, _ = saved
    (tmp_path / "text.csv").write_text("a,b,y\n1,oops,0\n2,3,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(30)))
    os.mkfifo(tmp_path / "fifo")  # reading it would block: it must be refused, not opened
    before = listing(tmp_path)
    out = ["--out", tmp_path / "new" / "deeper" / "runs"] if argv[0] == "run" else ["--out", tmp_path / "new/p.csv"]
    code, _, err = _cli(capsys, *[a.format(tmp=tmp_path, model=model) for a in argv], *out)
    _refused(code, err, fragment)
    assert listing(tmp_path) == before


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "predictions.csv"
    target.write_text("old\n")

    def half_then_fail(fh):
        fh.write(b"row,prediction\n")
        raise OSError("disk full")

    from nnlab._io import atomic_write

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"


def test_checking_an_output_path_creates_nothing(tmp_path):
    deep = tmp_path / "a" / "b" / "c.csv"
    assert check_output_file(deep) == deep.resolve()
    assert list(tmp_path.iterdir()) == []


# ---- signals ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, status, line, jobs", [
    (signal.SIGTERM, 143, "nnlab: terminated (SIGTERM)\n", "2"),
    (signal.SIGINT, 130, "nnlab: interrupted\n", "1"),
])
def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path, signum, status, line, jobs):
    """A real process, stopped inside Stage 5: one line, its exit status, and no partial folder (nor the --out
    folder it had created)."""
    code, err = signal_a_run(tmp_path / "out", "5", signum, "--jobs", jobs)
    assert (code, err) == (status, line)
    assert listing(tmp_path) == []


def test_a_killed_runs_partial_folder_is_removed_by_the_next_run(tmp_path, capsys):
    out = tmp_path / "out"
    code, _ = signal_a_run(out, "5", signal.SIGKILL, "--jobs", "1")
    assert code == -signal.SIGKILL and (out / ".stage5.partial").is_dir()  # SIGKILL cannot be cleaned up after
    code, _, err = _cli(capsys, "run", "1", "--quick", "--out", out, "--no-progress")
    assert code == 0
    assert err == f"nnlab: removed {out / '.stage5.partial'}, left by a run that was killed before it finished\n"
    assert sorted(p.name for p in out.iterdir()) == ["stage1"]


def test_a_partial_folder_of_a_live_process_is_kept_or_refused(tmp_path):
    """Another nnlab still writing into the same --out: its other stages are left alone, its own stage refused."""
    from nnlab.stages import stage2

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for sid in ("1", "3"):
            (tmp_path / f".stage{sid}.partial").mkdir()
            (tmp_path / f".stage{sid}.partial" / runner.OWNER).write_text(str(live.pid))
        (tmp_path / ".stage4.partial").mkdir()  # from an older nnlab, without an owner: stale
        with pytest.raises(NnlabRuntimeError, match=f"running nnlab \\(process {live.pid}\\)"):
            runner.run_stages({"1": None}, tmp_path)
        runner.run_stages({"2": stage2.Config().quick()}, tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".stage1.partial", ".stage3.partial", "stage2"]
    finally:
        live.kill()
        live.wait()
    assert runner.remove_stale_partials(tmp_path, ["1"]) == [tmp_path / ".stage1.partial",
                                                              tmp_path / ".stage3.partial"]


def test_a_partial_folder_whose_process_id_was_reused_is_stale(tmp_path):
    """The killed run's id now belongs to another program (a live process started at another time): removed."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = runner._started(live.pid)
        if started is None:
            pytest.skip("no /proc/<pid>/stat here: start times cannot be compared")
        for sid, record in (("1", f"{live.pid} {started}"), ("2", f"{live.pid} {int(started) - 1}")):
            (tmp_path / f".stage{sid}.partial").mkdir()
            (tmp_path / f".stage{sid}.partial" / runner.OWNER).write_text(record)
        assert runner.remove_stale_partials(tmp_path, ["3"]) == [tmp_path / ".stage2.partial"]
    finally:
        live.kill()
        live.wait()
    assert runner._owner_record() == f"{os.getpid()} {runner._started(os.getpid())}"


# ---- hostile checkpoints, end to end ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["predict --model", "run 7 --load", "run 5 --load"])
def test_a_hostile_checkpoint_costs_megabytes_and_ends_in_one_line(tmp_path, capsys, saved, command):
    model, csv = saved
    cases = hostile_checkpoints(tmp_path)
    argv = {"predict --model": ["predict", "--csv", csv, "--model"],
            "run 7 --load": ["run", "7", "--quick", "--out", tmp_path / "runs", "--load"],
            "run 5 --load": ["run", "5", "--quick", "--out", tmp_path / "runs", "--load"]}[command]
    assert _cli(capsys, "predict", "--model", model, "--csv", csv)[0] == 0  # imports done before measuring
    before = listing(tmp_path)
    for name, (path, fragment) in cases.items():
        tracemalloc.start()
        try:
            code, _, err = _cli(capsys, *argv, path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        _refused(code, err, fragment)
        assert peak < 8e6, f"{name}: {peak / 1e6:.1f} MB"
        assert listing(tmp_path) == before


def test_a_hostile_checkpoint_costs_no_more_memory_than_a_good_one_in_a_real_process(tmp_path, saved):
    model, csv = saved
    huge, fragment = hostile_checkpoints(tmp_path)["10^6-wide layers (8 TB declared)"]
    good_code, good_err, good_mb = peak_rss_mb("predict", "--model", model, "--csv", csv)
    code, err, hostile_mb = peak_rss_mb("predict", "--model", huge, "--csv", csv)
    assert good_code == 0 and good_err == ""
    assert code == 2 and err.count("\n") == 1 and fragment in err
    assert hostile_mb < good_mb + 20, (hostile_mb, good_mb)


def test_members_that_together_claim_more_than_the_file_are_refused(tmp_path, rng):
    """Each member's claimed size fits in the file, their sum does not (stored members overlapping, as in a
    zip bomb): refused from the directory alone, before any member is opened."""
    import struct

    from nnlab.checkpoint import CheckpointError

    path = nnlab.Linear(3, 2, rng=rng).save(tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    claim = len(data) - 1
    start = data.find(b"PK\x01\x02")
    while start != -1:  # each central-directory record: compressed and uncompressed size at offsets 20 and 24
        data[start + 20:start + 28] = struct.pack("<II", claim, claim)
        start = data.find(b"PK\x01\x02", start + 4)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="members claim more bytes in total than the whole file"):
        nnlab.load(path)


# ---- resources --------------------------------------------------------------------------------------------------

def test_a_network_too_large_for_memory_is_refused_before_it_is_built(tmp_path, capsys, no_work):
    code, _, err = _cli(capsys, "run", "5", "--hidden", "100000000", "--jobs", "1", "--out", tmp_path / "out")
    need = resources.network_bytes((64, 10**8, 10), rows=128)
    _refused(code, err, f"stage 5 with --hidden 100000000 (64-100000000-10 network) needs at least "
                        f"{need / 1e9:.3g} GB of memory, but only")
    assert "lower --hidden" in err and listing(tmp_path) == []


def test_the_estimate_counts_every_worker_and_compares_with_what_is_available(tmp_path, capsys, monkeypatch, no_work):
    monkeypatch.setattr(resources, "available_memory", lambda: 10**6)
    code, _, err = _cli(capsys, "run", "5", "--hidden", "300", "--jobs", "2", "--out", tmp_path / "out")
    need = 2 * resources.network_bytes((64, 300, 10), rows=128)
    _refused(code, err, f"(64-300-10 network, 2 worker processes) needs at least {need / 1e9:.3g} GB")
    assert "lower --hidden or --jobs" in err
    code, _, err = _cli(capsys, "run", "3", "--hidden", "3000", "--jobs", "1", "--out", tmp_path / "out")
    _refused(code, err, "stage 3 with --hidden 3000 (1-3000-1 network)")
    monkeypatch.setattr(resources, "available_memory", lambda: need)  # exactly enough: not refused
    with pytest.raises(AssertionError, match="work started"):
        main(["run", "5", "--hidden", "300", "--jobs", "2", "--out", str(tmp_path / "out")])


def test_the_estimate_is_a_lower_bound_of_what_training_allocates():
    from nnlab import MLP, SGD, SoftmaxCrossEntropyLoss, fit

    X, y = np.zeros((1280, 64)), np.arange(1280) % 10
    tracemalloc.start()
    try:
        model = MLP(64, 500, 10, rng=np.random.default_rng(0))
        fit(model, SoftmaxCrossEntropyLoss(), SGD(model.parameters(), lr=0.1), X, y, epochs=1, batch_size=128)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = resources.network_bytes((64, 500, 10), rows=128)
    assert estimate <= peak < 2 * estimate


def test_available_memory_reads_meminfo(tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:  100 kB\nMemFree:  5 kB\nMemAvailable:   42 kB\n")
    assert resources._meminfo_available(fake) == 42 * 1024
    assert resources._meminfo_available(tmp_path / "missing") is None
    real = resources._meminfo_available()
    assert real is None or 0 < resources.available_memory() <= 2 * real


def test_a_memory_error_in_a_stage_is_one_line(tmp_path, capsys, monkeypatch):
    from nnlab.stages import stage2

    def greedy(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000)")

    monkeypatch.setattr(stage2, "run", greedy)
    code, _, err = _cli(capsys, "run", "2", "--out", tmp_path / "out")
    _refused(code, err, "out of memory (Unable to allocate 7.28 TiB")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("argument, value, error", [
    ("batch_size", 0, NnlabValueError), ("batch_size", -1, NnlabValueError), ("batch_size", 1.5, NnlabTypeError),
    ("batch_size", True, NnlabTypeError), ("epochs", -3, NnlabValueError), ("epochs", 0, NnlabValueError),
    ("epochs", 2.0, NnlabTypeError), ("epochs", "10", NnlabTypeError),
])
def test_fit_names_a_bad_epochs_or_batch_size(argument, value, error):
    model = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    options = {"epochs": 1, argument: value}
    with pytest.raises(error, match=rf"^fit: {argument} must be a positive integer, got {value!r}$"):
        nnlab.fit(model, nnlab.MSELoss(), nnlab.SGD(model.parameters(), lr=0.1), np.ones((4, 2)), np.ones((4, 1)),
                  **options)


def _stopping_changed_to(**fields):
    """An EarlyStopping changed after creation (its constructor refuses a bad mode itself): fit checks again."""
    stopping = nnlab.EarlyStopping()
    for field, value in fields.items():
        setattr(stopping, field, value)
    return stopping


@pytest.mark.parametrize("options, error, message", [
    ({"rng": 7}, NnlabTypeError, "rng must be a numpy.random.Generator or None, got 7"),
    ({"early_stopping": nnlab.EarlyStopping()}, NnlabValueError, "early_stopping needs an evaluate callback"),
    ({"early_stopping": _stopping_changed_to(mode="maximize"), "evaluate": lambda e: {"val_loss": 1.0}},
     NnlabValueError, "mode must be 'min' or 'max', got 'maximize'"),
    ({"early_stopping": nnlab.EarlyStopping(), "evaluate": lambda e: {"acc": 1.0}}, NnlabValueError,
     "early stopping monitors 'val_loss', but evaluate returned only ['acc']"),
    ({"evaluate": lambda e: [1.0]}, NnlabTypeError, "evaluate must return a dict of metrics, got list"),
    ({"penalty": 0.1}, NnlabTypeError, "penalty must be an L2Penalty (or None), got 0.1"),
    ({"name": 3}, NnlabTypeError, "fit: name must be a string, got 3"),
])
def test_fit_names_its_other_bad_arguments(options, error, message):
    model = nnlab.Linear(2, 1, rng=np.random.default_rng(0))
    with pytest.raises(error) as caught:
        nnlab.fit(model, nnlab.MSELoss(), nnlab.SGD(model.parameters(), lr=0.1), np.ones((4, 2)), np.ones((4, 1)),
                  epochs=2, **options)
    assert message in str(caught.value)


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0, 1.0]), np.array([True, False, True])])
def test_float_or_bool_labels_are_named_not_a_shape_error(labels):
    logits = np.zeros((3, 2))
    what = "booleans" if labels.dtype == bool else "dtype float64"
    for call in (lambda: nnlab.SoftmaxCrossEntropyLoss()(logits, labels),
                 lambda: nnlab.cross_entropy(np.full((3, 2), 0.5), labels),
                 lambda: nnlab.softmax_cross_entropy_backward(np.full((3, 2), 0.5), labels)):
        with pytest.raises(NnlabTypeError, match=f"class labels of shape \\(batch,\\) must be integers, got {what}"):
            call()
    model = nnlab.Linear(2, 2, rng=np.random.default_rng(0))
    with pytest.raises(NnlabTypeError, match="SoftmaxCrossEntropyLoss: class labels"):
        nnlab.fit(model, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(model.parameters(), lr=0.1), np.ones((3, 2)),
                  labels, epochs=1)


# ---- warnings ---------------------------------------------------------------------------------------------------

def test_a_diverging_stage_prints_no_numpy_warning(tmp_path, capsys):
    """Stage 3 at lr 1000 overflows everywhere; the user sees DIVERGED, not NumPy's RuntimeWarnings."""
    code, out, err = _cli(capsys, "run", "3", "--quick", "--lr", "1000", "--jobs", "1", "--out", tmp_path,
                          "--no-progress")
    assert code == 1 and "DIVERGED" in out and err == ""
    assert "warning during the stage" not in (tmp_path / "stage3" / "metrics.json").read_text()


def test_a_column_spanning_the_whole_float_range_is_read_without_a_warning(tmp_path):
    """+-1e308 in a numeric column: read (and rescaled by a power of two) with no NumPy overflow warning, which
    the identifier test's row-to-row differences used to raise (this file turns warnings into errors)."""
    from nnlab.data.tabular import read_csv_table

    rows = [(1e308, 0), (-1e308, 1)] + [(float(i), i % 2) for i in range(30)]
    (tmp_path / "wide.csv").write_text("a,y\n" + "".join(f"{a!r},{y}\n" for a, y in rows))
    table = read_csv_table(tmp_path / "wide.csv", "y")
    assert table.features_used == ["a"]


def test_warnings_in_worker_processes_do_not_reach_the_terminal(tmp_path):
    """Stage 3's two networks train in worker processes; under ``-W error`` nothing but nnlab's own output appears."""
    from misuse_cases import command, environment

    done = subprocess.run([sys.executable, "-W", "error", *command("run", "3", "--quick", "--lr", "1000", "--jobs",
                                                                   "2", "--no-progress", "--out", tmp_path)[1:]],
                          env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "DIVERGED" in done.stdout and done.stderr == ""


def test_a_warning_in_a_finished_stage_becomes_one_of_its_messages(tmp_path, capsys, monkeypatch):
    from nnlab.stages import stage2

    real = stage2.run

    def noisy(*args, **kwargs):
        with np.errstate(divide="warn"):
            np.log(np.zeros(1))
        return real(*args, **kwargs)

    monkeypatch.setattr(stage2, "run", noisy)
    code, out, err = _cli(capsys, "run", "2", "--quick", "--out", tmp_path)
    assert code == 0 and err == ""
    assert "! warning during the stage (RuntimeWarning: divide by zero encountered in log)" in out
    with warnings.catch_warnings():  # and the caller's own filters are back as they were
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning), np.errstate(divide="warn"):
            np.log(np.zeros(1))


def test_the_command_leaves_the_sigterm_handler_as_it_found_it(capsys):
    before = signal.getsignal(signal.SIGTERM)
    _cli(capsys, "run", "9")
    assert signal.getsignal(signal.SIGTERM) is before
