"""RMSprop, AdamW, Nesterov SGD, the schedules and gradient clipping: formulas, checks, and their place in fit."""

import math

import numpy as np
import pytest

import nnlab
from nnlab import SGD, AdamW, CosineAnnealingLR, Linear, RMSprop, StepLR, clip_grad_norm
from nnlab._checks import NonFiniteError


def _layer_with_grads(rng):
    lin = Linear(3, 2, rng=rng)
    lin.b[:] = rng.normal(size=lin.b.shape)
    lin.dW[...] = rng.normal(size=lin.W.shape)
    lin.db[...] = rng.normal(size=lin.b.shape)
    return lin


def test_nesterov_two_steps_by_hand(rng):
    lin = _layer_with_grads(rng)
    W0, g = lin.W.copy(), lin.dW.copy()
    opt = SGD(lin.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    opt.step()  # v = g; W -= lr (g + m v)
    np.testing.assert_allclose(lin.W, W0 - 0.1 * (g + 0.9 * g), rtol=1e-15)
    opt.step()  # v = m g + g
    v = 0.9 * g + g
    np.testing.assert_allclose(lin.W, W0 - 0.1 * (g + 0.9 * g) - 0.1 * (g + 0.9 * v), rtol=1e-14, atol=1e-15)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="SGD: nesterov=True needs a momentum above 0, got momentum=0"):
        SGD(Linear(2, 1).parameters(), lr=0.1, nesterov=True)


def test_rmsprop_one_step_by_hand(rng):
    lin = _layer_with_grads(rng)
    W0, g = lin.W.copy(), lin.dW.copy()
    RMSprop(lin.parameters(), lr=0.01, alpha=0.9, eps=1e-8).step()
    s = 0.1 * g * g
    np.testing.assert_allclose(lin.W, W0 - 0.01 * g / (np.sqrt(s) + 1e-8), rtol=1e-14)


def test_adamw_decays_weights_outside_the_moments(rng):
    """With a zero gradient Adam's step is 0, so one AdamW step is the decoupled shrink alone; biases keep still."""
    lin = _layer_with_grads(rng)
    lin.dW[...] = 0.0
    lin.db[...] = 0.0
    W0, b0 = lin.W.copy(), lin.b.copy()
    AdamW(lin.parameters(), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(lin.W, W0 * (1 - 0.1 * 0.5), rtol=1e-15)
    np.testing.assert_array_equal(lin.b, b0)
    # Adam's L2 instead goes through the moments: the same settings move W by a full Adam step
    lin2 = _layer_with_grads(np.random.default_rng(0))
    lin2.dW[...] = 0.0
    W2 = lin2.W.copy()
    nnlab.Adam(lin2.parameters(), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(np.abs(lin2.W - W2), 0.1, rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda p: RMSprop(p, lr=0.1, weight_decay=0.5),
    lambda p: RMSprop(p, lr=0.1, weight_decay=0.5, momentum=0.9),
    lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.5),
], ids=["rmsprop", "rmsprop-momentum", "nesterov"])
def test_weight_decay_never_touches_biases(make, rng):
    lin = _layer_with_grads(rng)
    lin.db[...] = 0.0
    b0 = lin.b.copy()
    make(lin.parameters()).step()
    np.testing.assert_array_equal(lin.b, b0)


@pytest.mark.parametrize("make, message", [
    (lambda p: RMSprop(p, lr=0.1, alpha=1.0), "RMSprop: alpha must be below 1, got 1.0"),
    (lambda p: RMSprop(p, lr=0.1, eps=0), "RMSprop: eps must be a finite number > 0, got 0.0"),
    (lambda p: RMSprop(p, lr=0.1, momentum=-0.1), "RMSprop: momentum must be a finite number >= 0, got -0.1"),
    (lambda p: AdamW(p, lr=0.1, betas=(0.9, 1.0)), r"AdamW: betas must lie in \[0, 1\), got \(0.9, 1.0\)"),
    (lambda p: AdamW(p, lr=0.1, weight_decay=-1), "AdamW: weight_decay must be a finite number >= 0, got -1.0"),
])
def test_bad_settings_name_the_optimizer(make, message):
    with pytest.raises(ValueError, match=message):
        make(Linear(2, 1).parameters())


