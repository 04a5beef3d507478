"""The gradient checker must catch wrong gradients, not only pass right ones."""

import warnings

import numpy as np
import pytest

import nnlab
from nnlab import Linear, Module
from nnlab.gradcheck import GradcheckResult, numerical_gradient, rel_error


class BuggyLinear(Linear):
    """A Linear whose dW is 1% too large: a subtle bug the checker must still catch."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = self.dW * 1.01
        return dx


class BuggyReLU(Module):
    """ReLU whose backward masks with the output sign on the wrong side."""

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * (self.x < 0)


def test_gradcheck_flags_a_wrong_weight_gradient(rng):
    result = nnlab.gradcheck(BuggyLinear(3, 2, rng=rng), rng.normal(size=(4, 3)))
    assert not result.passed
    assert result.errors["BuggyLinear.W"] > 1e-3
    assert "FAIL" in str(result)


def test_gradcheck_flags_a_wrong_input_gradient(rng):
    result = nnlab.gradcheck(nnlab.Sequential(Linear(3, 2, rng=rng), BuggyReLU()), rng.normal(size=(4, 3)))
    assert not result.passed


def test_gradcheck_flags_a_wrong_loss_gradient(rng):
    def bad_mse(pred, target):
        return float(np.mean((pred - target) ** 2)), (pred - target) / pred.size

    assert not nnlab.gradcheck(bad_mse, rng.normal(size=(3, 2)), rng.normal(size=(3, 2))).passed


def test_gradcheck_refuses_float32(rng):
    with pytest.raises(TypeError, match="float64"):
        nnlab.gradcheck(Linear(2, 2, dtype=np.float32), rng.normal(size=(3, 2)))


def test_gradcheck_reports_every_parameter(rng):
    result = nnlab.gradcheck(nnlab.MLP(2, 3, 1, rng=rng), rng.normal(size=(3, 2)))
    assert set(result.errors) == {"input", "l1.W", "l1.b", "l2.W", "l2.b"}


def test_rel_error_is_zero_for_equal_and_one_for_opposite():
    a = np.array([1.0, -2.0])
    assert nnlab.rel_error(a, a) == 0
    assert nnlab.rel_error(a, -a) == pytest.approx(1.0)


def test_numerical_gradient_restores_input(rng):
    x = rng.normal(size=(3, 2))
    x0 = x.copy()
    g = nnlab.numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_allclose(g, 3 * x0**2, rtol=1e-7)


def _cube(x):
    return x**3


def _cube_backward(x, dout):
    return 3 * x**2 * dout


def _cube_loss(pred, target):
    return float(np.sum((pred - target) ** 3)), 3 * (pred - target) ** 2


def test_the_step_size_reaches_every_kind_of_check(rng):
    """Central differences of a cubic are off by exactly h**2: a coarse h must fail where the default passes."""
    x = rng.normal(size=(3, 2))
    checks = [(_cube, _cube_backward), _cube_loss, nnlab.Tanh()]
    targets = [None, np.zeros((3, 2)), None]
    for obj, target in zip(checks, targets):
        assert nnlab.gradcheck(obj, x, target).passed
        assert not nnlab.gradcheck(obj, x, target, h=0.3).passed


def test_the_tolerance_is_the_one_asked_for(rng):
    x = rng.normal(size=(3, 2))
    for obj, target in [((_cube, _cube_backward), None), (_cube_loss, np.zeros((3, 2))), (nnlab.Tanh(), None)]:
        result = nnlab.gradcheck(obj, x, target, h=0.3, tol=0.9)
        assert result.tol == 0.9 and result.passed


def test_a_given_dout_is_the_one_used(rng):
    """A backward wrong only in the first entry passes when dout is zero there, and fails with a random dout."""
    x = rng.normal(size=(2, 2))

    def wrong_first(x, dout):
        grad = 3 * x**2 * dout
        grad.flat[0] += dout.flat[0]  # wrong by the upstream gradient of that entry
        return grad

    mask = np.ones((2, 2))
    mask.flat[0] = 0.0

    class WrongFirst(Module):
        def forward(self, x):
            self.x = x
            return x**3

        def backward(self, dout):
            return wrong_first(self.x, dout)

    for obj in [(_cube, wrong_first), WrongFirst()]:
        assert not nnlab.gradcheck(obj, x).passed
        assert nnlab.gradcheck(obj, x, dout=mask).passed


def test_the_default_seed_is_zero_and_repeatable(rng):
    x = rng.normal(size=(3, 2))
    net = nnlab.Sequential(Linear(2, 2, rng=rng), nnlab.Tanh())
    assert nnlab.gradcheck(net, x).errors == nnlab.gradcheck(net, x, seed=0).errors
    pair = (_cube, _cube_backward)
    assert nnlab.gradcheck(pair, x).errors == nnlab.gradcheck(pair, x, seed=0).errors
    assert nnlab.gradcheck(net, x, seed=0).errors != nnlab.gradcheck(net, x, seed=1).errors


def test_unnamed_layers_of_one_type_are_numbered(rng):
    net = nnlab.Sequential(Linear(2, 2, rng=rng), Linear(2, 1, rng=rng))
    assert list(nnlab.gradcheck(net, rng.normal(size=(3, 2))).errors) == [
        "input", "Linear.W", "Linear.b", "Linear.W#2", "Linear.b#2"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: nnlab.gradcheck(_cube_loss, np.ones((2, 2))),
     "gradcheck: checking the loss _cube_loss needs its target (target=...)"),
    (lambda: nnlab.gradcheck(42, np.ones((2, 2))),
     "gradcheck: cannot check int; pass a Module, a layer with forward/backward, a loss or a (f, f_backward) pair"),
    (lambda: nnlab.rel_error(np.ones(2), np.ones(3)), "rel_error: shapes differ, (2,) vs (3,)"),
    (lambda: nnlab.gradcheck(nnlab.Tanh(), np.array([[1.0, np.nan]])), "gradcheck: x holds 1 non-finite"),
])
def test_gradcheck_refusals_say_what_is_wrong(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value).startswith(message)


def test_rel_error_of_two_zeros_is_zero_and_of_tiny_values_is_relative():
    assert nnlab.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert nnlab.rel_error(np.array([1e-9]), np.array([2e-9])) == pytest.approx(1 / 3, rel=1e-3)


class HandoutLinear:
    """A layer as the handout has students write it: no nnlab base class, just W/b/dW/db and forward/backward."""

    def __init__(self, in_dim, out_dim, rng, bug=1.0):
        self.W, self.b = rng.normal(size=(out_dim, in_dim)), np.zeros(out_dim)
        self.dW = self.db = None
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, dout):
        self.dW, self.db = self.bug * dout.T @ self.x, dout.sum(0)
        return dout @ self.W


def test_gradcheck_checks_a_handout_style_layer_and_catches_its_bug(rng):
    x = rng.normal(size=(4, 3))
    good = nnlab.gradcheck(HandoutLinear(3, 2, rng), x)
    assert good.passed and set(good.errors) == {"input", "HandoutLinear.W", "HandoutLinear.b"}
    bad = nnlab.gradcheck(HandoutLinear(3, 2, rng, bug=1.01), x)
    assert not bad.passed and bad.errors["HandoutLinear.W"] > 1e-3 > bad.errors["HandoutLinear.b"]


@pytest.mark.parametrize("f", [nnlab.relu, nnlab.softmax, lambda z: z**2])
def test_a_single_function_is_told_to_come_with_its_backward(f, rng):
    with pytest.raises(nnlab.NnlabValueError, match=r"function of one array; pass it with its backward as a pair"):
        nnlab.gradcheck(f, rng.normal(size=(2, 3)))


def test_a_loss_without_target_or_without_gradient_is_named(rng):
    x = rng.normal(size=(2, 3))
    with pytest.raises(nnlab.NnlabValueError, match="the loss MSELoss needs its target"):
        nnlab.gradcheck(nnlab.MSELoss(), x)
    with pytest.raises(nnlab.NnlabTypeError, match="cross_entropy returns a float, not \\(value, grad\\)"):
        nnlab.gradcheck(nnlab.cross_entropy, nnlab.softmax(x), target=np.eye(3)[[0, 2]])


@pytest.mark.parametrize("h", [0, -1e-6, float("nan"), "1e-6"])
def test_a_step_that_is_not_positive_is_refused(h, rng):
    with pytest.raises(nnlab.NnlabValueError, match="h must be a positive finite step"):
        nnlab.gradcheck(Linear(3, 2, rng=rng), rng.normal(size=(2, 3)), h=h)
    with pytest.raises(nnlab.NnlabValueError, match="h must be a positive finite step"):
        nnlab.numerical_gradient(lambda: 0.0, np.ones(2), h=h)


def test_an_empty_input_is_refused_not_passed(rng):
    with pytest.raises(nnlab.NnlabValueError, match=r"x is empty \(shape \(0, 3\)\)"):
        nnlab.gradcheck(Linear(3, 2, rng=rng), np.zeros((0, 3)))


def test_numerical_gradient_names_a_list_input():
    with pytest.raises(nnlab.NnlabTypeError, match="x must be the float64 NumPy array that f reads.*got list"):
        nnlab.numerical_gradient(lambda: 0.0, [1.0, 2.0])


class _Scale:
    """A duck-typed network (not a Module): ``out = s * x``; with ``careless`` its forward writes over ``x``."""

    def __init__(self, careless=False):
        self.s, self.ds, self.careless = np.array([3.0]), np.zeros(1), careless

    def parameters(self):
        return [nnlab.layers.Param(self, "s", "ds", decay=False)]

    def forward(self, x):
        self.x = x.copy()
        return np.multiply(x, self.s, out=x if self.careless else None)

    def backward(self, dout):
        self.ds[...] = np.sum(self.x * dout)
        return dout * self.s


class _HasNet:
    def __init__(self, careless=False):
        self.net = _Scale(careless)


def test_gradcheck_checks_a_duck_typed_net_whose_parameters_belong_to_no_module(rng):
    result = nnlab.gradcheck(_HasNet(), rng.normal(size=(3, 2)))
    assert list(result.errors) == ["input", "_Scale.s"] and result.passed, str(result)


def test_gradcheck_never_writes_the_callers_x_even_when_the_forward_does(rng):
    x = rng.normal(size=(3, 2))
    before = x.copy()
    nnlab.gradcheck(_HasNet(careless=True), x)  # the estimate is wrong (x changes under it); x must survive
    np.testing.assert_array_equal(x, before)


def test_gradcheck_of_a_pair_never_writes_the_callers_x(rng):
    def relu_in_place(x):
        return np.maximum(x, 0, out=x)

    x = rng.normal(size=(4, 3))
    before = x.copy()
    nnlab.gradcheck((relu_in_place, nnlab.relu_backward), x)
    np.testing.assert_array_equal(x, before)


def test_gradcheck_of_a_loss_never_writes_the_callers_prediction(rng):
    def squared_error_in_place(pred, target):
        np.subtract(pred, target, out=pred)
        return float(np.sum(pred * pred)), 2 * pred

    pred, target = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    before = pred.copy()
    nnlab.gradcheck(squared_error_in_place, pred, target)
    np.testing.assert_array_equal(pred, before)


def test_gradcheck_copies_a_loss_gradient_returned_in_a_reused_buffer(rng):
    """A loss may hand back one gradient buffer every call; the finite-difference calls must not change it."""
    buffer = np.empty((3, 2))

    def sum_of_squares(pred, target):
        np.multiply(pred, 2, out=buffer)
        return float(np.sum(pred * pred)), buffer

    # central differences are exact for a quadratic, so a coarse step still passes, and a stale buffer cannot
    result = nnlab.gradcheck(sum_of_squares, rng.normal(size=(3, 2)), np.zeros((3, 2)), h=1e-2)
    assert list(result.errors) == ["pred"] and result.passed


@pytest.mark.parametrize("kind", ["module", "pair", "loss"])
def test_gradcheck_takes_float32_inputs_and_checks_in_float64(kind, rng):
    x = rng.normal(size=(4, 3)).astype(np.float32)
    if kind == "module":
        result = nnlab.gradcheck(Linear(3, 2, rng=rng), x)
    elif kind == "pair":
        result = nnlab.gradcheck((nnlab.tanh, nnlab.tanh_backward), x)
        assert list(result.errors) == ["input"]
    else:
        result = nnlab.gradcheck(nnlab.MSELoss(), x, np.zeros((4, 3)))
    assert result.passed, str(result)


def test_the_step_h_is_used_for_the_parameters_too(rng):
    """A huge step makes the estimate of a curved function wrong: proof that h reached every estimate."""
    net = nnlab.Sequential(Linear(2, 2, rng=rng), nnlab.Tanh())
    coarse = nnlab.gradcheck(net, rng.normal(size=(3, 2)), h=0.5)
    assert coarse.errors["Linear.W"] > 1e-3 and coarse.errors["Linear.b"] > 1e-3


class _ListWeights:
    """A handout-style layer whose weight is still a Python list."""

    def __init__(self):
        self.W, self.dW = [1.0, 2.0], [0.0, 0.0]

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class _ForwardOnly:
    """Has a forward but no backward: nothing to check a gradient against."""

    def forward(self, x):
        return x


@pytest.mark.parametrize(("call", "message"), [
    (lambda: nnlab.gradcheck((nnlab.relu, nnlab.relu_backward), np.array(["a"])),
     "gradcheck: x must hold real numbers, got dtype <U1"),
    (lambda: nnlab.gradcheck(nnlab.MSELoss(), np.array(["a"]), np.ones(1)),
     "gradcheck: pred must hold real numbers, got dtype <U1"),
    (lambda: nnlab.gradcheck(Linear(2, 1).astype(np.float32), np.ones((1, 2))),
     "gradcheck: parameters must be float64 arrays, W is float32; convert them first "
     "(module.astype(np.float64) for an nnlab module)"),
    (lambda: numerical_gradient(lambda: 0.0, np.ones(2, dtype=np.float32)),
     "numerical_gradient: x must be float64 (got float32); float32 rounding swamps the estimate"),
    (lambda: numerical_gradient(lambda: 0.0, np.ones(2), h=0),
     "numerical_gradient: h must be a positive finite step such as 1e-6, got 0"),
    (lambda: nnlab.gradcheck(nnlab.Tanh(), np.ones((1, 2)), h=-1.0),
     "gradcheck: h must be a positive finite step such as 1e-6, got -1.0"),
    (lambda: nnlab.gradcheck(nnlab.relu, np.ones((1, 2))),
     "gradcheck: relu is a function of one array; pass it with its backward as a pair (f, f_backward), "
     "e.g. (nnlab.relu, nnlab.relu_backward)"),
    # a builtin has no signature to read: it is taken for a loss, which needs its target
    (lambda: nnlab.gradcheck(max, np.ones((1, 2))), "gradcheck: checking the loss max needs its target (target=...)"),
    (lambda: nnlab.gradcheck(_ListWeights(), np.ones((1, 2))),
     "gradcheck: parameters must be float64 arrays, W is list; convert them first "
     "(module.astype(np.float64) for an nnlab module)"),
    (lambda: nnlab.gradcheck(_ForwardOnly(), np.ones((1, 2))),
     "gradcheck: cannot check _ForwardOnly; pass a Module, a layer with forward/backward, a loss "
     "or a (f, f_backward) pair"),
])
def test_gradcheck_refusals_word_for_word(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value) == message


def test_rel_error_compares_float32_arrays_in_float64():
    """In float32 the norms of 1e30 overflow (1e60); in float64 the answer is plain 1/3."""
    a, b = np.array([1e30], dtype=np.float32), np.array([2e30], dtype=np.float32)
    assert rel_error(a, b) == pytest.approx(1 / 3, rel=1e-6)
    assert rel_error(a, b.astype(np.float64)) == pytest.approx(1 / 3, rel=1e-6)
    assert rel_error(a.astype(np.float64), b) == pytest.approx(1 / 3, rel=1e-6)


def test_rel_error_beyond_float_max_is_zero_or_inf_without_a_warning():
    huge = np.array([1e200, 1e200])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rel_error(huge, huge) == 0.0
        assert rel_error(huge, -huge) == float("inf")


def test_gradcheck_result_prints_a_table_word_for_word():
    assert str(GradcheckResult({}, 1e-6)) == "gradcheck PASS (max 0.00e+00, tol 1e-06)"
    failed = GradcheckResult({"input": 1e-9, "lin.W": 2.0}, 1e-6)
    assert str(failed) == ("gradcheck FAIL (max 2.00e+00, tol 1e-06)\n"
                           "  input  rel. error 1.00e-09\n"
                           "  lin.W  rel. error 2.00e+00")


class _Triple:
    """A duck-typed net without parameters, ``3 x``, whose backward keeps dout's dtype (3 is a Python int)."""

    def parameters(self):
        return []

    def forward(self, x):
        return 3 * x

    def backward(self, dout):
        return 3 * dout


