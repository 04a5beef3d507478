"""Sigmoid, LeakyReLU and GELU: formulas, gradients (float64 central differences), both faces, edge cases."""

import math

import numpy as np
import pytest

import nnlab
from nnlab import GELU, LeakyReLU, Sigmoid
from nnlab.functional import (
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    sigmoid,
    sigmoid_backward,
)

MODULES = [Sigmoid(), LeakyReLU(), LeakyReLU(negative_slope=-0.3), LeakyReLU(0.2), GELU(), GELU(approximate="tanh")]
PAIRS = {
    "sigmoid": (sigmoid, sigmoid_backward),
    "leaky_relu": (leaky_relu, leaky_relu_backward),
    "leaky_relu(0.2)": (lambda x: leaky_relu(x, 0.2), lambda x, d: leaky_relu_backward(x, d, 0.2)),
    "gelu": (gelu, gelu_backward),
    "gelu(tanh)": (lambda x: gelu(x, "tanh"), lambda x, d: gelu_backward(x, d, "tanh")),
}


def _away_from_kinks(rng, shape):
    """Normal inputs at least 0.05 from 0, where leaky ReLU's derivative jumps (central differences straddle it)."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < 0.05, 0.05 * np.sign(x) + 0.05 * (x == 0), x)


def test_formulas_against_their_definitions(rng):
    x = rng.normal(scale=3, size=(5, 7))
    np.testing.assert_allclose(sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_array_equal(leaky_relu(x), np.where(x > 0, x, 0.01 * x))
    np.testing.assert_array_equal(leaky_relu(x, -0.5), np.where(x > 0, x, -0.5 * x))
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x.ravel()]).reshape(x.shape)
    np.testing.assert_allclose(gelu(x), x * phi, rtol=1e-14, atol=1e-300)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    # (atol: this textbook form cancels digits in the negative tail; the next test measures who is right there)
    np.testing.assert_allclose(gelu(x, "tanh"), tanh_form, rtol=1e-14, atol=1e-15)
    # the two GELU forms differ (by a little): the choice is real
    assert 1e-5 < np.abs(gelu(x) - gelu(x, "tanh")).max() < 1e-2


@pytest.mark.parametrize("name", PAIRS)
def test_functional_backward_passes_gradcheck(name, rng):
    result = nnlab.gradcheck(PAIRS[name], _away_from_kinks(rng, (4, 6)))
    assert result.passed, str(result)


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_module_passes_gradcheck(module, rng):
    assert nnlab.gradcheck(module, _away_from_kinks(rng, (5, 4))).passed


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_inside_a_network_passes_gradcheck(module, rng):
    net = nnlab.Sequential(nnlab.Linear(3, 6, rng=rng), module, nnlab.Linear(6, 2, rng=rng))
    x = rng.normal(size=(7, 3))
    net[0].forward(x)
    if isinstance(module, LeakyReLU):  # keep every pre-activation away from the kink at 0
        net[0].b[:] += 0.1 * np.sign(net[0].b + 1e-3)
    assert nnlab.gradcheck(net, x).passed


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_face_and_core_agree_in_and_out_of_place(module, rng):
    x = rng.normal(size=(6, 5))
    x[0, :2] = 0.0
    dout = rng.normal(size=(6, 5))
    kept_x, kept_dout = x.copy(), dout.copy()
    out_public = module.forward(x)
    dx_public = module.backward(dout)
    np.testing.assert_array_equal(x, kept_x)  # the checked face never writes to the caller's arrays
    np.testing.assert_array_equal(dout, kept_dout)
    assert out_public is not x and dx_public is not dout
    out_core = module._forward(x.copy(), inplace=True)
    dx_core = module._backward(dout.copy(), inplace=True)
    np.testing.assert_array_equal(out_core, out_public)
    np.testing.assert_array_equal(dx_core, dx_public)
    # out of place, the core neither writes nor returns its input
    x2 = x.copy()
    out_core = module._forward(x2, inplace=False)
    assert out_core is not x2
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(out_core, out_public)


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_keeps_output_is_honest(module, rng):
    """A module that says it does not read its output must give the same dx after that output is overwritten."""
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    out = module._forward(x.copy(), inplace=False)
    expected = module._backward(dout.copy())
    module._forward(x.copy(), inplace=False)
    out = module._forward(x.copy(), inplace=False)
    if not module.keeps_output:
        out[...] = np.nan
    np.testing.assert_array_equal(module._backward(dout.copy()), expected)


def test_sigmoid_never_overflows_and_keeps_tiny_values():
    x = np.array([-1e4, -745.0, -40.0, 0.0, 40.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (underflow to 0 is the right answer)
        s = sigmoid(x)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert s[2] == pytest.approx(math.exp(-40) / (1 + math.exp(-40)), rel=1e-14)


def test_gelu_saturates_without_nan():
    x = np.array([-1e200, -60.0, 60.0, 1e200])
    for form in ("none", "tanh"):
        out, dx = gelu(x, form), gelu_backward(x, np.ones(4), form)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx)), form
        np.testing.assert_array_equal(dx, [0, 0, 1, 1])


def test_leaky_relu_derivative_at_zero_is_the_slope():
    """PyTorch's convention: at exactly 0 the gradient is the negative slope (ReLU's is 0)."""
    np.testing.assert_array_equal(leaky_relu_backward(np.zeros(3), np.ones(3), 0.2), [0.2, 0.2, 0.2])
    layer = LeakyReLU(0.2)
    layer.forward(np.zeros((1, 3)))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.2, 0.2, 0.2]])


@pytest.mark.parametrize("f", [sigmoid, leaky_relu, gelu, lambda x: gelu(x, "tanh")])
def test_float32_stays_float32(f):
    assert f(np.ones((2, 3), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_float32_module_stays_float32(module):
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    assert module.forward(x).dtype == np.float32
    assert module.backward(np.ones((3, 4), np.float32)).dtype == np.float32


@pytest.mark.parametrize("module", [Sigmoid(), LeakyReLU(), GELU()], ids=repr)
def test_backward_before_forward_and_wrong_shape(module):
    with pytest.raises(RuntimeError, match="before forward"):
        type(module)().backward(np.ones((2, 2)))
    module.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        module.backward(np.ones((3, 2)))


@pytest.mark.parametrize("make", [lambda: nnlab.Sigmoid(), lambda: nnlab.GELU()])
def test_nan_input_is_named(make):
    with pytest.raises(ValueError, match="non-finite"):
        make().forward(np.array([[np.nan, 1.0]]))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="approximate must be 'none' \\(exact\\) or 'tanh', got 'fast'"):
        GELU(approximate="fast")
    with pytest.raises(ValueError, match="negative_slope must be a finite number, got nan"):
        LeakyReLU(float("nan"))
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU("0.1")
    with pytest.raises(ValueError, match="approximate"):
        gelu(np.ones(2), approximate="exact")


@pytest.mark.parametrize("nonlin", ["sigmoid", "leaky_relu", "gelu"])
def test_usable_by_name_in_make_mlp_and_mlp(nonlin, rng):
    net = nnlab.make_mlp([3, 5, 2], nonlin=nonlin, rng=rng)
    assert type(net[1]) is nnlab.models.NONLINEARITIES[nonlin]
    assert net[0].init == ("xavier" if nonlin == "sigmoid" else "he")
    model = nnlab.MLP(3, 5, 2, nonlin=nonlin, rng=rng)
    assert nnlab.gradcheck(model, _away_from_kinks(rng, (4, 3))).passed


def test_gelu_keeps_its_negative_tail_to_the_last_digits():
    """Against 1000-digit arithmetic: 1 + erf and 1 + tanh would cancel every digit here; nnlab's forms do not."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 1000  # 1 + tanh(u) at x = -30 is about 1e-857: the reference itself must not cancel
    k, c = mpmath.sqrt(2 / mpmath.pi), mpmath.mpf("0.044715")
    xs = np.array([-30.0, -12.0, -8.0, -5.0, -0.75, 0.3, 2.0, 6.0])

    def exact(x):
        x = mpmath.mpf(float(x))
        return x * mpmath.ncdf(x), mpmath.ncdf(x) + x * mpmath.npdf(x)

    def tanh_form(x):
        x = mpmath.mpf(float(x))
        t = mpmath.tanh(k * (x + c * x**3))
        return x * (1 + t) / 2, (1 + t) / 2 + x * (1 - t * t) * k * (1 + 3 * c * x * x) / 2

    for form, truth in (("none", exact), ("tanh", tanh_form)):
        want = np.array([[float(v) for v in truth(x)] for x in xs])
        # (2e-13: SciPy's erfc, and the exponential, carry about that much relative error 20 standard deviations out)
        np.testing.assert_allclose(gelu(xs, form), want[:, 0], rtol=2e-13, atol=0)
        np.testing.assert_allclose(gelu_backward(xs, np.ones_like(xs), form), want[:, 1], rtol=2e-13, atol=0)