def test_optimizers_train_a_small_network(rng):
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    for make in (lambda p: RMSprop(p, lr=0.01), lambda p: AdamW(p, lr=0.01),
                 lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True)):
        net = nnlab.make_mlp([4, 8, 2], rng=np.random.default_rng(0))
        hist = nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), make(net.parameters()), X, y, epochs=30, batch_size=16,
                         rng=np.random.default_rng(0))
        assert hist.epoch_loss[-1] < 0.5 * hist.epoch_loss[0]


# --- schedules --------------------------------------------------------------------------------------------

def test_step_lr_by_hand():
    opt = SGD(Linear(2, 1).parameters(), lr=1.0)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    rates = [sched.get_last_lr()[0]]
    for _ in range(7):
        sched.step()
        rates.append(opt.lr)
    assert rates == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert sched.last_epoch == 7 and sched.get_last_lr() == [0.25]


def test_cosine_by_hand():
    opt = SGD(Linear(2, 1).parameters(), lr=0.2)
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.02)
    rates = [opt.lr]
    for _ in range(8):
        sched.step()
        rates.append(opt.lr)
    expected = [0.02 + 0.18 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(9)]
    np.testing.assert_allclose(rates, expected, rtol=1e-15)
    assert rates[4] == pytest.approx(0.02) and rates[8] == pytest.approx(0.2)  # down to eta_min, back up


def test_fit_steps_the_schedule_once_per_epoch_and_trains_with_each_rate(rng):
    X, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 1))
    lin = Linear(3, 1, rng=rng)
    opt = SGD(lin.parameters(), lr=0.1)
    seen = []
    fit_rates = []

    def evaluate(_epoch):
        seen.append(opt.lr)
        return {}

    original = opt.step

    def step():
        fit_rates.append(opt.lr)
        original()

    opt.step = step
    nnlab.fit(lin, nnlab.MSELoss(), opt, X, y, epochs=6, batch_size=10, rng=rng,
              scheduler=StepLR(opt, step_size=2, gamma=0.1), evaluate=evaluate)
    np.testing.assert_allclose(fit_rates, np.repeat([0.1, 0.1, 0.01, 0.01, 0.001, 0.001], 3), rtol=1e-15)
    np.testing.assert_allclose(seen, [0.1, 0.01, 0.01, 0.001, 0.001, 1e-4], rtol=1e-15)  # already stepped


def test_schedule_needs_an_nnlab_optimizer():
    with pytest.raises(TypeError, match="StepLR: expected an nnlab optimizer, got list"):
        StepLR([], step_size=2)
    with pytest.raises(ValueError, match="T_max must be a positive integer, got 0"):
        CosineAnnealingLR(SGD(Linear(2, 1).parameters(), lr=0.1), T_max=0)


# --- gradient clipping ------------------------------------------------------------------------------------

def test_clip_grad_norm_scales_to_the_limit_and_returns_the_norm_before(rng):
    lin = _layer_with_grads(rng)
    total = math.sqrt(np.sum(lin.dW**2) + np.sum(lin.db**2))
    dW, db = lin.dW.copy(), lin.db.copy()
    assert clip_grad_norm(lin.parameters(), total / 4) == pytest.approx(total, rel=1e-15)
    coef = (total / 4) / (total + 1e-6)
    np.testing.assert_allclose(lin.dW, dW * coef, rtol=1e-15)
    np.testing.assert_allclose(lin.db, db * coef, rtol=1e-15)
    after = math.sqrt(np.sum(lin.dW**2) + np.sum(lin.db**2))
    assert after < total / 4 and after == pytest.approx(total / 4, rel=1e-6)


def test_clip_grad_norm_leaves_small_gradients_alone(rng):
    lin = _layer_with_grads(rng)
    dW = lin.dW.copy()
    clip_grad_norm(lin.parameters(), 1e6)
    np.testing.assert_array_equal(lin.dW, dW)
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be a finite number > 0, got 0.0"):
        clip_grad_norm(lin.parameters(), 0)


