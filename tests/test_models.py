"""MLP (handout API), make_mlp, and the handout's Stage 2/3 code typed against nnlab."""

import math

import numpy as np
import pytest

import nnlab
from nnlab import MLP, Linear


def test_mlp_api(rng):
    model = MLP(in_dim=3, hidden_dim=5, out_dim=2, nonlin="tanh", rng=rng)
    assert isinstance(model.l1, Linear) and isinstance(model.l2, Linear)
    yhat, h = model.forward(rng.normal(size=(4, 3)))
    assert yhat.shape == (4, 2) and h.shape == (4, 5)
    np.testing.assert_allclose(h, np.tanh(model.h_pre))
    dx = model.backward(np.ones((4, 2)), h)
    assert dx.shape == (4, 3)
    assert len(model.parameters()) == 4


def test_mlp_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError, match=r"'relu', 'tanh', 'sigmoid', 'leaky_relu', 'gelu'.*'swish'"):
        MLP(2, 3, 1, nonlin="swish")


@pytest.mark.parametrize("nonlin", ["relu", "tanh"])
def test_mlp_gradcheck(nonlin, rng):
    assert nnlab.gradcheck(MLP(3, 6, 2, nonlin=nonlin, rng=rng), rng.normal(size=(5, 3))).passed


def test_mlp_overfits_twenty_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    y = rng.normal(size=(20, 1))
    model = MLP(4, 64, 1, nonlin="tanh", rng=rng)
    opt = nnlab.Adam(model.parameters(), lr=0.01)
    loss = nnlab.MSELoss()
    for _ in range(2000):
        value, grad = loss(model.predict(X), y)
        model.backward(grad)
        opt.step()
    assert value < 1e-3


def test_make_mlp_depth_and_init(rng):
    net = nnlab.make_mlp([4, 16, 16, 3], nonlin="relu", rng=rng)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert net[0].init == "he"
    with pytest.raises(ValueError, match="at least"):
        nnlab.make_mlp([4])


def test_handout_stage2_code_trains():
    """The handout's two-layer linear net, typed in against nnlab: loss decreases."""
    np.random.seed(42)
    lin1 = Linear(in_dim=1, out_dim=4)
    lin2 = Linear(in_dim=4, out_dim=1)
    lr = 0.05
    losses = []
    x = np.linspace(-2, 2, 200)
    y = 2.5 * x - 0.7 + 0.25 * np.random.randn(200)
    X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
    for _ in range(200):
        h = lin1.forward(X)
        yhat = lin2.forward(h)
        err = yhat - Y
        losses.append(np.mean(err**2))
        dyhat = (2.0 / X.shape[0]) * err
        dh = lin2.backward(dyhat)
        _ = lin1.backward(dh)
        for layer in (lin1, lin2):
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
    assert losses[-1] < 0.1 * losses[0]
    assert losses[-1] < 0.08  # noise variance is 0.0625
    assert all(b <= a + 1e-12 for a, b in zip(losses[50:], losses[51:]))


def test_handout_stage3_code_trains():
    np.random.seed(42)
    x2 = np.linspace(-1, 1, 400)
    y2 = np.sin(2 * math.pi * x2) + 0.1 * np.random.randn(400)
    X2, Y2 = x2.reshape(-1, 1), y2.reshape(-1, 1)
    model = MLP(in_dim=1, hidden_dim=32, out_dim=1, nonlin="relu")
    lr = 0.005
    losses = []
    for _ in range(1500):
        yhat, h = model.forward(X2)
        err = yhat - Y2
        losses.append(np.mean(err**2))
        _ = model.backward((2.0 / X2.shape[0]) * err, h)
        for layer in (model.l1, model.l2):
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
    assert losses[-1] < 0.8 * losses[0]


def test_two_layer_linear_net_tiny_batch_of_three_points_gradcheck():
    """The handout's Stage 2 checkpoint: finite differences on a batch of 3 points."""
    rng = np.random.default_rng(7)
    net = nnlab.Sequential(Linear(1, 4, rng=rng), Linear(4, 1, rng=rng))
    X = rng.normal(size=(3, 1))
    Y = rng.normal(size=(3, 1))
    loss = nnlab.MSELoss()
    _, dyhat = loss(net.forward(X), Y)
    net.backward(dyhat)
    for p in net.parameters():
        numeric = nnlab.numerical_gradient(lambda: loss(net.forward(X), Y)[0], p.value)
        assert nnlab.rel_error(p.grad, numeric) < 1e-8


def test_a_diverged_handout_loop_names_the_weights_and_prints_no_numpy_warning(capfd):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)) * 100
    y = X @ np.array([[1.0], [-1.0], [2.0]])
    model = nnlab.MLP(3, 4, 1, rng=rng)
    with pytest.raises(nnlab.NnlabValueError, match=r"weights diverged \(lower the learning rate\)|parameter l\d\.\w "
                                                      r"holds NaN/inf \(training diverged"):
        for _ in range(200):  # the handout's loop with a learning rate far too large
            out, h = model.forward(X)
            model.backward(2 * (out - y) / len(y), h)
            for layer in (model.l1, model.l2):
                layer.W -= 10 * layer.dW
                layer.b -= 10 * layer.db
    assert "Warning" not in capfd.readouterr().err


