"""Checkpoints of the layers beyond the handout: buffers, settings and modes come back exactly."""

import json

import numpy as np
import pytest

import nnlab
from nnlab.checkpoint import CheckpointError
from nnlab.layers import modules


def _trained(net, rng, dtype=np.float64):
    X = rng.normal(size=(48, net[0].in_dim)).astype(dtype)
    y = rng.integers(0, 3, size=48)
    nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X, y, epochs=3,
              batch_size=16, rng=rng)
    return X


MAKERS = {
    "relu+bn+dropout": lambda rng: nnlab.make_mlp([5, 8, 6, 3], dropout=0.3, norm="batch", rng=rng),
    "sigmoid+bn": lambda rng: nnlab.make_mlp([5, 8, 3], nonlin="sigmoid", norm="batch", rng=rng),
    "gelu+dropout": lambda rng: nnlab.make_mlp([5, 8, 3], nonlin="gelu", dropout=0.5, rng=rng),
    "leaky+bn": lambda rng: nnlab.make_mlp([5, 8, 3], nonlin="leaky_relu", norm="batch", rng=rng),
    "custom settings": lambda rng: nnlab.Sequential(
        nnlab.Linear(5, 6, rng=rng), nnlab.BatchNorm1d(6, eps=1e-3, momentum=0.25), nnlab.LeakyReLU(-0.3),
        nnlab.Dropout(0.2, rng=rng), nnlab.Linear(6, 6, rng=rng), nnlab.GELU("tanh"), nnlab.Linear(6, 3, rng=rng)),
    "float32": lambda rng: nnlab.make_mlp([5, 8, 3], dropout=0.1, norm="batch", dtype=np.float32, rng=rng),
}


@pytest.mark.parametrize("name", MAKERS)
def test_round_trip_restores_outputs_buffers_settings_and_modes(name, tmp_path, rng):
    net = MAKERS[name](rng)
    X = _trained(net, rng, net.dtype)
    layers = modules(net)
    layers[2].eval()  # mixed modes: one part in evaluation mode, the rest training
    before = nnlab.train.predict(net, X)
    path = net.save(tmp_path / "m")
    loaded = nnlab.load(path)
    np.testing.assert_array_equal(nnlab.train.predict(loaded, X), before)  # bit-identical in evaluation mode
    for a, b in zip(layers, modules(loaded)):
        assert type(a) is type(b) and a.training == b.training and repr(a) == repr(b)
        assert a.config() == b.config()
        for key, buf in a.buffers().items():
            np.testing.assert_array_equal(b.buffers()[key], buf)
            assert b.buffers()[key].dtype == buf.dtype == net.dtype
    assert any(m.buffers() for m in layers) or name == "gelu+dropout"
    assert any(np.any(bn.running_var != 1) for bn in layers if isinstance(bn, nnlab.BatchNorm1d)) \
        or name == "gelu+dropout"  # (trained: the saved statistics are not the initial ones)


def _rewrite(path, change):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def _bn_record(meta):
    return next(layer for layer in meta["architecture"]["config"]["layers"] if layer["type"] == "BatchNorm1d")


@pytest.mark.parametrize("change, message", [
    (lambda meta, arrays: arrays.update({"state.1.running_var": np.ones(7)}), r"1.running_var should have shape"),
    (lambda meta, arrays: arrays.pop("state.1.running_mean"), r"missing \['state.1.running_mean'\]"),
    (lambda meta, arrays: _bn_record(meta)["config"].update(momentum=2.0), r"momentum must be a number in \[0, 1\]"),
    (lambda meta, arrays: _bn_record(meta)["config"].update(num_features=-1), "num_features must be a positive"),
    (lambda meta, arrays: meta["architecture"]["config"]["layers"][2]["config"].update(p=3),
     "p must be a probability"),
])
def test_tampered_files_are_rejected_before_building(change, message, tmp_path, rng):
    net = nnlab.Sequential(nnlab.Linear(3, 4, rng=rng), nnlab.BatchNorm1d(4), nnlab.Dropout(0.5),
                           nnlab.Linear(4, 2, rng=rng))
    path = net.save(tmp_path / "m.npz")
    _rewrite(path, change)
    with pytest.raises(CheckpointError, match=message):
        nnlab.load(path)


def test_nan_in_running_statistics_is_rejected(tmp_path, rng):
    path = nnlab.Sequential(nnlab.Linear(3, 4, rng=rng), nnlab.BatchNorm1d(4)).save(tmp_path / "m.npz")
    _rewrite(path, lambda meta, arrays: arrays["state.1.running_var"].__setitem__(0, np.nan))
    with pytest.raises(CheckpointError, match="1.running_var holds NaN"):
        nnlab.load(path)


def test_load_into_accepts_another_mode_but_not_other_settings(tmp_path, rng):
    from nnlab.checkpoint import load_into

    net = nnlab.make_mlp([3, 4, 2], dropout=0.5, norm="batch", rng=rng)
    path = net.eval().save(tmp_path / "m.npz")
    load_into(nnlab.make_mlp([3, 4, 2], dropout=0.5, norm="batch", rng=rng), path)  # training mode: fine
    with pytest.raises(CheckpointError, match="does not match"):
        load_into(nnlab.make_mlp([3, 4, 2], dropout=0.25, norm="batch", rng=rng), path)
