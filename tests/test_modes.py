"""Training and evaluation modes: fit trains in one and evaluates in the other, predict uses evaluation mode,
and both give every part of the model back the mode it had."""

import numpy as np
import pytest

import nnlab
from nnlab.layers import mode, modules
from nnlab.train import EarlyStopping, fit, predict


def _net(rng, **kwargs):
    return nnlab.make_mlp([4, 8, 6, 3], dropout=0.5, norm="batch", rng=rng, **kwargs)


def _data(rng, n=40):
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def _modes(model):
    return [m.training for m in modules(model)]


def test_train_and_eval_reach_every_part(rng):
    net = _net(rng)
    assert all(_modes(net.eval())) is False and not any(_modes(net))
    assert all(_modes(net.train()))


def test_mode_context_restores_mixed_modes_even_on_error(rng):
    net = _net(rng)
    net[1].eval()  # the first BatchNorm1d alone in evaluation mode
    before = _modes(net)
    with pytest.raises(ZeroDivisionError), mode(net, training=True):
        assert all(_modes(net))
        raise ZeroDivisionError
    assert _modes(net) == before
    assert "training" not in vars(net[0])  # a mode that was never set stays unset (the class default)


def test_fit_trains_in_training_mode_and_evaluates_in_evaluation_mode(rng):
    net = _net(rng)
    X, y = _data(rng)
    seen = {"train": [], "evaluate": [], "epochs": []}
    original = net[2]._forward

    def spy(x, inplace=False):  # the activation after the first BatchNorm: records the mode of every call
        seen["train"].append(net[1].training)
        return original(x, inplace)

    net[2]._forward = spy

    def evaluate(_epoch):
        seen["evaluate"].append(_modes(net))
        seen["epochs"].append(list(seen["train"]))
        seen["train"].clear()
        return {"val": 0.0}

    fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), X, y, epochs=3, batch_size=8,
        rng=rng, evaluate=evaluate)
    assert len(seen["evaluate"]) == 3 and all(not any(flags) for flags in seen["evaluate"])  # every part
    # fit's one-row target check in evaluation mode, then every step of every epoch (5 of 8 rows) in training mode
    assert seen["epochs"] == [[False] + [True] * 5, [True] * 5, [True] * 5]


@pytest.mark.parametrize("start", ["train", "eval", "mixed"])
def test_fit_and_predict_give_back_the_callers_modes(start, rng):
    net = _net(rng)
    X, y = _data(rng)
    if start == "eval":
        net.eval()
    elif start == "mixed":
        net[1].eval()  # BatchNorm1d frozen, Dropout training: a state a caller may want
        net[-2].training = False  # the second Dropout off
    before = _modes(net)
    predict(net, X)
    assert _modes(net) == before
    fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X, y, epochs=2, batch_size=8,
        rng=rng, evaluate=lambda e: {"acc": nnlab.train.accuracy(net, X, y)})
    assert _modes(net) == before


def test_predict_uses_evaluation_mode_whatever_the_models_mode(rng):
    net = _net(rng)
    X, y = _data(rng)
    fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.Adam(net.parameters(), lr=0.01), X, y, epochs=3, batch_size=8,
        rng=rng)
    assert all(_modes(net))
    first = predict(net, X)
    np.testing.assert_array_equal(predict(net, X), first)  # no dropout draw: repeatable
    np.testing.assert_array_equal(net.eval().forward(X), first)
    # in chunks too (evaluation mode makes every row independent of the others)
    np.testing.assert_allclose(predict(net, X, batch_size=7), first, rtol=1e-14)


def test_fits_target_check_draws_no_dropout_mask(rng):
    """fit checks its targets with one forward of one row, in evaluation mode: the mask generator is untouched."""
    gen, twin = np.random.default_rng(9), np.random.default_rng(9)
    net = nnlab.Sequential(nnlab.Linear(4, 5, rng=rng), nnlab.Dropout(0.5, rng=gen), nnlab.Linear(5, 3, rng=rng))
    X, y = _data(rng)
    fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), X, y, epochs=1)
    twin.random((X.shape[0], 5))  # exactly one training step's mask
    assert gen.bit_generator.state == twin.bit_generator.state


def test_running_mean_after_one_full_batch_step_is_one_update(rng):
    net = nnlab.Sequential(nnlab.Linear(4, 3, rng=rng), nnlab.BatchNorm1d(3), nnlab.Linear(3, 2, rng=rng))
    X, y = _data(rng)
    expected = 0.1 * (X @ net[0].W.T + net[0].b).mean(0)
    fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), X, y % 2, epochs=1)
    np.testing.assert_allclose(net[1].running_mean, expected, rtol=1e-13)


def test_last_batch_of_one_row_is_refused_with_batch_norm(rng):
    net = _net(rng)
    X, y = _data(rng, n=17)
    with pytest.raises(ValueError, match="more than one row"):
        fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), X, y, epochs=1,
            batch_size=8, rng=rng)


def test_early_stopping_restores_the_best_epochs_running_statistics(rng):
    net = _net(rng)
    X, y = _data(rng)
    bn = net[1]
    scores = iter([3.0, 1.0, 2.0, 4.0, 5.0])
    kept = []

    def evaluate(_epoch):
        kept.append((bn.running_mean.copy(), bn.running_var.copy(), bn.gamma.copy()))
        return {"val_loss": next(scores)}

    hist = fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), X, y, epochs=5,
               batch_size=8, rng=rng, evaluate=evaluate, early_stopping=EarlyStopping(patience=2))
    assert hist.best_epoch == 1
    np.testing.assert_array_equal(bn.running_mean, kept[1][0])
    np.testing.assert_array_equal(bn.running_var, kept[1][1])
    np.testing.assert_array_equal(bn.gamma, kept[1][2])