def test_fit_clips_after_the_penalty_and_before_the_step(rng):
    """One full-batch step with L2 and clipping equals the same step done by hand in that order."""
    X, y = rng.normal(size=(12, 3)), 100 * rng.normal(size=(12, 1))  # large targets: large gradients
    lin, twin = Linear(3, 1, rng=np.random.default_rng(0)), Linear(3, 1, rng=np.random.default_rng(0))
    nnlab.fit(lin, nnlab.MSELoss(), SGD(lin.parameters(), lr=0.1), X, y, epochs=1, penalty=nnlab.L2Penalty(0.3),
              clip_grad_norm=0.5)
    _, grad = nnlab.MSELoss()(twin.forward(X), y)
    twin.backward(grad)
    nnlab.L2Penalty(0.3).backward(twin.parameters())
    assert clip_grad_norm(twin.parameters(), 0.5) > 0.5
    SGD(twin.parameters(), lr=0.1).step()
    np.testing.assert_allclose(lin.W, twin.W, rtol=1e-14)
    np.testing.assert_allclose(lin.b, twin.b, rtol=1e-14)


@pytest.mark.parametrize(("make", "message"), [
    (lambda opt: StepLR(opt, 0), "StepLR: step_size must be a positive integer, got 0"),
    (lambda opt: StepLR(opt, 2, gamma=-1.0), "StepLR: gamma must be a finite number > 0, got -1.0"),
    (lambda opt: CosineAnnealingLR(opt, 0), "CosineAnnealingLR: T_max must be a positive integer, got 0"),
    (lambda opt: CosineAnnealingLR(opt, 3, eta_min=-1.0),
     "CosineAnnealingLR: eta_min must be a finite number >= 0, got -1.0"),
])
def test_schedule_refusals_word_for_word(make, message):
    with pytest.raises(nnlab.NnlabValueError) as caught:
        make(SGD(Linear(1, 1).parameters(), lr=1.0))
    assert str(caught.value) == message


def test_step_lr_divides_by_ten_by_default():
    sched = StepLR(SGD(Linear(1, 1).parameters(), lr=2.0), step_size=1)
    assert [sched.lr_at(epoch) for epoch in range(3)] == pytest.approx([2.0, 0.2, 0.02], rel=1e-15)


_PARAMS_HINT = "params must be the model's parameters, e.g. {0}(model.parameters(), lr=...); got "


@pytest.mark.parametrize("make, given", [
    (lambda lin: SGD([lin.W, lin.b], lr=0.1), "a list of ndarray"),
    (lambda lin: nnlab.Adam([lin.W, lin.b]), "a list of ndarray"),
    (lambda lin: SGD(lin, lr=0.1), "a Linear module (call its .parameters())"),
    (lambda lin: SGD(lin.parameters, lr=0.1), "the method .parameters itself (call it: .parameters())"),
    (lambda lin: RMSprop(3, lr=0.1), "int 3"),
    (lambda lin: SGD([lin.W, 3], lr=0.1), "a list of int and ndarray"),
    (lambda lin: SGD("W", lr=0.1), "str 'W'"),  # not read as the list ['W']
    (lambda lin: SGD(nnlab.MSELoss(), lr=0.1), "MSELoss MSELoss()"),  # a callable with no __name__
    (lambda lin: SGD(len, lr=0.1), "builtin_function_or_method <built-in function len>"),
])
def test_optimizers_refuse_what_is_not_a_parameter_list(make, given):
    """The handout updates layer.W and layer.b, so SGD([layer.W, layer.b]) is the natural slip: it
    used to be accepted and fail at step() with a raw AttributeError (Adam at construction)."""
    lin = Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabTypeError) as caught:
        make(lin)
    where = str(caught.value).split(":")[0]
    assert str(caught.value) == f"{where}: " + _PARAMS_HINT.format(where) + given


