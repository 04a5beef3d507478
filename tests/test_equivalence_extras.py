"""The checked face and the unchecked core agree for networks built from the layers beyond the handout.

The same network is trained twice from identical weights and identical dropout generators:
once through the public ``forward``/``backward`` with a hand-written update, the handout's
way, once by ``fit`` through the cores (in place wherever allowed, no input gradient for the
first layer).  Parameters and running statistics must agree to rounding.
"""

import numpy as np
import pytest

import nnlab
from nnlab import GELU, BatchNorm1d, Dropout, LeakyReLU, Linear, Sequential, Sigmoid, Tanh

LR = 0.05
ROUNDING = {"rtol": 1e-10, "atol": 1e-13}


def _build(kind, seed, d=4, h=6, classes=3):
    rng = np.random.default_rng(seed)
    masks = np.random.default_rng(seed + 100)  # the dropout generator, the same in both twins
    if kind == "bn-relu-dropout":
        return nnlab.make_mlp([d, h, h, classes], dropout=0.3, norm="batch", rng=rng)
    if kind == "every-new-layer":
        return Sequential(Linear(d, h, rng=rng), BatchNorm1d(h), Sigmoid(), Dropout(0.4, rng=masks),
                          Linear(h, h, rng=rng), LeakyReLU(0.1), BatchNorm1d(h), GELU(), Linear(h, h, rng=rng),
                          GELU("tanh"), Dropout(0.2, rng=masks), Tanh(), Linear(h, classes, rng=rng))
    # a new layer first: the caller's input goes straight into it (it must not be written)
    return Sequential(BatchNorm1d(d), Dropout(0.5, rng=masks), Linear(d, h, rng=rng), LeakyReLU(),
                      Linear(h, classes, rng=rng), Sigmoid())


def _handout_epochs(model, X, y, epochs, batch, rng, loss):
    for _ in range(epochs):
        perm = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch):
            idx = perm[start : start + batch]
            _, grad = loss(model.forward(X[idx]), y[idx])
            model.backward(grad)
            for p in model.parameters():
                p.value -= LR * p.grad


def _state(model):
    return [a.copy() for a in model.state_dict().values()]


@pytest.mark.parametrize("kind", ["bn-relu-dropout", "every-new-layer", "new-layer-first"])
def test_handout_loop_and_fit_train_to_the_same_state(kind, rng):
    X = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, size=30)
    public, core = _build(kind, 7), _build(kind, 7)  # (make_mlp's one generator draws weights, then masks)
    X_before = X.copy()
    _handout_epochs(public, X, y, epochs=3, batch=10, rng=np.random.default_rng(5),
                    loss=nnlab.SoftmaxCrossEntropyLoss())
    nnlab.fit(core, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(core.parameters(), lr=LR), X, y, epochs=3,
              batch_size=10, rng=np.random.default_rng(5))
    for a, b in zip(_state(public), _state(core)):
        np.testing.assert_allclose(b, a, **ROUNDING)
    untrained = _state(_build(kind, 7))
    assert sum(not np.array_equal(a, u) for a, u in zip(_state(core), untrained)) >= len(untrained) // 2
    np.testing.assert_array_equal(X, X_before)
    # and both predict the same in evaluation mode, through predict's core and the checked face
    np.testing.assert_allclose(nnlab.train.predict(core, X), public.eval().forward(X), **ROUNDING)
