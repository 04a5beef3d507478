"""Losses and the L2 penalty: handout mini-checks, stability, gradients, errors."""

import math
import warnings

import numpy as np
import pytest

import nnlab
from nnlab import (
    L2Penalty,
    Linear,
    MSELoss,
    SoftmaxCrossEntropyLoss,
    assert_close,
    cross_entropy,
    mse,
    softmax,
    softmax_cross_entropy_backward,
)


def test_cross_entropy_perfect_prediction_is_zero():
    probs = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    value = cross_entropy(probs, np.array([[0, 1, 0]], dtype=np.float32))
    assert value == pytest.approx(0.0, abs=1e-12)
    assert math.copysign(1.0, value) == 1.0  # +0.0, never the -0.0 that -(0 * log 1) gives


def test_cross_entropy_fifty_fifty_is_ln2():
    probs = np.array([[0.5, 0.5, 0.0]], dtype=np.float32)
    assert cross_entropy(probs, np.array([[1, 0, 0]], dtype=np.float32)) == pytest.approx(np.log(2), rel=1e-6)


def test_cross_entropy_finite_when_true_class_has_zero_probability():
    value = cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-9))


def test_cross_entropy_accepts_integer_labels(rng):
    probs = softmax(rng.normal(size=(6, 4)))
    y = np.array([0, 3, 1, 2, 2, 0])
    assert cross_entropy(probs, y) == pytest.approx(cross_entropy(probs, nnlab.one_hot(y, 4)))


@pytest.mark.parametrize("f", [cross_entropy, softmax_cross_entropy_backward])
def test_mismatched_shapes_name_both(f):
    with pytest.raises(ValueError, match=r"probs \(2, 3\) and Y_true \(2, 4\)"):
        f(np.full((2, 3), 1 / 3), np.zeros((2, 4)))


def test_fused_backward_is_probs_minus_y_over_batch(rng):
    probs = softmax(rng.normal(size=(5, 3)))
    Y = nnlab.one_hot(np.array([0, 1, 2, 1, 0]), 3)
    np.testing.assert_allclose(softmax_cross_entropy_backward(probs, Y), (probs - Y) / 5, rtol=1e-6)


def test_fused_backward_equals_finite_differences_of_softmax_then_ce(rng):
    """The derivation's claim, checked numerically: d CE(softmax(z)) / dz = (p - y) / B."""
    z = rng.normal(size=(4, 5))
    Y = nnlab.one_hot(np.array([1, 4, 0, 2]), 5, dtype=np.float64)
    fused = softmax_cross_entropy_backward(softmax(z), Y)
    numeric = nnlab.numerical_gradient(lambda: cross_entropy(softmax(z), Y, eps=0.0), z)
    assert nnlab.rel_error(fused, numeric) < 1e-7


def test_softmax_ce_loss_is_stable_for_huge_logits():
    value, grad = SoftmaxCrossEntropyLoss()(np.array([[1e4, -1e4], [-1e4, 1e4]]), np.array([1, 1]))
    assert np.isfinite(value) and value == pytest.approx(1e4)
    assert np.all(np.isfinite(grad))


def test_softmax_ce_loss_matches_handout_functions(rng):
    z = rng.normal(size=(6, 3))
    y = np.array([0, 1, 2, 2, 1, 0])
    value, grad = SoftmaxCrossEntropyLoss()(z, y)
    probs = softmax(z)
    assert value == pytest.approx(cross_entropy(probs, y))
    np.testing.assert_allclose(grad, softmax_cross_entropy_backward(probs, y))


@pytest.mark.parametrize("shape", [(1, 2), (4, 3), (8, 10)])
def test_losses_pass_gradcheck(shape, rng):
    pred = rng.normal(size=shape)
    assert nnlab.gradcheck(MSELoss(), pred, rng.normal(size=shape)).passed
    labels = rng.integers(0, shape[1], size=shape[0])
    assert nnlab.gradcheck(SoftmaxCrossEntropyLoss(), pred, labels).passed


def test_mse_loss_gradient_is_handout_dyhat(rng):
    yhat, y = rng.normal(size=(7, 1)), rng.normal(size=(7, 1))
    value, grad = MSELoss()(yhat, y)
    assert value == pytest.approx(np.mean((yhat - y) ** 2))
    np.testing.assert_allclose(grad, (2.0 / 7) * (yhat - y))


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        MSELoss()(np.ones((3, 1)), np.ones(3))


def test_l2_mini_check_from_handout():
    np.random.seed(3)
    lin = Linear(in_dim=3, out_dim=1)
    Xn = np.random.randn(5, 3)
    yc = np.random.randn(5, 1)
    dy = (2.0 / 5) * (lin.forward(Xn) - yc)
    lin.backward(dy)
    dW_no_reg = lin.dW.copy()
    lam = 0.01
    lin.backward(dy)
    L2Penalty(lam).backward(lin.parameters())
    assert assert_close("L2 grad delta", lin.dW - dW_no_reg, 2 * lam * lin.W)


