"""The command line: runs, determinism, and one-line errors with exit status 2."""

import gzip
import json

import numpy as np
import pytest

from nnlab.cli import main
from nnlab.data import write_idx


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_stage_writes_metrics_and_figures(tmp_path, capsys):
    code, out, _ = _run(capsys, "run", "2", "--quick", "--out", str(tmp_path), "--no-progress")
    assert code == 0
    assert (tmp_path / "stage2" / "metrics.json").exists()
    assert (tmp_path / "stage2" / "stage2_loss.png").exists()
    assert "finite-difference" in out


def test_same_seed_gives_identical_metrics(tmp_path, capsys):
    for name in ("a", "b"):
        assert _run(capsys, "run", "1", "--quick", "--out", str(tmp_path / name))[0] == 0
    assert (tmp_path / "a/stage1/metrics.json").read_bytes() == (tmp_path / "b/stage1/metrics.json").read_bytes()


def test_different_seed_gives_different_metrics(tmp_path, capsys):
    _run(capsys, "run", "1", "--quick", "--out", str(tmp_path / "a"))
    _run(capsys, "run", "1", "--quick", "--seed", "7", "--out", str(tmp_path / "b"))
    assert (tmp_path / "a/stage1/metrics.json").read_bytes() != (tmp_path / "b/stage1/metrics.json").read_bytes()


def test_stage_options_reach_the_config(tmp_path, capsys):
    code, out, _ = _run(capsys, "run", "3", "--quick", "--nonlin", "tanh", "--hidden", "8", "--out", str(tmp_path))
    assert code == 0 and "tanh" in out and "relu" not in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "9"], "invalid choice"),
        (["run", "1", "--lr", "-1"], "--lr"),
        (["run", "1", "--lr", "nan"], "--lr"),
        (["run", "1", "--epochs", "0"], "--epochs"),
        (["run", "5", "--batch", "0"], "--batch"),
        (["run", "3", "--hidden", "-4"], "--hidden"),
        (["run", "1", "--lam", "0.1"], "does not apply"),
        (["run", "5", "--mnist-dir", "/no/such/folder"], "not found"),
        (["run", "7", "--decimal", "point"], "--decimal point applies to --csv files"),
        (["run", "7", "--decimal", "dot"], "argument --decimal: invalid choice: 'dot'"),
        (["run", "7", "--csv", "-", "--target", "y"], "--csv -: reading from standard input is not supported"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(tmp_path, capsys, argv, fragment):
    code, _, err = _run(capsys, *argv, "--out", str(tmp_path / "out")) if argv[0] == "run" else _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _write_mnist(folder, n=40, corrupt=False, gz=False):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels)
    if corrupt:
        path = folder / f"train-images-idx3-ubyte{suffix}"
        data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return images, labels


def test_corrupt_mnist_dir_is_a_clear_error(tmp_path, capsys):
    _write_mnist(tmp_path / "mnist", corrupt=True)
    code, _, err = _run(capsys, "run", "5", "--dataset", "mnist", "--mnist-dir", str(tmp_path / "mnist"),
                        "--out", str(tmp_path / "out"))
    assert code == 2 and "expected" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_stage5_runs_on_user_mnist_files(tmp_path, capsys):
    _write_mnist(tmp_path / "mnist", n=200, gz=True)
    code, out, _ = _run(capsys, "run", "5", "--quick", "--dataset", "mnist", "--mnist-dir", str(tmp_path / "mnist"),
                        "--out", str(tmp_path / "out"))
    assert code == 0 and "held-out" in out


@pytest.mark.parametrize("stage", ["5", "7"])
def test_training_stages_are_bit_reproducible(quick_runs, tmp_path, capsys, stage):
    """The command (its default workers) repeats the shared quick run byte for byte; another seed changes it."""
    _, earlier = quick_runs
    for name, seed in (("same", []), ("other", ["--seed", "7"])):
        assert _run(capsys, "run", stage, "--quick", *seed, "--out", str(tmp_path / name))[0] == 0
    same, other = ((tmp_path / n / f"stage{stage}" / "metrics.json").read_bytes() for n in ("same", "other"))
    first = (earlier / f"stage{stage}" / "metrics.json").read_bytes()
    assert same == first and other != first


