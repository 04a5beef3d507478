"""The checked face and the unchecked core compute the same numbers.

Every module and loss is stepped twice from identical float64 weights: once through the
public API the way the handout's loop uses it (``forward``/``backward``, the handout's
loss functions, ``W -= lr * dW``), once through the cores the way ``fit`` runs them (in
place wherever the core is allowed to, no input gradient for the first layer, the pure
loss core on fit's own output).  The parameters must agree to rounding.

The other tests here each pin one bug that such a split invites: a core that overwrites
an array it still needs, a label off by one, a ReLU mask that lets 0 through, one
shuffle reused every epoch, weight decay leaking onto biases.
"""

import numpy as np
import pytest

import nnlab
from nnlab import MLP, Linear, ReLU, Sequential, Tanh

LR = 0.1
ROUNDING = {"rtol": 1e-10, "atol": 1e-13}


def _data(rng, n=23, d=4, classes=3):
    X = rng.normal(size=(n, d))
    labels = rng.integers(0, classes, size=n)
    return X, labels


def _handout_target(loss_name, labels, classes):
    """The target the handout's loop uses for each loss."""
    if loss_name == "mse":
        return nnlab.one_hot(labels, classes, dtype=np.float64) * 2 - 1  # any real targets will do
    return nnlab.one_hot(labels, classes, dtype=np.float64)


def _handout_dyhat(loss_name, out, Yb):
    """dLoss/dyhat as the handout computes it: Stage 2's (2 / size) * err, Stage 5's softmax then (p - Y) / B."""
    if loss_name == "mse":
        return (2.0 / out.size) * (out - Yb)
    probs = nnlab.softmax(out)
    nnlab.cross_entropy(probs, Yb)
    return nnlab.softmax_cross_entropy_backward(probs, Yb)


def _handout_epochs(model, layers, X, Y, loss_name, epochs, batch, rng):
    """The handout's Stage 5 loop, verbatim in structure: shuffle, forward, loss, backward, ``W -= lr * dW``."""
    for _ in range(epochs):
        perm = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch):
            idx = perm[start : start + batch]
            out = model.forward(X[idx])
            out = out[0] if isinstance(out, tuple) else out  # MLP.forward returns (yhat, h)
            dyhat = _handout_dyhat(loss_name, out, Y[idx])
            model.backward(dyhat)
            for layer in layers:
                layer.W -= LR * layer.dW
                layer.b -= LR * layer.db


def _fit_target(loss_name, labels, classes, onehot):
    if loss_name == "mse":
        return _handout_target("mse", labels, classes)
    return nnlab.one_hot(labels, classes, dtype=np.float64) if onehot else labels


def _build(kind, seed, d=4, hidden=5, classes=3):
    rng = np.random.default_rng(seed)
    if kind == "Linear":
        model = Linear(d, classes, rng=rng)
    elif kind == "MLP-relu":
        model = MLP(d, hidden, classes, nonlin="relu", rng=rng)
    elif kind == "MLP-tanh":
        model = MLP(d, hidden, classes, nonlin="tanh", rng=rng)
    elif kind == "Sequential":  # every module kind, each activation after each kind of module
        model = Sequential(Linear(d, hidden, rng=rng), ReLU(), Linear(hidden, hidden, rng=rng), Tanh(), ReLU(),
                           Linear(hidden, hidden, rng=rng), Tanh(), Linear(hidden, classes, rng=rng))
    elif kind == "activation-first":  # the caller's input goes straight into a module that could work in place
        model = Sequential(Tanh(), Linear(d, hidden, rng=rng), ReLU(), Linear(hidden, classes, rng=rng))
    else:  # an activation last: the loss must not turn the output it keeps into the gradient
        model = Sequential(Linear(d, hidden, rng=rng), ReLU(), Linear(hidden, classes, rng=rng), Tanh())
    for p in model.parameters():  # non-zero biases from the start, so a bias bug shows
        if not p.decay:
            p.value[...] = rng.normal(size=p.value.shape)
    return model


def _linears(model):
    net = getattr(model, "net", model)
    return [m for m in (net if isinstance(net, Sequential) else [net]) if isinstance(m, Linear)]