class _HandNet:
    """A network written by hand around nnlab layers: it iterates over its layers, as a handout-style model might."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(type(layer).__name__ for layer in self.layers)})"


class _CallableHandNet(_HandNet):
    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class _HandNetWithParameters(_HandNet):
    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


class _LayerList(list):
    def parameters(self):
        return [p for layer in self for p in layer.parameters()]


@pytest.mark.parametrize("make, given", [
    # iterating it would list its layers; it is named as a whole, with the call that was meant
    (lambda lin: _HandNetWithParameters(lin), "a _HandNetWithParameters module (call its .parameters())"),
    (lambda lin: _CallableHandNet(lin), "_CallableHandNet _CallableHandNet(Linear)"),
    (lambda lin: _LayerList(), "an empty _LayerList"),
])
def test_an_optimizer_names_a_whole_hand_written_network(make, given):
    lin = Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabTypeError) as caught:
        SGD(make(lin), lr=0.1)
    assert str(caught.value) == "SGD: " + _PARAMS_HINT.format("SGD") + given


def test_an_optimizer_refuses_a_parameter_listed_twice():
    """Listed twice, a parameter was stepped twice: each step moved it by 2 * lr * grad."""
    net = nnlab.make_mlp([3, 4, 2], rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabValueError, match=r"SGD: parameter 'W' of Linear is listed twice "
                       r"\(positions 0 and 4\)"):
        SGD(net.parameters() + net.parameters(), lr=0.1)


def test_an_optimizer_still_takes_any_iterable_of_parameters():
    net = nnlab.make_mlp([3, 4, 2], rng=np.random.default_rng(0))
    assert len(SGD(iter(net.parameters()), lr=0.1).params) == 4
    assert len(SGD(tuple(net.parameters()), lr=0.1).params) == 4


@pytest.mark.parametrize("call", [lambda pen, net: pen(net), lambda pen, net: pen([net.layers[0].W]),
                                  lambda pen, net: pen.backward([net.layers[0].W])])
def test_l2_penalty_refuses_a_module_or_plain_arrays(call):
    net = nnlab.make_mlp([3, 4, 2], rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabTypeError, match=r"^L2Penalty(\.backward)?: params must be the model's "
                       r"parameters, e.g. L2Penalty\(lam\)(\.backward)?\(model.parameters\(\)\); got a "):
        call(nnlab.L2Penalty(0.1), net)


def test_fit_refuses_a_scheduler_bound_to_another_optimizer():
    """It trained with o1 while StepLR changed o2's rate: the schedule silently did nothing."""
    net = Linear(2, 1, rng=np.random.default_rng(0))
    o1, o2 = SGD(net.parameters(), lr=0.1), SGD(net.parameters(), lr=0.1)
    with pytest.raises(nnlab.errors.NnlabValueError, match="fit: the scheduler StepLR is bound to another optimizer"):
        nnlab.fit(net, nnlab.MSELoss(), o1, np.ones((4, 2)), np.ones((4, 1)), epochs=2, scheduler=StepLR(o2, 1))
    assert o1.lr == 0.1
    with pytest.raises(nnlab.errors.NnlabTypeError, match="fit: scheduler must be a schedule such as StepLR"):
        nnlab.fit(net, nnlab.MSELoss(), o1, np.ones((4, 2)), np.ones((4, 1)), epochs=2, scheduler=StepLR)


def test_fit_refuses_a_scheduler_without_a_step_method():
    net = Linear(2, 1, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabTypeError) as caught:
        nnlab.fit(net, nnlab.MSELoss(), SGD(net.parameters(), lr=0.1), np.ones((4, 2)), np.ones((4, 1)), epochs=2,
                  scheduler=0.5)
    assert str(caught.value) == ("fit: scheduler must be a schedule such as StepLR(optimizer, step_size=10) "
                                 "(or None), got 0.5")


def test_fit_steps_a_schedule_of_the_callers_own_that_names_no_optimizer():
    """Only a schedule that says which optimizer it drives can be bound to the wrong one; any other is stepped."""
    net = Linear(2, 1, rng=np.random.default_rng(0))
    opt = SGD(net.parameters(), lr=0.8)

    class Halving:
        def step(self):
            opt.lr /= 2

    history = nnlab.fit(net, nnlab.MSELoss(), opt, np.ones((4, 2)), np.ones((4, 1)), epochs=3, scheduler=Halving())
    assert history.epochs_run == 3 and opt.lr == 0.1