def test_diverged_run_is_marked(tmp_path, capsys):
    code, out, _ = _run(capsys, "run", "1", "--lr", "5", "--out", str(tmp_path))
    assert code == 1 and "DIVERGED" in out and "lower the learning rate" in out
    metrics = (tmp_path / "stage1" / "metrics.json").read_text()
    assert '"diverged": true' in metrics and "training diverged at epoch" in metrics
    assert (tmp_path / "stage1" / "stage1_loss.png").exists()


def test_a_failing_stage_leaves_no_partial_folder_and_keeps_the_old_result(tmp_path, monkeypatch):
    from nnlab.stages import stage2
    from nnlab.stages.runner import run_stage

    run_stage("2", stage2.Config().quick(), tmp_path)
    before = (tmp_path / "stage2" / "metrics.json").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(stage2, "run", boom)
    with pytest.raises(RuntimeError, match="planted"):
        run_stage("2", stage2.Config().quick(), tmp_path)
    assert not (tmp_path / ".stage2.partial").exists()
    assert (tmp_path / "stage2" / "metrics.json").read_bytes() == before


def test_the_runner_stamps_a_diverged_stage_for_the_report_too(tmp_path, monkeypatch):
    import dataclasses

    from nnlab import plots
    from nnlab.stages import stage1
    from nnlab.stages.runner import run_stage

    stamped = []
    monkeypatch.setattr(plots, "stamp", lambda path, text: stamped.append((path.name, text)))
    run = run_stage("1", dataclasses.replace(stage1.Config().quick(), lr=5.0), tmp_path)
    assert run.result.diverged
    assert sorted(stamped) == sorted((name, "DIVERGED") for name in run.result.figures.values())


def test_a_single_stage_gets_every_worker_and_stages_together_get_one(tmp_path, monkeypatch):
    from nnlab.stages import runner

    seen = {}

    def fake(sid, config, out, progress, jobs, skip_missing):
        seen[sid] = jobs
        return runner.StageRun(sid, None, 0.0, skipped="fake")

    monkeypatch.setattr(runner, "_run_or_skip", fake)
    runner.run_stages({"3": None}, tmp_path, jobs=2)
    assert seen == {"3": 2}
    seen.clear()
    runner.run_stages({"1": None, "accuracy": None, "3": None}, tmp_path, jobs=1)
    assert seen == {"1": 1, "accuracy": 1, "3": 1}