@pytest.mark.parametrize("layer", ["l1", "l2"])
def test_a_nan_weight_is_named_not_blamed_on_the_input(layer):
    model = nnlab.MLP(3, 4, 2, rng=np.random.default_rng(0))
    getattr(model, layer).W[0, 0] = np.nan
    named = rf"parameter {layer}\.W holds NaN|'{layer}'.*: parameter W holds NaN"
    with pytest.raises(nnlab.NnlabValueError, match=named):
        model.forward(np.ones((2, 3)))
    chain = nnlab.Sequential(nnlab.Linear(3, 4), nnlab.ReLU(), nnlab.Linear(4, 1))
    chain[2].b[0] = np.inf
    with pytest.raises(nnlab.NnlabValueError, match=r"Sequential: parameter layer 2\.b holds NaN/inf"):
        chain.forward(np.ones((2, 3)))


def test_mlp_backward_refuses_an_h_from_another_batch():
    model = nnlab.MLP(2, 3, 2, rng=np.random.default_rng(0))
    _, h = model.forward(np.ones((4, 2)))
    assert model.backward(np.ones((4, 2)), h).shape == (4, 2)
    with pytest.raises(nnlab.NnlabValueError, match=r"h has shape \(2, 3\), but the last forward's hidden"):
        model.backward(np.ones((4, 2)), h[:2])


@pytest.mark.parametrize("nonlin", ["tanh", "relu"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_a_non_finite_input_is_refused_even_where_the_activation_would_hide_it(nonlin, bad):
    """tanh(+-inf) = +-1 and relu(-inf) = 0 are finite, so the output alone cannot vouch for the hidden layer:
    MLP.forward scans z1 too, and names the input."""
    model = nnlab.MLP(3, 4, 2, nonlin=nonlin, rng=np.random.default_rng(0))
    model.l1.W[...] = -np.sign(bad)  # every z1 is -inf: relu makes it 0, tanh -1
    x = np.array([[bad, 0.0, 0.0]])
    assert np.isfinite(model.act._forward(model.l1._forward(x))).all()  # the activation does hide the infinity
    with pytest.raises(nnlab.NnlabValueError, match=r"input holds 1 non-finite"):
        model.forward(x)


@pytest.mark.parametrize("spoil", [
    lambda g: g.astype(np.float32),  # float32 gradients of float64 weights: silently less precise before
    lambda g: np.zeros(g.size + 1),  # another shape: a raw NumPy error before
    lambda g: g.tolist(),  # not an array: a raw TypeError before
], ids=["float32", "shape", "list"])
@pytest.mark.parametrize("name", ["dW", "db"])
def test_a_chain_replaces_an_unusable_gradient_buffer_of_any_layer_not_only_the_last(spoil, name, rng):
    """MLP.backward (and Sequential.backward) check dout with the last layer, and every layer's buffers."""
    model, twin = nnlab.MLP(3, 4, 2, rng=rng), nnlab.MLP(3, 4, 2)
    twin.load_state_dict(model.state_dict())
    setattr(model.l1, name, spoil(getattr(model.l1, name)))
    x, dyhat = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    for m in (model, twin):
        _, h = m.forward(x)
        m.backward(dyhat, h)
    grad = getattr(model.l1, name)
    assert type(grad) is np.ndarray and grad.dtype == np.float64
    np.testing.assert_array_equal(grad, getattr(twin.l1, name))


@pytest.mark.parametrize("layers", [(3, 4, 2), (3, 4, 4, 2)], ids=["two-linear", "three-linear"])
def test_a_chain_replaces_the_unusable_gradient_buffers_of_every_linear_layer(layers, rng):
    """The handout's two-layer linear net (Stage 2) and a deeper MLP, every Linear's dW spoilt: all are replaced."""
    def chain(r):
        return nnlab.Sequential([Linear(a, b, rng=r) for a, b in zip(layers[:-1], layers[1:])]) if len(layers) == 3 \
            else nnlab.make_mlp(list(layers), rng=r)
    net, twin = chain(np.random.default_rng(1)), chain(np.random.default_rng(1))
    linears = [layer for layer in net if isinstance(layer, Linear)]
    for layer in linears:
        layer.dW = layer.dW.astype(np.float32)
    x, dout = rng.normal(size=(5, layers[0])), rng.normal(size=(5, layers[-1]))
    for m in (net, twin):
        m.forward(x)
        m.backward(dout)
    for layer, other in zip(linears, [layer for layer in twin if isinstance(layer, Linear)]):
        assert layer.dW.dtype == np.float64
        np.testing.assert_array_equal(layer.dW, other.dW)