def test_clip_grad_norm_names_a_nan_gradient_and_leaves_the_others_alone():
    """One NaN used to turn every gradient into NaN (6 of 6 in each layer), without a word."""
    net = nnlab.make_mlp([3, 4, 2], rng=np.random.default_rng(0))
    params = net.parameters()
    for p in params:
        p.grad[...] = 1.0
    params[2].grad[0, 0] = np.nan
    with pytest.raises(NonFiniteError) as caught:
        clip_grad_norm(params, 1.0)
    assert str(caught.value) == ("clip_grad_norm: the gradient of parameter 2 (Linear.W) holds 1 NaN/inf value(s); "
                                 "clipping would spread NaN into every gradient (training diverged: lower the "
                                 "learning rate, or check the model's backward with nnlab.gradcheck)")
    assert [int(np.isnan(p.grad).sum()) for p in params] == [0, 0, 1, 0]


def test_clip_grad_norm_names_a_signalling_nan_without_a_numpy_warning():
    """A signalling NaN (say, from raw bytes read as float64) sets NumPy's 'invalid' flag when squared."""
    import warnings
    lin = Linear(2, 1, rng=np.random.default_rng(0))
    lin.dW[...] = np.array([0x7FF0000000000001, 0], dtype=np.uint64).view(np.float64)
    lin.dW[0, 1], lin.db[...] = 1.0, 1.0
    assert np.isnan(lin.dW[0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteError, match=r"^clip_grad_norm: the gradient of parameter 0 \(Linear\.W\) "
                           r"holds 1 NaN/inf value\(s\)"):
            clip_grad_norm(lin.parameters(), 1.0)


def test_clip_grad_norm_names_plain_arrays_with_its_own_call():
    """The handout's [layer.W, layer.b] has no gradients attached: refused with clip_grad_norm's own example."""
    lin = Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(nnlab.errors.NnlabTypeError) as caught:
        clip_grad_norm([lin.W, lin.b], 1.0)
    assert str(caught.value) == ("clip_grad_norm: params must be the model's parameters, e.g. "
                                 "clip_grad_norm(model.parameters(), max_norm); got a list of ndarray")


def test_clip_grad_norm_clips_finite_gradients_whose_squares_overflow():
    net = nnlab.make_mlp([3, 4, 2], rng=np.random.default_rng(0))
    params = net.parameters()
    for p in params:
        p.grad[...] = 1e200
    count = sum(p.grad.size for p in params)
    assert clip_grad_norm(params, 1.0) == pytest.approx(1e200 * math.sqrt(count), rel=1e-12)
    joint = math.sqrt(sum(float(np.sum(p.grad**2)) for p in params))
    assert joint == pytest.approx(1.0, rel=1e-5)


def test_fit_reports_a_nan_gradient_met_by_clipping_as_divergence():
    X = np.ones((4, 2))
    net = Linear(2, 1, rng=np.random.default_rng(0))

    def nan_gradient_loss(out, Y):  # a finite loss whose gradient is NaN
        return 0.5, np.full_like(out, np.nan)

    history = nnlab.fit(net, nan_gradient_loss, SGD(net.parameters(), lr=0.1), X, np.ones((4, 1)), epochs=3,
                        clip_grad_norm=1.0)
    assert history.diverged and history.epochs_run == 0
    assert history.message.startswith("fit: training diverged at epoch 1, step 1: clip_grad_norm: the gradient of "
                                      "parameter 0 (Linear.W) holds 2 NaN/inf value(s)")


@pytest.mark.parametrize("given, kind", [("model", "a MLP module"), (5, "int 5")])
def test_clip_grad_norm_names_a_model_or_a_number_passed_as_params(given, kind):
    """clip_grad_norm(model, 1.0) raised a raw TypeError from list(model) before the check could name it."""
    model = nnlab.MLP(3, 4, 2)
    with pytest.raises(nnlab.errors.NnlabTypeError, match=rf"^clip_grad_norm: params must be .*; got {kind}"):
        clip_grad_norm(model if given == "model" else given, 1.0)
