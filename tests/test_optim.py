"""Optimizers: updates equal their formulas; weight decay skips biases."""

import math

import numpy as np
import pytest

import nnlab
from nnlab import SGD, Adam, Linear
from nnlab._checks import NonFiniteError


def _layer_with_grads(rng):
    lin = Linear(3, 2, rng=rng)
    lin.b[:] = rng.normal(size=lin.b.shape)  # non-zero, so that decaying a bias would show
    lin.dW = rng.normal(size=lin.W.shape)
    lin.db = rng.normal(size=lin.b.shape)
    return lin


def test_plain_sgd_is_the_handout_update(rng):
    lin = _layer_with_grads(rng)
    W0, b0 = lin.W.copy(), lin.b.copy()
    SGD(lin.parameters(), lr=0.1).step()
    np.testing.assert_allclose(lin.W, W0 - 0.1 * lin.dW)
    np.testing.assert_allclose(lin.b, b0 - 0.1 * lin.db)


def test_sgd_momentum_two_steps(rng):
    lin = _layer_with_grads(rng)
    W0, g = lin.W.copy(), lin.dW.copy()
    opt = SGD(lin.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    opt.step()
    np.testing.assert_allclose(lin.W, W0 - 0.1 * g - 0.1 * (0.9 * g + g))


def test_weight_decay_on_weights_only(rng):
    lin = _layer_with_grads(rng)
    W0, b0 = lin.W.copy(), lin.b.copy()
    SGD(lin.parameters(), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(lin.W, W0 - 0.1 * (lin.dW + 0.5 * W0))
    np.testing.assert_allclose(lin.b, b0 - 0.1 * lin.db)


def test_adam_first_step_moves_each_weight_by_lr(rng):
    lin = _layer_with_grads(rng)
    W0 = lin.W.copy()
    Adam(lin.parameters(), lr=0.01).step()
    np.testing.assert_allclose(np.abs(lin.W - W0), 0.01, rtol=1e-5)


def test_adam_minimises_a_quadratic():
    lin = Linear(2, 1, rng=np.random.default_rng(0))
    opt = Adam(lin.parameters(), lr=0.05)
    target = np.array([[3.0, -2.0]])
    for _ in range(1000):
        lin.dW = 2 * (lin.W - target)
        lin.db = np.zeros(1)
        opt.step()
    np.testing.assert_allclose(lin.W, target, atol=1e-3)


@pytest.mark.parametrize("kwargs", [{"lr": 0}, {"lr": -1}, {"lr": float("nan")}, {"lr": 0.1, "momentum": 1.0}])
def test_bad_hyper_parameters(kwargs):
    with pytest.raises(ValueError):
        SGD(Linear(2, 1).parameters(), **kwargs)


def test_empty_parameter_list():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)


def test_optimizer_follows_gradients_set_after_construction(rng):
    """The optimizer reads each gradient live from its module, not a copy taken at construction."""
    lin = Linear(3, 1, rng=rng)
    opt = SGD(lin.parameters(), lr=1.0)
    W0 = lin.W.copy()
    lin.forward(np.ones((1, 3)))
    lin.backward(np.ones((1, 1)))
    opt.step()
    np.testing.assert_allclose(lin.W, W0 - 1.0)
    assert nnlab.SGD is SGD


def test_the_defaults_are_torchs():
    params = Linear(2, 1).parameters()
    assert repr(Adam(params)) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)"
    assert repr(SGD(params)) == "SGD(lr=0.01, momentum=0.0, weight_decay=0.0)"