class _TripleNet:
    net = _Triple()


@pytest.mark.parametrize("obj", [(lambda x: 3 * x, lambda x, d: 3 * d), _TripleNet()])
def test_a_float32_dout_is_checked_in_float64(obj, rng):
    """3 * dout in float32 is off by ~1e-8 relative; in float64 the check of a linear map is good to ~1e-10."""
    x = rng.normal(size=(4, 3))
    dout = rng.normal(size=(4, 3)).astype(np.float32)
    result = nnlab.gradcheck(obj, x, dout=dout, tol=1e-9)
    assert result.passed, str(result)


class _Frozen:
    """A handout-style layer ``out = x * W`` with a weight but no ``dW`` (frozen) and a bias it learns."""

    def __init__(self, w, returns_dx=True):
        self.W, self.b, self.db = np.asarray(w, dtype=float), np.zeros(2), None
        self.returns_dx = returns_dx
        self.douts = []

    def forward(self, x):
        return x * self.W + self.b

    def backward(self, dout):
        self.douts.append(np.array(dout))
        self.db = dout.sum(axis=0)
        return dout * self.W if self.returns_dx else None


def test_a_handout_layer_without_dw_has_its_weight_left_unchecked(rng):
    result = nnlab.gradcheck(_Frozen([2.0, 3.0]), rng.normal(size=(3, 2)))
    assert list(result.errors) == ["input", "_Frozen.b"] and result.passed, str(result)