def test_l2_mini_check_typed_as_in_the_handout():
    """Stage 4's mini-check with its own lines: backward writes into dW's buffer, so the copy keeps the old value."""
    np.random.seed(3)
    lin = Linear(in_dim=3, out_dim=1)
    Xn = np.random.randn(5, 3)
    yc = np.random.randn(5, 1)
    yhat = lin.forward(Xn)
    err = yhat - yc
    bs = Xn.shape[0]
    dy = (2.0 / bs) * err
    _ = lin.backward(dy)
    dW_no_reg = lin.dW.copy()
    lam = 0.01
    _ = lin.backward(dy)
    lin.dW += 2 * lam * lin.W
    dW_with_reg = lin.dW
    assert assert_close("L2 grad delta", dW_with_reg - dW_no_reg, 2 * lam * lin.W)
    np.testing.assert_allclose(dW_no_reg, (dy.T @ Xn))  # the copy holds the plain data gradient


def test_l2_penalty_value_and_gradient_skip_biases(rng):
    lin = Linear(3, 2, rng=rng)
    lin.b[:] = 5.0
    pen = L2Penalty(0.3)
    assert pen(lin.parameters()) == pytest.approx(0.3 * np.sum(lin.W**2))
    numeric = nnlab.numerical_gradient(lambda: pen(lin.parameters()), lin.W)
    lin.dW = np.zeros_like(lin.W)
    lin.db = np.zeros_like(lin.b)
    pen.backward(lin.parameters())
    np.testing.assert_allclose(lin.dW, numeric, atol=1e-8)
    assert np.all(lin.db == 0)


def test_l2_penalty_rejects_negative_lambda():
    with pytest.raises(ValueError, match="lam"):
        L2Penalty(-1)