@pytest.mark.parametrize("betas", [(0.0, 0.0), (0.999999, 0.999999)])
def test_betas_anywhere_in_zero_to_one_are_accepted(betas):
    assert Adam(Linear(2, 1).parameters(), betas=betas).betas == betas


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: Adam(p, betas=(1.0, 0.9)), "Adam: betas must lie in [0, 1), got (1.0, 0.9)"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), "Adam: betas must lie in [0, 1), got (0.9, 1.0)"),
    (lambda p: Adam(p, betas=(-0.1, 0.9)), "Adam: betas must lie in [0, 1), got (-0.1, 0.9)"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), "Adam: betas must lie in [0, 1), got (0.9, -0.1)"),
    (lambda p: Adam(p, betas=(1.5, 0.9)), "Adam: betas must lie in [0, 1), got (1.5, 0.9)"),
    (lambda p: Adam(p, betas=(0.9, 1.5)), "Adam: betas must lie in [0, 1), got (0.9, 1.5)"),
    (lambda p: Adam(p, eps=0), "Adam: eps must be a finite number > 0, got 0.0"),
    (lambda p: Adam(p, weight_decay=-1), "Adam: weight_decay must be a finite number >= 0, got -1.0"),
    (lambda p: Adam(p, lr=0), "Adam: lr must be a finite number > 0, got 0.0"),
    (lambda p: SGD(p, lr=-1), "SGD: lr must be a finite number > 0, got -1.0"),
    (lambda p: SGD(p, lr=0.1, momentum=1.0), "SGD: momentum must be below 1, got 1.0"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.5), "SGD: momentum must be a finite number >= 0, got -0.5"),
    (lambda p: SGD(p, lr=0.1, weight_decay=float("inf")), "SGD: weight_decay must be a finite number >= 0, got inf"),
])
def test_optimizer_refusals_name_the_optimizer_and_the_setting(make, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        make(Linear(2, 1).parameters())
    assert str(caught.value) == message


def _misaligned(values, order):
    """A writeable float64 copy of ``values`` starting one byte into its buffer: BLAS cannot take it as it is."""
    raw = np.zeros(values.size * values.itemsize + 1, dtype=np.uint8)
    out = np.ndarray(values.shape, dtype=values.dtype, buffer=raw, offset=1, order=order)
    out[...] = values
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("order", ["C", "F"])
def test_sgd_updates_misaligned_weights_of_either_layout(order, rng):
    lin = Linear(3, 2, rng=rng)
    W0 = rng.normal(size=(2, 3))
    lin.W = _misaligned(W0, order)
    lin.dW = np.asarray(rng.normal(size=(2, 3)), order=order)
    assert lin.dW.strides == lin.W.strides
    expected = W0 - 0.1 * lin.dW
    SGD(lin.parameters(), lr=0.1).step()
    np.testing.assert_allclose(lin.W, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1), lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), lambda ps: Adam(ps, lr=0.1),
    lambda ps: nnlab.RMSprop(ps, lr=0.1), lambda ps: nnlab.RMSprop(ps, lr=0.1, momentum=0.5),
])
def test_a_strided_weight_and_a_resized_one_take_the_buffered_path(make, rng):
    """A view with gaps (no BLAS fast path) is updated like its contiguous twin, also after the user resizes it."""
    twin, strided = Linear(3, 2, rng=rng), Linear(3, 2, rng=rng)
    strided.W = np.zeros((2, 6))[:, ::2]
    strided.W[...] = twin.W
    opt_twin, opt_strided = make(twin.parameters()), make(strided.parameters())
    for shape in [(2, 3), (2, 3), (4, 3)]:
        if shape != twin.W.shape:
            twin.W, twin.dW = rng.normal(size=shape), np.zeros(shape)
            strided.W = np.zeros((shape[0], 2 * shape[1]))[:, ::2]
            strided.W[...] = twin.W
            opt_twin, opt_strided = make(twin.parameters()), make(strided.parameters())
        grad = rng.normal(size=shape)
        twin.dW, strided.dW = grad.copy(), grad.copy()
        opt_twin.step()
        opt_strided.step()
        np.testing.assert_allclose(strided.W, twin.W, rtol=1e-14, atol=1e-15)