KINDS = ["Linear", "MLP-relu", "MLP-tanh", "Sequential", "activation-first", "activation-last"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loss_name", ["mse", "ce-labels", "ce-onehot"])
def test_handout_loop_and_fit_train_to_the_same_parameters(kind, loss_name, rng):
    X, labels = _data(rng)
    public, core = _build(kind, 7), _build(kind, 7)
    Y_handout = _handout_target(loss_name.split("-")[0], labels, 3)
    X_before = X.copy()
    _handout_epochs(public, _linears(public), X, Y_handout, loss_name.split("-")[0], epochs=3, batch=8,
                    rng=np.random.default_rng(5))
    loss = nnlab.MSELoss() if loss_name == "mse" else nnlab.SoftmaxCrossEntropyLoss()
    Y_fit = _fit_target(loss_name.split("-")[0], labels, 3, onehot=loss_name == "ce-onehot")
    nnlab.fit(core, loss, nnlab.SGD(core.parameters(), lr=LR), X, Y_fit, epochs=3, batch_size=8,
              rng=np.random.default_rng(5))
    for p, q in zip(public.parameters(), core.parameters()):
        np.testing.assert_allclose(q.value, p.value, **ROUNDING)
    untrained = _build(kind, 7).parameters()
    assert all(not np.array_equal(p.value, u.value) for p, u in zip(core.parameters(), untrained))
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("module", [ReLU(), Tanh()], ids=repr)
def test_activation_face_and_core_agree_in_and_out_of_place(module, rng):
    x = rng.normal(size=(6, 5))
    x[0, :2] = 0.0  # ReLU's kink, exactly
    dout = rng.normal(size=(6, 5))
    out_public = module.forward(x)
    dx_public = module.backward(dout)
    x_core, dout_core = x.copy(), dout.copy()
    out_core = module._forward(x_core, inplace=True)
    dx_core = module._backward(dout_core, inplace=True)
    np.testing.assert_array_equal(out_core, out_public)
    np.testing.assert_array_equal(dx_core, dx_public)
    assert out_core is x_core and dx_core is dout_core  # it did work in place when allowed to


def test_linear_face_and_core_agree(rng):
    lin = Linear(4, 3, rng=rng)
    lin.b[:] = rng.normal(size=3)
    x, dout = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    out_public, dx_public = lin.forward(x), lin.backward(dout)
    grads_public = (lin.dW.copy(), lin.db.copy())
    out_core = lin._forward(x.copy(), inplace=True)
    dx_core = lin._backward(dout.copy(), inplace=True, need_dx=True)
    np.testing.assert_array_equal(out_core, out_public)
    np.testing.assert_array_equal(dx_core, dx_public)
    np.testing.assert_array_equal(lin.dW, grads_public[0])
    np.testing.assert_array_equal(lin.db, grads_public[1])
    assert lin._backward(dout, inplace=True, need_dx=False) is None


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("need_dx", [False, True])
def test_linear_core_backward_never_writes_over_its_cached_input(inplace, need_dx, rng):
    """Square layer, so dx has the cached input's shape: writing dx there would go unnoticed by shapes."""
    lin = Linear(4, 4, rng=rng)
    x = rng.normal(size=(4, 4))
    kept = x.copy()
    lin._forward(x, inplace=inplace)
    lin._backward(rng.normal(size=(4, 4)), inplace=inplace, need_dx=need_dx)
    assert lin.x is x
    np.testing.assert_array_equal(x, kept)


def test_relu_layer_blocks_the_gradient_at_exactly_zero(rng):
    """The handout's mask is x > 0: at x == 0 the layer passes nothing, in both faces and inside a chain."""
    x = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.0]])
    relu = ReLU()
    relu.forward(x)
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), [[0, 0, 1], [0, 1, 0]])
    relu._forward(x.copy(), inplace=True)
    np.testing.assert_array_equal(relu._backward(np.ones_like(x), inplace=True), [[0, 0, 1], [0, 1, 0]])
    # inside a network: a first layer with zero weights and bias makes every pre-activation exactly 0
    net = Sequential(Linear(2, 3, rng=rng), ReLU(), Linear(3, 1, rng=rng))
    net[0].W[...] = 0.0
    net.forward(rng.normal(size=(5, 2)))
    net.backward(np.ones((5, 1)))
    np.testing.assert_array_equal(net[0].dW, 0.0)
    np.testing.assert_array_equal(net[0].db, 0.0)


def test_fused_label_cross_entropy_matches_one_hot_rows_exactly_at_each_label(rng):
    z = rng.normal(size=(9, 4))
    labels = np.array([0, 1, 2, 3, 3, 2, 1, 0, 2])
    loss = nnlab.SoftmaxCrossEntropyLoss()
    value_labels, grad_labels = loss._loss(z.copy(), labels, inplace=True)
    value_rows, grad_rows = loss._loss(z.copy(), nnlab.one_hot(labels, 4, dtype=np.float64), inplace=True)
    probs = nnlab.softmax(z)
    assert value_labels == pytest.approx(-np.mean(np.log(probs[np.arange(9), labels])), rel=1e-12)
    assert value_labels == pytest.approx(value_rows, rel=1e-12)
    np.testing.assert_allclose(grad_labels, grad_rows, rtol=1e-12, atol=1e-15)
    expected = probs / 9
    expected[np.arange(9), labels] -= 1 / 9
    np.testing.assert_allclose(grad_labels, expected, rtol=1e-12, atol=1e-15)