_HALF = np.array([[0.5, 0.5]])
_STRINGS = np.array([["a", "b"]])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: mse(np.array([1.0, np.nan]), np.ones(2)), "mse: yhat holds 1 non-finite"),
    (lambda: mse(np.ones(2), np.array([1.0, np.inf])), "mse: y holds 1 non-finite"),
    (lambda: mse(np.ones(2), np.ones(3)), "mse: yhat and y must have the same shape, got yhat (2,) and y (3,)"),
    (lambda: cross_entropy(np.ones(3) / 3, np.array([0, 1, 0.0])),
     "cross_entropy: probs must be 2-D (batch, classes), got shape (3,)"),
    (lambda: cross_entropy(np.ones((0, 3)), np.ones((0, 3))), "cross_entropy: the batch is empty (0 rows)"),
    (lambda: cross_entropy(np.array([[0.0, 1.5]]), np.array([[0, 1.0]])), "cross_entropy: probs must lie in [0, 1]"),
    (lambda: cross_entropy(np.array([[0.5, 1 + 2e-6]]), np.array([[0, 1.0]])),
     "cross_entropy: probs must lie in [0, 1]"),
    (lambda: cross_entropy(np.array([[-0.1, 1.0]]), np.array([[0, 1.0]])), "cross_entropy: probs must lie in [0, 1]"),
    (lambda: cross_entropy(np.array([[0.5, np.nan]]), np.array([[0, 1.0]])), "cross_entropy: probs holds 1 non-finite"),
    (lambda: cross_entropy(_HALF, np.array([[np.nan, 1.0]])), "cross_entropy: Y_true holds 1 non-finite"),
    (lambda: cross_entropy(_HALF, np.array([[1.0, 1.0, 0]])),
     "cross_entropy: probs and Y_true must have the same shape, got probs (1, 2) and Y_true (1, 3)"),
    (lambda: SoftmaxCrossEntropyLoss()(np.zeros((3, 2)), np.array([0, 1])),
     "SoftmaxCrossEntropyLoss: expected 3 integer labels for an output of shape (3, 2), got labels of shape (2,)"),
    (lambda: SoftmaxCrossEntropyLoss()(np.zeros((7, 2)), np.array([0, 2, -1, 1, 3, 4, 5])),
     "SoftmaxCrossEntropyLoss: labels must lie in [0, 2), got [2, -1, 3, 4, 5]"),
    (lambda: SoftmaxCrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 3])),
     "SoftmaxCrossEntropyLoss: labels must lie in [0, 3), got [3]"),
    (lambda: MSELoss()(np.array([[np.nan]]), np.ones((1, 1))), "MSELoss: yhat holds 1 non-finite"),
    (lambda: mse(np.ones(0), np.ones(0)), "mse: the arrays are empty"),
    (lambda: MSELoss()(np.ones((0, 1)), np.ones((0, 1))), "MSELoss: the arrays are empty"),
    (lambda: mse(np.array([1e200]), np.array([-1e200])), "mse: the result overflowed"),
    (lambda: MSELoss()(np.array([[1e200]]), np.array([[-1e200]])), "MSELoss: the result overflowed"),
    (lambda: MSELoss()(np.array([[1.0]]), np.array([[np.nan]])), "MSELoss: y holds 1 non-finite"),
    (lambda: MSELoss()(np.ones((2, 1)), np.ones((3, 1))),
     "MSELoss: yhat and y must have the same shape, got yhat (2, 1) and y (3, 1)"),
    (lambda: MSELoss()(np.array(["a"]), np.ones(1)), "MSELoss: yhat must hold real numbers, got dtype <U1"),
    (lambda: SoftmaxCrossEntropyLoss()(np.array([[np.nan, 1.0]]), np.array([[0, 1.0]])),
     "SoftmaxCrossEntropyLoss: logits holds 1 non-finite"),
    (lambda: SoftmaxCrossEntropyLoss()(np.array([[0.0, 1.0]]), np.array([[np.nan, 1.0]])),
     "SoftmaxCrossEntropyLoss: Y_true holds 1 non-finite"),
    (lambda: SoftmaxCrossEntropyLoss()(np.ones(2), np.array([0, 1])),
     "SoftmaxCrossEntropyLoss: logits must be 2-D (batch >= 1, classes >= 1), got shape (2,)"),
    (lambda: SoftmaxCrossEntropyLoss()(np.ones((0, 2)), np.ones((0, 2))),
     "SoftmaxCrossEntropyLoss: logits must be 2-D (batch >= 1, classes >= 1), got shape (0, 2)"),
    (lambda: SoftmaxCrossEntropyLoss()(np.ones((2, 2)), np.ones((2, 3))),
     "SoftmaxCrossEntropyLoss: logits and Y_true must have the same shape, got logits (2, 2) and Y_true (2, 3)"),
    (lambda: SoftmaxCrossEntropyLoss()(np.ones((2, 2)), np.array([0.5, 1.0])),
     "SoftmaxCrossEntropyLoss: class labels of shape (batch,) must be integers, got dtype float64 ([0.5, 1.0]"),
    (lambda: SoftmaxCrossEntropyLoss()(np.array([[1e308, -1e308]]), np.array([[0, 1.0]])),
     "SoftmaxCrossEntropyLoss: the result overflowed"),
    (lambda: nnlab.losses.cross_entropy(_STRINGS, np.array([[0.0, 1.0]])),
     "cross_entropy: probs must hold real numbers, got dtype <U1"),
    (lambda: nnlab.losses.cross_entropy(np.array([[0.5, 0.5]]), _STRINGS),
     "cross_entropy: Y_true must hold real numbers, got dtype <U1"),
    (lambda: nnlab.losses.cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.0, 1e308]])),
     "cross_entropy: each row of Y_true must sum to 1 (one-hot rows, or integer labels of shape (batch,)); "
     "row 0 sums to 1e+308"),
    (lambda: nnlab.losses.softmax_cross_entropy_backward(_STRINGS, np.array([[0.0, 1.0]])),
     "softmax_cross_entropy_backward: probs must hold real numbers, got dtype <U1"),
    (lambda: nnlab.losses.softmax_cross_entropy_backward(np.array([[0.5, 0.5]]), _STRINGS),
     "softmax_cross_entropy_backward: Y_true must hold real numbers, got dtype <U1"),
    (lambda: nnlab.losses.softmax_cross_entropy_backward(np.array([[0.5, 0.5]]), np.array([[np.nan, 1.0]])),
     "softmax_cross_entropy_backward: Y_true holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: MSELoss()(np.ones((1, 2)), _STRINGS), "MSELoss: y must hold real numbers, got dtype <U1"),
    (lambda: MSELoss()(np.array([[np.inf]]), np.array([[np.inf]])), "MSELoss: yhat holds 1 non-finite value(s)"),
    (lambda: SoftmaxCrossEntropyLoss()(_STRINGS, np.array([1])),
     "SoftmaxCrossEntropyLoss: logits must hold real numbers, got dtype <U1"),
    (lambda: SoftmaxCrossEntropyLoss()(np.ones((1, 2)), _STRINGS),
     "SoftmaxCrossEntropyLoss: Y_true must hold real numbers, got dtype <U1"),
    (lambda: nnlab.losses.cross_entropy(np.array([[0.5, 0.5]]), np.array([5])),
     "cross_entropy: labels must lie in [0, 2), got [5]"),
    (lambda: nnlab.losses.cross_entropy(np.array([[0.5, 0.5]]), np.array([1.0])),
     "cross_entropy: class labels of shape (batch,) must be integers, got dtype float64 ([1.0]...)"),
    (lambda: nnlab.losses.softmax_cross_entropy_backward(np.array([[0.5, 0.5]], dtype=np.float32),
                                                         np.array([[0.0, 1e300]])),
     "softmax_cross_entropy_backward: each row of Y_true must sum to 1 (one-hot rows, or integer labels of shape "
     "(batch,)); row 0 sums to 1e+300"),
    (lambda: L2Penalty("x"), "L2Penalty: lam must be a number, got 'x'"),
    (lambda: SoftmaxCrossEntropyLoss()(np.ones((7, 3)), np.array([-1, -2, -3, -4, -5, -6, 9])),
     "SoftmaxCrossEntropyLoss: labels must lie in [0, 3), got [-1, -2, -3, -4, -5]"),
])
def test_every_loss_refusal_names_the_function_and_the_argument(call, message):
    """Word for word, and in words only: no NumPy RuntimeWarning on the way (warnings are errors here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(nnlab.NnlabError) as caught:
            call()
    assert str(caught.value).startswith(message)


def test_probabilities_just_inside_the_rounding_margin_are_accepted():
    assert cross_entropy(np.array([[0.0, 1 + 1e-7]]), np.array([[0, 1.0]])) == pytest.approx(0.0, abs=1e-6)


def test_mse_is_the_mean_squared_difference(rng):
    yhat, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    assert mse(yhat, y) == pytest.approx(np.mean((yhat - y) ** 2), rel=1e-12)


@pytest.mark.parametrize("targets, message", [
    (lambda Y: -Y, r"Y_true must hold probabilities >= 0.*row 0 holds -1"),
    (lambda Y: np.ones_like(Y), r"each row of Y_true must sum to 1.*sums to 3")])
def test_cross_entropy_refuses_targets_that_are_not_distributions(targets, message):
    P = nnlab.softmax(np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(nnlab.NnlabValueError, match=message):
        nnlab.cross_entropy(P, targets(np.eye(3)[[0, 1, 2, 0]]))


def test_cross_entropy_refuses_rows_that_do_not_sum_to_one():
    with pytest.raises(nnlab.NnlabValueError, match=r"each row of probs must sum to 1 \(pass softmax\(logits\)\)"):
        nnlab.cross_entropy(np.full((2, 3), 0.9), np.array([0, 1]))


def test_cross_entropy_takes_float32_softmax_of_many_classes():
    logits = np.random.default_rng(0).normal(size=(64, 1000)).astype(np.float32)
    labels = np.arange(64)
    expected = nnlab.cross_entropy(nnlab.softmax(logits.astype(np.float64)), labels)
    assert nnlab.cross_entropy(nnlab.softmax(logits), labels) == pytest.approx(expected, rel=1e-5)



def test_probabilities_may_exceed_one_by_the_rounding_allowance():
    """Softmax rows can round a hair above 1; up to 1 + 1e-6 is accepted, beyond that refused."""
    assert nnlab.losses.cross_entropy(np.array([[1 + 1e-6, 0.0]]), np.array([0])) == pytest.approx(-math.log(1 + 1e-6))
    with pytest.raises(nnlab.NnlabValueError, match=r"probs must lie in \[0, 1\]"):
        nnlab.losses.cross_entropy(np.array([[1 + 1e-5, 0.0]]), np.array([0]))


def test_a_single_class_is_a_valid_softmax_cross_entropy():
    value, grad = SoftmaxCrossEntropyLoss()(np.array([[3.0], [-1.0]]), np.array([0, 0]))
    assert value == 0.0
    np.testing.assert_array_equal(grad, [[0.0], [0.0]])


@pytest.mark.parametrize("call", [
    lambda p32: MSELoss()(p32, np.ones(p32.shape))[1],
    lambda p32: SoftmaxCrossEntropyLoss()(p32, np.eye(3)[[0, 2]])[1],
    lambda p32: SoftmaxCrossEntropyLoss()(p32, np.array([0, 2]))[1],
    lambda p32: nnlab.losses.softmax_cross_entropy_backward(nnlab.softmax(p32), np.eye(3)[[0, 2]]),
])
def test_float64_targets_leave_a_float32_gradient_float32(call):
    assert call(np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], dtype=np.float32)).dtype == np.float32


def test_l2_penalty_of_strength_zero_is_accepted_and_changes_nothing():
    lin = nnlab.Linear(2, 2, rng=np.random.default_rng(0))
    lin.dW[...] = 1.0
    penalty = nnlab.L2Penalty(0.0)
    assert penalty(lin.parameters()) == 0.0
    penalty.backward(lin.parameters())
    np.testing.assert_array_equal(lin.dW, np.ones((2, 2)))


def test_l2_penalty_of_strength_one_adds_twice_the_weights():
    lin = nnlab.Linear(2, 2, rng=np.random.default_rng(0))
    lin.dW[...] = 1.0
    nnlab.L2Penalty(1.0).backward(lin.parameters())
    np.testing.assert_allclose(lin.dW, 1.0 + 2.0 * lin.W, rtol=1e-15)


class _NoLoss(nnlab.losses.Loss):
    """A new loss that checks its target but forgot its formula."""

    def _check_target(self, target, pred):
        return as_float(target)


def as_float(value):
    return np.asarray(value, dtype=np.float64)


def test_a_new_loss_gets_the_base_checks_and_clear_not_implemented_messages():
    assert repr(MSELoss()) == "MSELoss()" and repr(_NoLoss()) == "_NoLoss()"
    with pytest.raises(nnlab.NnlabTypeError) as caught:
        _NoLoss()(np.array(["a"]), np.ones(1))
    assert str(caught.value) == "_NoLoss: pred must hold real numbers, got dtype <U1"
    with pytest.raises(NotImplementedError) as missing:
        _NoLoss()([1.0], np.ones(1))
    assert str(missing.value) == "_NoLoss must implement _loss(pred, target, inplace=False)"
    with pytest.raises(NotImplementedError) as no_target:
        nnlab.losses.Loss()(np.ones(1), np.ones(1))
    assert str(no_target.value) == "Loss must implement _check_target(target, pred)"


@pytest.mark.parametrize(("labels", "shown"), [
    (np.array([True, False, True, True]), "booleans ([True, False, True]...)"),
    (np.array(["a", "b"]), "dtype <U1"),
    (np.array([0.5, 1.0, 1.0, 2.0]), "dtype float64 ([0.5, 1.0, 1.0]...)"),
])
def test_labels_that_are_not_integers_are_named_word_for_word(labels, shown):
    """At most three labels are quoted, and only for booleans and numbers."""
    with pytest.raises(nnlab.NnlabTypeError) as caught:
        cross_entropy(np.full((len(labels), 2), 0.5), labels)
    assert str(caught.value) == (f"cross_entropy: class labels of shape (batch,) must be integers, got {shown}; "
                                 "pass y.astype(int), or one-hot rows of shape (batch, classes)")


def test_soft_float64_targets_are_cast_to_the_logits_float32_first():
    """The loss of float32 logits is the same whether the caller cast the targets or not, to the last bit."""
    z = np.array([[0.3, -1.2, 2.0], [1.0, 0.1, -0.5]], dtype=np.float32)
    Y = np.array([[0.1, 0.3, 0.6], [0.25, 0.25, 0.5]])
    value, grad = SoftmaxCrossEntropyLoss()(z, Y)
    value32, grad32 = SoftmaxCrossEntropyLoss()(z, Y.astype(np.float32))
    assert value == value32
    np.testing.assert_array_equal(grad, grad32)


@pytest.mark.parametrize("eps", [-1e-9, 1, 1.0, 1.5, float("nan"), float("inf"), np.float32(2)])
def test_cross_entropy_refuses_an_eps_outside_zero_to_one(eps):
    with pytest.raises(nnlab.NnlabValueError) as caught:
        cross_entropy(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), eps=eps)
    assert str(caught.value) == f"cross_entropy: eps must be in [0, 1), got {float(eps)!r}"


@pytest.mark.parametrize("eps", [True, "1e-9", None, np.array([1e-9])])
def test_cross_entropy_refuses_an_eps_that_is_not_a_number(eps):
    with pytest.raises(nnlab.NnlabTypeError) as caught:
        cross_entropy(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), eps=eps)
    assert str(caught.value) == f"cross_entropy: eps must be a number, got {eps!r}"


def test_cross_entropy_takes_eps_as_a_0d_array():
    probs, Y = np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])
    assert cross_entropy(probs, Y, eps=np.array(1e-9)) == cross_entropy(probs, Y, eps=1e-9) == -np.log(1e-9)


def test_cross_entropy_with_eps_zero_skips_classes_of_target_zero_and_is_inf_on_a_zero_true_class():
    """eps=0 clips nothing: 0 * log 0 counts as 0 (no NaN), a true class at probability 0 costs inf; no warnings."""
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    probs = np.array([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cross_entropy(probs, Y, eps=0) == pytest.approx(-(np.log(0.5) + np.log(0.25)) / 2, rel=1e-15)
        assert cross_entropy(probs, Y, eps=0.0) == cross_entropy(probs, Y, eps=1e-300)
        assert cross_entropy(probs[::-1], Y, eps=0) == np.inf
        # float32 cannot hold 1e-60: eps is raised to float32's smallest normal number, the loss stays finite
        tiny = np.finfo(np.float32).tiny
        assert cross_entropy(probs[::-1].astype(np.float32), Y, eps=1e-60) == pytest.approx(
            -(np.log(np.float32(tiny)) + np.log(np.float32(0.5))) / 2, rel=1e-6)


_ONE_HOT_HINT = "(one-hot rows, or integer labels of shape (batch,))"


@pytest.mark.parametrize(("Y", "message"), [
    # rows 0 and 1 hold zeros and entries below 1: only row 2 holds a negative entry
    ([[0, 1, 0], [1, 0, 0], [0.5, 0.6, -0.1]],
     f"Y_true must hold probabilities >= 0 {_ONE_HOT_HINT}; row 2 holds -0.1"),
    # the row furthest from 1 is named: here the smallest sum (row 1), not the largest (row 2) ...
    ([[0, 1, 0], [0.5, 0, 0], [0.6, 0.6, 0]], f"each row of Y_true must sum to 1 {_ONE_HOT_HINT}; row 1 sums to 0.5"),
    # ... and here the largest (row 2), not the smallest (row 1)
    ([[0, 1, 0], [0.9, 0, 0], [1.5, 0, 0]], f"each row of Y_true must sum to 1 {_ONE_HOT_HINT}; row 2 sums to 1.5"),
])
def test_cross_entropy_names_the_offending_target_row_word_for_word(Y, message):
    with pytest.raises(nnlab.NnlabValueError) as caught:
        nnlab.cross_entropy(np.full((3, 3), 1 / 3), np.array(Y))
    assert str(caught.value) == f"cross_entropy: {message}"


@pytest.mark.parametrize(("probs", "total"),
                         [([[0.0, 0.5]], "0.5"), ([[1.0, 0.5]], "1.5"), ([[1 + 1e-6, 0.5]], "1.500001")])
def test_probabilities_in_range_that_do_not_sum_to_one_are_told_so(probs, total):
    """0, 1 and 1 + 1e-6 (rounding) are in range: the complaint is the row sum, not 'pass softmax, not logits'."""
    with pytest.raises(nnlab.NnlabValueError) as caught:
        nnlab.cross_entropy(np.array(probs), np.array([0]))
    assert str(caught.value) == ("cross_entropy: each row of probs must sum to 1 (pass softmax(logits)); "
                                 f"row 0 sums to {total}")


def test_a_row_summing_to_exactly_one_minus_the_tolerance_is_accepted():
    assert nnlab.cross_entropy(np.array([[1 - 1e-6, 0.0]]), np.array([0])) == pytest.approx(1e-6, rel=1e-5)


def test_the_row_sum_tolerance_grows_with_the_classes_not_the_rows():
    """float32, 1000 classes: rounding allows 16 * 1000 * eps = 1.9e-3; 1e-3 off passes, 4e-3 off does not."""
    probs = np.full((2, 1000), 1 / 1000, dtype=np.float32)
    probs[:, 0] += np.float32(1e-3)
    assert np.isfinite(nnlab.cross_entropy(probs, np.array([0, 1])))
    probs[:, 0] += np.float32(3e-3)
    with pytest.raises(nnlab.NnlabValueError, match="each row of probs must sum to 1"):
        nnlab.cross_entropy(probs, np.array([0, 1]))


@pytest.mark.parametrize("targets", ["labels", "soft rows"])
def test_the_float32_loss_of_identical_rows_does_not_depend_on_their_number(targets):
    """The mean is accumulated in float64: any number of equal float32 terms averages to the term itself.

    (Summed in float32, 777 and 12345 copies of these rows drift apart by ~1e-8.)
    """
    row = np.array([[0.3, 1.7, -0.9]], dtype=np.float32)
    target = np.array([0]) if targets == "labels" else np.array([[0.25, 0.5, 0.25]], dtype=np.float32)
    loss = SoftmaxCrossEntropyLoss()
    values = [loss(np.repeat(row, n, axis=0), np.repeat(target, n, axis=0))[0] for n in (1, 777, 12345)]
    assert values[1] == pytest.approx(values[0], rel=1e-12, abs=0)
    assert values[2] == pytest.approx(values[0], rel=1e-12, abs=0)


def test_cross_entropy_refuses_zero_classes():
    """A row of no entries sums to 0, not 1: refused as softmax and SoftmaxCrossEntropyLoss refuse it."""
    for where, call in (("cross_entropy", cross_entropy), ("softmax_cross_entropy_backward",
                                                           softmax_cross_entropy_backward)):
        with pytest.raises(nnlab.NnlabValueError) as caught:
            call(np.zeros((2, 0)), np.zeros((2, 0)))
        assert str(caught.value) == f"{where}: probs need at least one class, got shape (2, 0)"


@pytest.mark.parametrize("where", ["cross_entropy", "softmax_cross_entropy_backward"])
@pytest.mark.parametrize("probs", [[[1e308, 1e308]], [[np.float32(3e38), np.float32(3e38)]]])
def test_huge_probabilities_are_refused_in_words_without_a_numpy_warning(where, probs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(nnlab.NnlabValueError) as caught:
            getattr(nnlab.losses, where)(np.array(probs), np.array([[1.0, 0.0]]))
    assert str(caught.value) == f"{where}: probs must lie in [0, 1] (pass softmax(logits), not logits)"


def test_a_probability_above_one_is_refused_even_within_the_row_sum_tolerance():
    """float32 [1.00001, 0, ...] sums to 1 within 16 * C * eps but is no probability: its loss would be negative."""
    probs = np.zeros((1, 10), np.float32)
    probs[0, 0] = 1.00001
    with pytest.raises(nnlab.NnlabValueError, match=r"probs must lie in \[0, 1\]"):
        cross_entropy(probs, np.array([0]))


def test_huge_targets_are_named_without_a_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(nnlab.NnlabValueError) as caught:
            cross_entropy(np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([[1e308, 1e308], [0.0, 1.0]]))
    assert str(caught.value) == ("cross_entropy: each row of Y_true must sum to 1 (one-hot rows, or integer labels "
                                 "of shape (batch,)); row 0 sums to inf")


def test_big_endian_probabilities_give_a_native_gradient():
    probs = np.array([[0.25, 0.75]], dtype=">f8")
    grad = softmax_cross_entropy_backward(probs, np.array([1]))
    np.testing.assert_array_equal(grad, [[0.25, -0.25]])


def test_column_major_logits_give_the_row_major_loss_and_gradient():
    """The fused integer-label path subtracts 1/B at each label through a flat view: F-ordered logits must not
    make that view a copy (the gradient rows would then not sum to 0)."""
    z = np.random.default_rng(0).normal(size=(4, 3))
    labels = np.array([0, 2, 1, 1])
    value_c, grad_c = SoftmaxCrossEntropyLoss()(z, labels)
    value_f, grad_f = SoftmaxCrossEntropyLoss()(np.asfortranarray(z), labels)
    assert value_f == value_c
    np.testing.assert_array_equal(grad_f, grad_c)
    np.testing.assert_allclose(grad_f.sum(axis=1), 0, atol=1e-15)


@pytest.mark.parametrize("fn", [cross_entropy, nnlab.softmax_cross_entropy_backward])
def test_lists_give_what_arrays_give(fn):
    """Plain lists (the handout's snippets) take the general path of the checks, arrays the usual one: same result."""
    probs, onehot, labels = [[0.2, 0.8], [0.5, 0.5]], [[0.0, 1.0], [1.0, 0.0]], [1, 0]
    want = fn(np.array(probs), np.array(onehot))
    for p, y in [(probs, onehot), (probs, labels), (np.array(probs), onehot), (probs, np.array(labels))]:
        np.testing.assert_array_equal(fn(p, y), want)


@pytest.mark.parametrize("fn", [cross_entropy, nnlab.softmax_cross_entropy_backward])
def test_probabilities_of_three_dimensions_are_refused_even_when_their_rows_sum_to_one(fn):
    probs = np.full((1, 2, 2), 0.5)
    with pytest.raises(nnlab.NnlabValueError, match=r"probs must be 2-D \(batch, classes\), got shape \(1, 2, 2\)"):
        fn(probs, probs)


@pytest.mark.parametrize("fn", [cross_entropy, nnlab.softmax_cross_entropy_backward])
@pytest.mark.parametrize("which", ["probs", "Y_true"])
def test_complex_probabilities_or_targets_are_refused_even_when_their_rows_sum_to_one(fn, which):
    probs = np.array([[0.25, 0.75], [0.5, 0.5]])
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    args = (probs.astype(complex), Y) if which == "probs" else (probs, Y.astype(complex))
    with pytest.raises(nnlab.NnlabTypeError, match=rf"{which} must hold real numbers, got dtype complex128"):
        fn(*args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integer_labels_give_exactly_what_their_one_hot_rows_give(dtype, rng):
    """Labels become one-hot rows of probs' own dtype: in float32 the value is summed as it is for one-hot rows."""
    probs = nnlab.softmax(rng.normal(size=(7, 5)).astype(dtype))
    labels = rng.integers(0, 5, size=7)
    onehot = np.eye(5, dtype=dtype)[labels]
    assert cross_entropy(probs, labels) == cross_entropy(probs, onehot)
    grad = nnlab.softmax_cross_entropy_backward(probs, labels)
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, nnlab.softmax_cross_entropy_backward(probs, onehot))


def test_a_row_refused_at_the_edge_of_the_tolerance_shows_why_in_its_sum():
    """float64, 2 classes: the tolerance is 1e-6; a row summing to 1 + 2e-6 must not read 'sums to 1'."""
    with pytest.raises(nnlab.NnlabValueError, match=r"row 0 sums to 1\.00000199"):
        cross_entropy(np.array([[0.5 + 2e-6, 0.5]]), np.array([0]))


def test_a_float32_row_refused_for_its_sum_is_shown_with_its_float32_sum():
    """The message shows the sum the test computed, in the array's own precision (float32 0.5 + 0.6 is 1.1)."""
    with pytest.raises(nnlab.NnlabValueError, match=r"row 0 sums to 1\.1$"):
        cross_entropy(np.array([[0.5, 0.6]], dtype=np.float32), np.array([0]))


def test_float16_probabilities_are_judged_at_float16_precision():
    """float16 [0.2, 0.8] sums to 0.99976 once rounded; it is a distribution at its own precision, not at float32's."""
    p16 = np.array([[0.2, 0.8], [0.5, 0.5]], np.float16)
    assert float(p16.astype(np.float32).sum(axis=1)[0]) != 1.0  # the rounding this test is about
    expected = -np.mean(np.log(p16.astype(np.float64)[[0, 1], [1, 0]]))
    assert cross_entropy(p16, np.array([1, 0])) == pytest.approx(expected, rel=1e-6)
    grad = softmax_cross_entropy_backward(p16, np.array([1, 0]))
    np.testing.assert_allclose(grad, (p16.astype(np.float32) - np.eye(2, dtype=np.float32)[[1, 0]]) / 2)
    # the same sums in float32 are still refused: float32's own tolerance is unchanged
    with pytest.raises(nnlab.NnlabValueError, match="row 0 sums to 0.99975586"):
        cross_entropy(p16.astype(np.float32), np.array([1, 0]))
    # rows far from 1 stay refused at any width (a width-scaled tolerance reached 1 at 64 classes)
    with pytest.raises(nnlab.NnlabValueError, match="row 0 sums to 0.0"):
        cross_entropy(np.zeros((2, 100), np.float16), np.array([0, 1]))
    # a float16 softmax of 100 classes is accepted
    p100 = nnlab.softmax(np.random.default_rng(0).normal(size=(4, 100))).astype(np.float16)
    assert np.isfinite(cross_entropy(p100, np.arange(4)))
    # and a float16 row that is off by more than float16 rounding is refused too
    with pytest.raises(nnlab.NnlabValueError, match="row 0 sums to 0.9499512"):
        cross_entropy(np.array([[0.2, 0.75]], np.float16), np.array([1]))


@pytest.mark.parametrize("table", [np.array([[1, 0], [0, 1], [1, 0]]), np.array([[True, False], [False, True],
                                                                                   [True, False]])])
def test_integer_and_boolean_probability_tables_read_as_float64(table):
    """A one-hot table of ints or bools is a valid probs argument: it is read as float64, whose rounding judges it
    (an integer dtype has no rounding of its own to borrow)."""
    y = np.array([0, 0, 0])  # row 1 gives the true class probability 0: the loss is -log(eps) / 3 (eps = 1e-9)
    as_float = table.astype(np.float64)
    assert cross_entropy(table, y) == cross_entropy(as_float, y) == pytest.approx(-math.log(1e-9) / 3)
    grad = softmax_cross_entropy_backward(table, y)
    assert grad.dtype == np.float64
    np.testing.assert_array_equal(grad, np.array([[0.0, 0.0], [-1.0, 1.0], [0.0, 0.0]]) / 3)


def test_float32_targets_are_judged_without_a_numpy_warning():
    """float32 one-hot targets (the handout's rows in single precision) are judged at float32's own rounding,
    asking NumPy nothing it warns about (np.finfo(None) is deprecated and is to become an error)."""
    nnlab.losses._row_test.cache_clear()  # the tolerance is cached per (width, dtype): make these the first calls
    width = 23
    probs = np.full((2, width), 1 / width, dtype=np.float32)
    Y = np.eye(width, dtype=np.float32)[[0, 5]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cross_entropy(probs, Y) == pytest.approx(math.log(width), rel=1e-6)
        grad = softmax_cross_entropy_backward(probs, Y)
        assert grad.dtype == np.float32
        np.testing.assert_allclose(grad[:, :2], np.array([[1 / width - 1, 1 / width], [1 / width, 1 / width]]) / 2,
                                   rtol=1e-6)


@pytest.mark.parametrize("call, where", [
    (lambda y: cross_entropy(np.full((3, 2), 0.5), y), "cross_entropy"),
    (lambda y: softmax_cross_entropy_backward(np.full((3, 2), 0.5), y), "softmax_cross_entropy_backward"),
    (lambda y: nnlab.SoftmaxCrossEntropyLoss()(np.zeros((3, 2)), y), "SoftmaxCrossEntropyLoss"),
    (lambda y: nnlab.one_hot(y, 2), "one_hot"),
])
def test_masked_labels_with_a_masked_entry_are_refused(call, where):
    """np.asarray drops a mask: the hidden label (here 1) used to count as data, silently."""
    labels = np.ma.array([0, 1, 1], mask=[False, True, False])
    name = "y" if where == "one_hot" else "Y_true"
    with pytest.raises(nnlab.errors.NnlabValueError, match=rf"^{where}: {name} is a masked array with 1 masked value"):
        call(labels)
    call(np.ma.array([0, 1, 1]))  # nothing masked: plain data, accepted


def test_masked_one_hot_targets_with_a_masked_entry_are_refused():
    Y = np.ma.array(np.eye(2)[[0, 1, 1]], mask=[[False, False], [True, False], [False, False]])
    with pytest.raises(nnlab.errors.NnlabValueError, match=r"^cross_entropy: Y_true is a masked array with 1 masked"):
        cross_entropy(np.full((3, 2), 0.5), Y)


def test_float16_rows_may_miss_one_by_four_float16_units_and_no_more():
    """The float16 tolerance is four units of float16 (2**-10 each) at any width: a row summing to 1 + 3.5 units
    passes, one summing to 1 + 4.5 units is refused (0.5 plus whole steps of float16's spacing there, 2**-11)."""
    unit, step = 2.0 ** -10, 2.0 ** -11
    inside = np.array([[0.5, 0.5 + 7 * step]], np.float16)  # sums to 1 + 3.5 units
    outside = np.array([[0.5, 0.5 + 9 * step]], np.float16)  # sums to 1 + 4.5 units
    assert float(inside.astype(np.float64).sum()) == 1 + 3.5 * unit
    assert float(outside.astype(np.float64).sum()) == 1 + 4.5 * unit
    assert cross_entropy(inside, np.array([0])) == pytest.approx(math.log(2), abs=1e-6)  # (computed in float32)
    with pytest.raises(nnlab.errors.NnlabValueError, match=r"^cross_entropy: each row of probs must sum to 1"):
        cross_entropy(outside, np.array([0]))