def test_sgd_resized_weight_gets_a_new_buffer_on_the_same_optimizer(rng):
    lin = Linear(3, 2, rng=rng)
    opt = SGD(lin.parameters(), lr=0.5)
    for shape in [(2, 3), (4, 3)]:
        lin.W = np.zeros((shape[0], 2 * shape[1]))[:, ::2]  # strided: the buffered path
        lin.dW = np.ones(shape)
        opt.step()
        np.testing.assert_array_equal(lin.W, np.full(shape, -0.5))


def test_an_empty_parameter_list_is_refused_by_name():
    for make, name in [(SGD, "SGD"), (Adam, "Adam")]:
        with pytest.raises(nnlab.NnlabValueError) as caught:
            make([], lr=0.1)
        assert str(caught.value) == f"{name}: got an empty parameter list"


def _params():
    return Linear(1, 1, rng=np.random.default_rng(0)).parameters()


@pytest.mark.parametrize(("make", "message"), [
    (lambda: SGD(_params(), lr=0), "SGD: lr must be a finite number > 0, got 0.0"),
    (lambda: SGD(_params(), lr=float("nan")), "SGD: lr must be a finite number > 0, got nan"),
    (lambda: SGD(_params(), lr="x"), "SGD: lr must be a number, got 'x'"),
    (lambda: SGD(_params(), lr=0.1, momentum=1.0), "SGD: momentum must be below 1, got 1.0"),
    (lambda: SGD(_params(), lr=0.1, momentum=-0.1), "SGD: momentum must be a finite number >= 0, got -0.1"),
    (lambda: SGD(_params(), lr=0.1, weight_decay=-1), "SGD: weight_decay must be a finite number >= 0, got -1.0"),
    (lambda: SGD(_params(), lr=0.1, nesterov=True), "SGD: nesterov=True needs a momentum above 0, got momentum=0.0"),
    (lambda: Adam(_params(), betas=(0.9,)), "Adam: betas must be a pair of numbers (b1, b2), got (0.9,)"),
    (lambda: Adam(_params(), betas=(0.9, 1.0)), "Adam: betas must lie in [0, 1), got (0.9, 1.0)"),
    (lambda: Adam(_params(), betas=(-0.1, 0.9)), "Adam: betas must lie in [0, 1), got (-0.1, 0.9)"),
    (lambda: Adam(_params(), eps=0), "Adam: eps must be a finite number > 0, got 0.0"),
    (lambda: Adam(_params(), weight_decay=-1), "Adam: weight_decay must be a finite number >= 0, got -1.0"),
    (lambda: nnlab.AdamW(_params(), weight_decay=-1), "AdamW: weight_decay must be a finite number >= 0, got -1.0"),
    (lambda: nnlab.RMSprop(_params(), alpha=1.0), "RMSprop: alpha must be below 1, got 1.0"),
    (lambda: nnlab.RMSprop(_params(), eps=-1), "RMSprop: eps must be a finite number > 0, got -1.0"),
    (lambda: nnlab.RMSprop(_params(), momentum=1), "RMSprop: momentum must be below 1, got 1.0"),
    (lambda: nnlab.RMSprop(_params(), weight_decay=-1), "RMSprop: weight_decay must be a finite number >= 0, got -1.0"),
    (lambda: nnlab.clip_grad_norm(_params(), 0), "clip_grad_norm: max_norm must be a finite number > 0, got 0.0"),
    (lambda: nnlab.clip_grad_norm(_params(), float("inf")),
     "clip_grad_norm: max_norm must be a finite number > 0, got inf"),
])
def test_optimizer_refusals_word_for_word(make, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        make()
    assert str(caught.value) == message


def test_optimizer_ranges_include_zero_and_the_reprs_show_every_setting():
    assert SGD(_params(), lr=0.1, momentum=0.0).momentum == 0.0
    assert nnlab.RMSprop(_params(), alpha=0.0).alpha == 0.0
    assert Adam(_params(), betas=(0.0, 0.0)).betas == (0.0, 0.0)
    assert [repr(o) for o in (SGD(_params(), lr=0.1), SGD(_params(), lr=0.1, momentum=0.5, nesterov=True),
                              Adam(_params()), nnlab.AdamW(_params()), nnlab.RMSprop(_params()))] == [
        "SGD(lr=0.1, momentum=0.0, weight_decay=0.0)",
        "SGD(lr=0.1, momentum=0.5, weight_decay=0.0, nesterov=True)",
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)",
        "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)",
        "RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0)",
    ]