def test_fit_shuffles_afresh_every_epoch_in_the_handouts_order(rng):
    """Epoch e visits the rows in the order of the e-th ``rng.permutation(n)``, a new order each epoch."""
    n, batch = 10, 4
    X = np.arange(n, dtype=np.float64).reshape(-1, 1)  # each row names itself
    seen = []

    def record(Xb, _rng):
        seen.extend(Xb[:, 0].astype(int).tolist())
        return Xb

    lin = Linear(1, 1, rng=rng)
    nnlab.fit(lin, nnlab.MSELoss(), nnlab.SGD(lin.parameters(), lr=0.01), X, X, epochs=3, batch_size=batch,
              rng=np.random.default_rng(11), augment=record)
    orders = [seen[i * n : (i + 1) * n] for i in range(3)]
    twin = np.random.default_rng(11)
    for order in orders:
        assert order == twin.permutation(n).tolist()
    assert orders[0] != orders[1] != orders[2]


@pytest.mark.parametrize("make", [
    lambda params: nnlab.SGD(params, lr=0.1, weight_decay=0.5),
    lambda params: nnlab.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.5),
    lambda params: nnlab.Adam(params, lr=0.1, weight_decay=0.5),
], ids=["sgd", "momentum", "adam"])
def test_weight_decay_never_touches_nonzero_biases(make, rng):
    lin = Linear(3, 2, rng=rng)
    lin.b[:] = [1.5, -2.0]  # non-zero: decay of a zero bias would go unseen
    lin.dW[...] = 0.0
    lin.db[...] = 0.0
    W0 = lin.W.copy()
    make(lin.parameters()).step()
    np.testing.assert_array_equal(lin.b, [1.5, -2.0])
    assert np.all(lin.W != W0)  # the weights did decay


def test_fit_with_l2_equals_the_handout_l2_loop_and_leaves_biases_undecayed(rng):
    """Stage 4's loop (``lin.dW += 2 * lam * lin.W``, biases free) against fit with an L2Penalty."""
    X, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 1))
    lam = 0.3
    public, core = Linear(3, 1, rng=np.random.default_rng(2)), Linear(3, 1, rng=np.random.default_rng(2))
    public.b[:] = core.b[:] = 4.0
    losses = []
    for _ in range(20):
        err = public.forward(X) - y
        losses.append(np.mean(err**2) + lam * np.sum(public.W**2))
        public.backward((2.0 / X.shape[0]) * err)
        public.dW += 2 * lam * public.W
        public.W -= LR * public.dW
        public.b -= LR * public.db
    history = nnlab.fit(core, nnlab.MSELoss(), nnlab.SGD(core.parameters(), lr=LR), X, y, epochs=20,
                        penalty=nnlab.L2Penalty(lam))
    # the recorded loss is the penalised one, one full-batch step per epoch
    np.testing.assert_allclose(history.step_loss, losses, **ROUNDING)
    np.testing.assert_allclose(history.epoch_loss, losses, **ROUNDING)
    np.testing.assert_allclose(core.W, public.W, **ROUNDING)
    np.testing.assert_allclose(core.b, public.b, **ROUNDING)


def test_evaluate_callback_may_reuse_fits_loss_object(rng):
    """fit's in-place loss core must not leak: an evaluate that calls the same loss object gets true numbers."""
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    X_val, y_val = rng.normal(size=(15, 4)), rng.integers(0, 3, size=15)
    net = nnlab.make_mlp([4, 6, 3], rng=rng)
    loss = nnlab.SoftmaxCrossEntropyLoss()
    records = []

    def evaluate(_epoch):
        out = nnlab.train.predict(net, X_val)
        kept = out.copy()
        value, _ = loss(out, y_val)
        np.testing.assert_array_equal(out, kept)  # the checked call never writes to its input
        records.append((value, float(np.mean(out.argmax(1) == y_val)), [p.value.copy() for p in net.parameters()]))
        return {"val_loss": value}

    nnlab.fit(net, loss, nnlab.SGD(net.parameters(), lr=0.1), X, y, epochs=4, batch_size=16,
              rng=np.random.default_rng(0), evaluate=evaluate)
    for value, acc, params in records:  # recompute from the saved weights with a fresh loss object
        for p, saved in zip(net.parameters(), params):
            p.value[...] = saved
        out = net.forward(X_val)
        assert value == nnlab.SoftmaxCrossEntropyLoss()(out, y_val)[0]
        assert acc == float(np.mean(out.argmax(1) == y_val))


def test_predict_equals_the_checked_forward(rng):
    net = nnlab.make_mlp([5, 7, 3], rng=rng)
    X = rng.normal(size=(11, 5))
    np.testing.assert_array_equal(nnlab.train.predict(net, X, batch_size=4), net.forward(X))
    model = MLP(5, 7, 3, rng=rng)
    np.testing.assert_array_equal(nnlab.train.predict(model, X), model.forward(X)[0])
