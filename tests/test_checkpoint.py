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
    arrays["state.W"] = np.zeros((5, 5))
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
    assert lines[0] == "row,prediction,p_malignant,p_benign,outside_training_range" and len(lines) == 21
    assert all(ln.endswith(",0") for ln in lines[1:])  # the data's own rows lie within its range
    agree = np.mean([ln.split(",")[1] == d.target_names[t] for ln, t in zip(lines[1:], d.target[:20])])
    assert agree > 0.8
    assert main(["run", "7", "--quick", "--load", str(tmp_path / "bc.npz"), "--out", str(tmp_path / "b")]) == 0


def test_predict_errors_are_one_line(tmp_path, capsys):
    path = nnlab.Linear(2, 1).save(tmp_path / "bare.npz")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["predict", "--model", str(path), "--csv", str(tmp_path / "x.csv")]) == 2
    assert "no feature record" in capsys.readouterr().err


# ---- hostile and odd files: every check runs before anything is allocated ----------------------------------

def _forge(path, architecture, arrays, dtype="float64", **meta_overrides):
    """Write a checkpoint by hand, as an attacker (or a buggy tool) could."""
    import json

    meta = {"format": "nnlab-checkpoint", "format_version": 2, "nnlab_version": "0", "architecture": architecture,
            "dtype": dtype, "extra": {}, **meta_overrides}
    np.savez(path, meta=np.array(json.dumps(meta)), **{f"state.{k}": v for k, v in arrays.items()})
    return path


def _linear(n_in, n_out):
    return {"type": "Linear", "config": {"in_dim": n_in, "out_dim": n_out, "init": "xavier", "name": None}}


@pytest.mark.parametrize("width", [20_000, 10**6, 10**12])
def test_huge_declared_layers_cost_nothing(tmp_path, width):
    import tracemalloc

    path = _forge(tmp_path / "big.npz", _linear(width, width), {"W": np.zeros((2, 2)), "b": np.zeros(2)})
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=rf"W should have shape \({width}, {width}\)"):
        nnlab.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 2**20  # megabytes at most, not the gigabytes the declared layer would need


@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path, depth):
    import json

    # json.dumps itself cannot nest 5,000 deep, so the record is spelled out as text
    inner = json.dumps(_linear(2, 2))
    arch = '{"type": "Sequential", "config": {"layers": [' * depth + inner + "]}}" * depth
    meta = ('{"format": "nnlab-checkpoint", "format_version": 2, "dtype": "float64", "extra": {}, '
            f'"architecture": {arch}}}')
    np.savez(tmp_path / "deep.npz", meta=np.array(meta))
    with pytest.raises(CheckpointError, match="nests more than 64 modules deep"):
        nnlab.load(tmp_path / "deep.npz")


def test_unknown_layer_type_names_the_known_ones(tmp_path):
    path = _forge(tmp_path / "m.npz", {"type": "os.system", "config": {}}, {})
    with pytest.raises(CheckpointError, match="unknown layer type 'os.system'.*Linear"):
        nnlab.load(path)


@pytest.mark.parametrize("change, message", [
    ({"dtype": "object"}, "dtype must be one of"),
    ({"format_version": 1}, "format 1 is not supported"),
    ({"extra": [1, 2]}, "extra record"),
])
def test_bad_metadata_is_refused(tmp_path, change, message):
    path = _forge(tmp_path / "m.npz", _linear(2, 2), {"W": np.zeros((2, 2)), "b": np.zeros(2)}, **change)
    with pytest.raises(CheckpointError, match=message):
        nnlab.load(path)


def test_invalid_config_values_are_refused(tmp_path):
    path = _forge(tmp_path / "m.npz", _linear(-3, 2), {"W": np.zeros((2, 2)), "b": np.zeros(2)})
    with pytest.raises(CheckpointError, match="in_dim must be a positive integer"):
        nnlab.load(path)


def test_missing_extra_and_integer_arrays_are_refused(tmp_path):
    arch = _linear(2, 2)
    with pytest.raises(CheckpointError, match="missing"):
        nnlab.load(_forge(tmp_path / "a.npz", arch, {"W": np.zeros((2, 2))}))
    with pytest.raises(CheckpointError, match="unexpected"):
        nnlab.load(_forge(tmp_path / "b.npz", arch, {"W": np.zeros((2, 2)), "b": np.zeros(2), "x": np.zeros(1)}))
    with pytest.raises(CheckpointError, match="not a float array"):
        nnlab.load(_forge(tmp_path / "c.npz", arch, {"W": np.zeros((2, 2), int), "b": np.zeros(2)}))
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        nnlab.load(_forge(tmp_path / "d.npz", arch, {"W": np.full((2, 2), np.nan), "b": np.zeros(2)}))