def test_clip_grad_norm_of_huge_or_infinite_gradients_raises_no_numpy_warning():
    import warnings
    lin = Linear(2, 1, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lin.dW[...], lin.db[...] = 1e200, 0.0
        # the squares overflow; the norm is taken again from scaled gradients (PyTorch returns inf and zeroes them)
        assert nnlab.clip_grad_norm(lin.parameters(), 1.0) == pytest.approx(math.sqrt(2) * 1e200, rel=1e-15)
        np.testing.assert_allclose(lin.dW, [[math.sqrt(0.5), math.sqrt(0.5)]], rtol=1e-12)
        lin.dW[...] = [[np.inf, 1.0]]
        with pytest.raises(NonFiniteError, match=r"parameter 0 \(Linear\.W\) holds 1 NaN/inf"):
            nnlab.clip_grad_norm(lin.parameters(), 1.0)  # PyTorch would spread NaN into every gradient
        np.testing.assert_array_equal(lin.dW, [[np.inf, 1.0]])


def test_clip_grad_norm_never_scales_gradients_up():
    lin = Linear(2, 1, rng=np.random.default_rng(0))
    lin.dW[...], lin.db[...] = [[0.6, 0.8]], 0.0
    assert nnlab.clip_grad_norm(lin.parameters(), 1.5) == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_array_equal(lin.dW, [[0.6, 0.8]])


def test_adamw_keeps_its_eps_and_rmsprop_without_momentum_keeps_no_momentum_buffers():
    assert nnlab.AdamW(_params(), eps=1e-3).eps == 1e-3
    params = _params()
    assert len(nnlab.RMSprop(params).state_arrays()) == len(params)
    assert len(nnlab.RMSprop(params, momentum=0.5).state_arrays()) == 2 * len(params)


def test_adam_names_a_beta_that_is_not_a_number():
    with pytest.raises(nnlab.NnlabTypeError) as caught:
        Adam(_params(), betas=("x", 0.9))
    assert str(caught.value) == "Adam: betas must be a number, got 'x'"


def _sgd_over(W, dW):
    """A plain SGD over one parameter ``W`` with gradient ``dW``, held by a bare owner."""
    owner = type("Owner", (), {})()
    owner.W, owner.dW = W, dW
    return SGD([nnlab.layers.Param(owner, "W", "dW", decay=True)], lr=0.1)


def _peak_bytes_of(step) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("order", "dtype"), [("C", np.float64), ("F", np.float64), ("C", np.float32)])
def test_a_contiguous_parameter_is_stepped_in_place_without_a_buffer(order, dtype, rng):
    """W and dW of one layout (C or F, as Linear.W) and dtype: W -= lr dW in place, no W-sized array made."""
    W = np.asarray(rng.normal(size=(200, 250)), dtype=dtype, order=order)
    dW = np.asarray(rng.normal(size=W.shape), dtype=dtype, order=order)
    expected = W - np.asarray(0.1, dtype) * dW
    opt = _sgd_over(W, dW)
    assert _peak_bytes_of(opt.step) < W.nbytes // 4
    np.testing.assert_allclose(W, expected, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-14)


def test_a_strided_parameter_reuses_one_buffer_across_steps(rng):
    """A W of another layout than dW takes the buffered path: the buffer is made once, then reused."""
    W = rng.normal(size=(200, 500))[:, ::2]
    dW = rng.normal(size=W.shape)
    expected = W - 2 * 0.1 * dW
    opt = _sgd_over(W, dW)
    opt.step()
    assert _peak_bytes_of(opt.step) < W.nbytes // 4
    np.testing.assert_allclose(W, expected, rtol=0, atol=1e-14)