@pytest.mark.parametrize("backward", [nnlab.relu_backward, nnlab.tanh_backward, nnlab.sigmoid_backward,
                                      nnlab.leaky_relu_backward, nnlab.gelu_backward])
def test_mixed_precision_backward_computes_in_the_wider_type(backward):
    """A float64 dout beyond float32's range with a float32 x: float64 out, finite (the fuzzer's case gave inf)."""
    x, dout = np.zeros((1, 1), np.float32), np.full((1, 1), 3.40282357e38)
    out = backward(x, dout)
    assert out.dtype == np.float64 and np.all(np.isfinite(out))
    assert backward(dout, x).dtype == np.float64


def _gelu_ran():
    module = GELU()
    module.forward(np.ones((1, 2)))
    return module


@pytest.mark.parametrize(("call", "message"), [
    (lambda: GELU("bad"), "GELU: approximate must be 'none' (exact) or 'tanh', got 'bad'"),
    (lambda: GELU.state_spec({"approximate": "bad"}), "GELU: approximate must be 'none' (exact) or 'tanh', got 'bad'"),
    (lambda: LeakyReLU("x"), "LeakyReLU: negative_slope must be a finite number, got 'x'"),
    (lambda: LeakyReLU.state_spec({"negative_slope": "x"}),
     "LeakyReLU: negative_slope must be a finite number, got 'x'"),
    (lambda: _gelu_ran().backward(np.array([["a", "b"]])),
     "GELU(approximate='none'): dout must hold real numbers, got dtype <U1"),
    (lambda: _gelu_ran().backward(np.array([[np.nan, 1.0]])),
     "GELU(approximate='none'): dout holds 1 non-finite value(s) (NaN or inf)"),
])
def test_activation_module_refusals_word_for_word(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value) == message


def test_leaky_relu_default_slope_is_one_hundredth():
    np.testing.assert_array_equal(LeakyReLU().forward(np.array([-100.0, 3.0])), [-1.0, 3.0])
