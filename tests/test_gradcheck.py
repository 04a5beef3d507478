"""The gradient checker must catch wrong gradients, not only pass right ones."""

import numpy as np
import pytest

import nnlab
from nnlab import Linear, Module


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