def test_a_handout_layer_whose_backward_returns_none_is_checked_on_its_parameters_only(rng):
    result = nnlab.gradcheck(_Frozen([2.0, 3.0], returns_dx=False), rng.normal(size=(3, 2)))
    assert list(result.errors) == ["_Frozen.b"] and result.passed, str(result)


def test_a_given_dout_reaches_a_handout_layer(rng):
    layer, dout = _Frozen([2.0, 3.0]), rng.normal(size=(3, 2))
    assert nnlab.gradcheck(layer, rng.normal(size=(3, 2)), dout=dout).passed
    np.testing.assert_array_equal(layer.douts[0], dout)


class _ExtendedOutput(_Frozen):
    """The same layer, handing its float64 output back as long double (an exact conversion)."""

    def forward(self, x):
        return super().forward(x).astype(np.longdouble)


@pytest.mark.skipif(np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant,
                    reason="long double is float64 on this platform")
def test_a_layer_answering_in_long_double_is_still_checked_in_float64(rng):
    """The finite differences run in float64 whatever the layer returns: the same numbers to the last bit."""
    x = rng.normal(size=(3, 2))
    plain = nnlab.gradcheck(_Frozen([2.0, 3.0]), x)
    extended = nnlab.gradcheck(_ExtendedOutput([2.0, 3.0]), x)
    assert list(extended.errors.values()) == list(plain.errors.values())


def test_numerical_gradient_words_an_integer_x_for_what_it_is():
    """An int x was told that 'float32 rounding swamps the estimate'."""
    x = np.array([1, 2])
    with pytest.raises(nnlab.NnlabTypeError, match=r"^numerical_gradient: x must be float64 \(got int64\); an array "
                       r"of dtype int64 cannot hold the nudged values x \+/- h; make x with np.array\(\.\.\., "
                       r"dtype=float\)"):
        numerical_gradient(lambda: float(np.sum(x)), x)