def test_compressed_members_and_object_arrays_are_refused(tmp_path, rng):
    import json

    meta = {"format": "nnlab-checkpoint", "format_version": 2, "architecture": _linear(2, 2), "dtype": "float64"}
    np.savez_compressed(tmp_path / "z.npz", meta=np.array(json.dumps(meta)), **{"state.W": np.zeros((2, 2)),
                                                                               "state.b": np.zeros(2)})
    with pytest.raises(CheckpointError, match="unexpected member"):
        nnlab.load(tmp_path / "z.npz")
    np.savez(tmp_path / "o.npz", meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError):  # never unpickled
        nnlab.load(tmp_path / "o.npz")


def test_a_fifo_or_a_directory_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(CheckpointError, match="not a regular file"):
        nnlab.load(tmp_path / "pipe.npz")
    with pytest.raises(CheckpointError, match="not a regular file"):
        nnlab.load(tmp_path)


def test_training_mode_round_trips(tmp_path, rng):
    net = nnlab.make_mlp([3, 4, 2], rng=rng)
    net.eval()
    net.layers[1].train()  # modes may differ between modules; each is restored
    loaded = nnlab.load(net.save(tmp_path / "m.npz"))
    assert [m.training for m in loaded] == [False, True, False] and loaded.training is False


def test_a_registered_custom_layer_round_trips(tmp_path, rng):
    from nnlab.layers import MODULE_TYPES, Module, Param, register_module

    @register_module
    class Scale(Module):
        def __init__(self, width):
            self.width = width
            self.s = np.ones(width)
            self.ds = np.zeros(width)

        def parameters(self):
            return [Param(self, "s", "ds", decay=False)]

        def config(self):
            return {"width": self.width}

        @classmethod
        def state_spec(cls, config):
            return {"s": (config["width"],)}

        def _forward(self, x, inplace=False):
            return x * self.s

    try:
        net = nnlab.Sequential(nnlab.Linear(3, 2, rng=rng), Scale(2))
        net.layers[1].s[:] = [2.0, -3.0]
        loaded = nnlab.load(net.save(tmp_path / "m.npz"))
        x = rng.normal(size=(4, 3))
        np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    finally:
        MODULE_TYPES.pop("Scale", None)


def test_an_unregistered_layer_cannot_be_saved(tmp_path):
    from nnlab.errors import NnlabTypeError
    from nnlab.layers import Module

    class Unknown(Module):
        def _forward(self, x, inplace=False):
            return x

    with pytest.raises(NnlabTypeError, match="register its class"):
        nnlab.Sequential(nnlab.Linear(2, 2), Unknown()).save(tmp_path / "m.npz")


def test_save_refuses_nan_weights_and_writes_nothing(tmp_path):
    """It used to write the file, which load then refused: a diverged run found out only when loading."""
    model = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0))
    model.layers[0].W[0, 0] = np.nan
    with pytest.raises(CheckpointError, match=r"^save: .*x\.npz: 0\.W holds NaN or infinite values, which load "
                       "refuses .*nothing was written$"):
        model.save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given, written", [("m2", "m2.npz"), ("m3.pt", "m3.pt.npz"), ("m4.npz", "m4.npz")])
def test_load_reads_the_file_save_wrote_under_the_same_name(tmp_path, given, written):
    """save appends .npz when the name lacks it; load(name) used to say 'not found' for that file."""
    model = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0))
    assert model.save(tmp_path / given) == tmp_path / written
    assert sorted(p.name for p in tmp_path.iterdir()) == [written]
    for name in (given, written):
        np.testing.assert_array_equal(nnlab.load(tmp_path / name).layers[0].W, model.layers[0].W)
        assert load_into(nnlab.make_mlp([3, 2]), tmp_path / name) == {}


def test_load_prefers_the_exact_name_and_says_which_names_it_tried(tmp_path):
    exact, suffixed = nnlab.make_mlp([3, 2], rng=np.random.default_rng(0)), nnlab.make_mlp([3, 2])
    exact.save(tmp_path / "m.npz")
    suffixed.save(tmp_path / "m.npz.npz")  # what save("m.npz.npz") writes; load("m.npz") must not pick it
    np.testing.assert_array_equal(nnlab.load(tmp_path / "m.npz").layers[0].W, exact.layers[0].W)
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*gone \(nor gone\.npz, the name save gives "
                       r"it\)$"):
        nnlab.load(tmp_path / "gone")
