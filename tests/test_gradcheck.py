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
