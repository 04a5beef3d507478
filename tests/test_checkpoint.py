"""Checkpoints: exact round trips, atomic writes, and clear rejection of bad files."""

import numpy as np
import pytest

import nnlab
from nnlab.checkpoint import CheckpointError, load_into, save
from nnlab.cli import main


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: nnlab.Linear(4, 3, rng=rng),
        lambda rng: nnlab.MLP(4, 8, 3, nonlin="tanh", rng=rng),
        lambda rng: nnlab.make_mlp([4, 16, 16, 3], rng=rng),
        lambda rng: nnlab.make_mlp([4, 5, 3], dtype=np.float32, rng=rng),
    ],
)
def test_round_trip_is_bit_identical(make, tmp_path, rng):
    model = make(rng)
    x = rng.normal(size=(6, 4)).astype(model.dtype)
    before = nnlab.train.predict(model, x)
    path = model.save(tmp_path / "m")
    loaded, extra = nnlab.load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.dtype == model.dtype and extra == {}
    np.testing.assert_array_equal(nnlab.train.predict(loaded, x), before)


def test_extra_record_round_trips(tmp_path, rng):
    path = save(nnlab.Linear(2, 1, rng=rng), tmp_path / "m.npz", extra={"classes": ["a", "b"], "scale": 0.5})
    assert nnlab.load_checkpoint(path)[1] == {"classes": ["a", "b"], "scale": 0.5}


def test_crash_during_write_leaves_no_file(tmp_path, rng, monkeypatch):
    model = nnlab.Linear(3, 2, rng=rng)
    good = model.save(tmp_path / "m.npz")
    original = good.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        nnlab.Linear(3, 2, rng=rng).save(tmp_path / "m.npz")
    assert good.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_truncated_file_is_rejected(tmp_path, rng):
    path = nnlab.MLP(3, 4, 2, rng=rng).save(tmp_path / "m.npz")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        nnlab.load(path)


def test_corrupted_bytes_are_rejected(tmp_path, rng):
    path = nnlab.MLP(3, 4, 2, rng=rng).save(tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    for i in range(100, 400, 7):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        nnlab.load(path)


def test_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an nnlab checkpoint"):
        nnlab.load(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="not found"):
        nnlab.load(tmp_path / "missing.npz")


def test_mismatched_architecture_is_rejected(tmp_path, rng):
    path = nnlab.MLP(3, 4, 2, rng=rng).save(tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match="does not match"):
        load_into(nnlab.MLP(3, 5, 2, rng=rng), path)


def test_tampered_shapes_are_rejected(tmp_path, rng):
    path = nnlab.Linear(3, 2, rng=rng).save(tmp_path / "m.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["param_0"] = np.zeros((5, 5))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"should have shape \(2, 3\)"):
        nnlab.load(path)


def test_stage5_save_then_load(tmp_path, capsys):
    assert main(["run", "5", "--quick", "--save", str(tmp_path / "d.npz"), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", "5", "--quick", "--load", str(tmp_path / "d.npz"), "--out", str(tmp_path / "b")]) == 0
    trained = capsys.readouterr().out
    assert "loaded model: test accuracy" in trained


def test_stage7_save_load_and_predict(tmp_path, capsys):
    from sklearn.datasets import load_breast_cancer

    assert main(["run", "7", "--quick", "--save", str(tmp_path / "bc.npz"), "--out", str(tmp_path / "a")]) == 0
    d = load_breast_cancer()
    rows = [",".join(d.feature_names[::-1])]  # columns in another order: matched by name
    rows += [",".join(f"{v:.6g}" for v in r[::-1]) for r in d.data[:20]]
    (tmp_path / "new.csv").write_text("\n".join(rows) + "\n")
    code = main(["predict", "--model", str(tmp_path / "bc.npz"), "--csv", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "pred.csv")])
    assert code == 0
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "row,prediction,p_malignant,p_benign" and len(lines) == 21
    agree = np.mean([ln.split(",")[1] == d.target_names[t] for ln, t in zip(lines[1:], d.target[:20])])
    assert agree > 0.8
    assert main(["run", "7", "--quick", "--load", str(tmp_path / "bc.npz"), "--out", str(tmp_path / "b")]) == 0


def test_predict_errors_are_one_line(tmp_path, capsys):
    path = nnlab.Linear(2, 1).save(tmp_path / "bare.npz")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["predict", "--model", str(path), "--csv", str(tmp_path / "x.csv")]) == 2
    assert "no feature record" in capsys.readouterr().err