def _us_thousands(path, rows=60, seed=0):
    """A tab-separated file with US thousands commas ('1,204') and nothing that says whether they are decimal commas."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1000, 9000, rows)
    lines = ["amount\tnoise\tlabel"] + [f'"{v // 1000},{v % 1000:03d}"\t{rng.integers(0, 9)}\t{int(v > 5000)}'
                                        for v in a]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_decimal_option_is_saved_and_used_by_predict(tmp_path, capsys):
    data = _us_thousands(tmp_path / "us.tsv")
    base = ["run", "7", "--quick", "--no-progress", "--csv", str(data), "--target", "label"]
    code, _, err = _run(capsys, *base, "--out", str(tmp_path / "refused"))
    assert code == 2 and err.count("\n") == 1 and "pass --decimal point or --decimal comma" in err
    code, out, _ = _run(capsys, *base, "--decimal", "point", "--save", str(tmp_path / "m.npz"),
                        "--out", str(tmp_path / "out"))
    assert code == 0
    record = json.loads((tmp_path / "out/stage7/metrics.json").read_text())
    assert record["config"]["decimal"] == "point"
    new = _us_thousands(tmp_path / "new.tsv", rows=20, seed=1)
    code, saved_way, _ = _run(capsys, "predict", "--model", str(tmp_path / "m.npz"), "--csv", str(new))
    assert code == 0 and len(saved_way.splitlines()) == 21
    code, explicit, _ = _run(capsys, "predict", "--model", str(tmp_path / "m.npz"), "--csv", str(new),
                             "--decimal", "point")
    assert code == 0 and explicit == saved_way
    code, out, err = _run(capsys, "predict", "--model", str(tmp_path / "m.npz"), "--csv", str(new),
                          "--decimal", "comma")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--decimal comma differs from the model's training, which read its file with --decimal point" in err
    # review 7, item 4: --load decides as predict does (it used to score '1,204' read as 1.204 without a word)
    code, out, load_err = _run(capsys, *base, "--decimal", "comma", "--load", str(tmp_path / "m.npz"),
                               "--out", str(tmp_path / "loaded"))
    assert code == 2 and load_err.count("\n") == 1
    assert load_err == err.replace("predict:", "run 7 --load:")


def test_predict_reads_with_the_decimal_it_is_given_when_training_decided_from_the_cells(tmp_path, capsys):
    """A model trained on a US file reads a European export of the same rows to the same predictions."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2)) * [1, 300] + [0, 2000]
    us = ["x,money,label"] + [f'{a:.2f},"{b:,.2f}",{int(a > 0)}' for a, b in x]
    eu = ["x;money"] + [f"{a:.2f};{b:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for a, b in x]
    (tmp_path / "us.csv").write_text("\n".join(us) + "\n")
    (tmp_path / "eu.csv").write_text("\n".join(eu) + "\n")
    assert main(["run", "7", "--quick", "--no-progress", "--csv", str(tmp_path / "us.csv"), "--target", "label",
                 "--save", str(tmp_path / "m.npz"), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    code, expected, _ = _run(capsys, "predict", "--model", str(tmp_path / "m.npz"), "--csv", str(tmp_path / "us.csv"))
    code_eu, got, err = _run(capsys, "predict", "--model", str(tmp_path / "m.npz"), "--csv", str(tmp_path / "eu.csv"),
                             "--decimal", "comma")
    assert code == code_eu == 0 and err == "" and got == expected


def test_predict_refuses_standard_input(tmp_path, capsys):
    (tmp_path / "m.npz").write_bytes(b"")  # (exists: the --csv check comes after the --model one)
    code, _, err = _run(capsys, "predict", "--model", str(tmp_path / "m.npz"), "--csv", "-")
    assert code == 2 and err.count("\n") == 1 and "--csv -: reading from standard input is not supported" in err


@pytest.mark.parametrize("given", [" Alcohol ", "ALCOHOL", "alcohl"])
def test_a_target_named_nearly_as_a_column_gets_a_did_you_mean(tmp_path, capsys, given):
    data = tmp_path / "d.csv"
    data.write_text("alcohol,ash\n" + "".join(f"{i},{i % 3}\n" for i in range(30)))
    code, _, err = _run(capsys, "run", "7", "--quick", "--csv", str(data), "--target", given, "--out",
                        str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1
    assert f"target column '{given}' not found (did you mean 'alcohol'?); the columns are: alcohol, ash" in err


def test_load_refuses_a_file_whose_columns_its_cells_read_otherwise_than_training(tmp_path, capsys):
    """Review 7, item 4: a model trained on a decimal-comma file, loaded on a file whose cells decide the point."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    (tmp_path / "comma.csv").write_text("x;m;y\n" + "".join(f"{a:.2f};{i % 7};{int(a > 0)}\n".replace(".", ",")
                                                           for i, a in enumerate(x)))
    (tmp_path / "point.csv").write_text("x;m;y\n" + "".join(f"{a + 1000 * (i == 0):,.2f};{i % 7};{int(a > 0)}\n"
                                                           for i, a in enumerate(x)))
    base = ["run", "7", "--quick", "--no-progress", "--target", "y"]
    assert main([*base, "--csv", str(tmp_path / "comma.csv"), "--save", str(tmp_path / "m.npz"),
                 "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, *base, "--csv", str(tmp_path / "point.csv"), "--load", str(tmp_path / "m.npz"),
                          "--out", str(tmp_path / "loaded"))
    assert code == 2 and err.count("\n") == 1
    assert "run 7 --load: column 'm' was read here with a decimal point, but the model's training read it with a " \
           "decimal comma; give --decimal comma" in err
