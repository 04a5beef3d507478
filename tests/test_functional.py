"""Activations and softmax: the handout's mini-checks, edge cases and properties."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import nnlab
from nnlab import log_softmax, relu, relu_backward, softmax, tanh, tanh_backward


def test_relu_mini_check_from_handout():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(relu(z), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(relu_backward(z, np.array([10.0, 10.0, 10.0])), [0.0, 0.0, 10.0])


def test_relu_derivative_is_zero_at_exactly_zero():
    assert relu_backward(np.zeros((2, 2)), np.ones((2, 2))).sum() == 0


def test_tanh_backward_formula(rng):
    x = rng.normal(size=(4, 5))
    dout = rng.normal(size=(4, 5))
    np.testing.assert_allclose(tanh_backward(x, dout), dout * (1 - np.tanh(x) ** 2))


def test_tanh_does_not_overflow():
    out = tanh(np.array([-1e4, 1e4]))
    np.testing.assert_array_equal(out, [-1.0, 1.0])


@pytest.mark.parametrize("f", [relu_backward, tanh_backward])
def test_backward_shape_mismatch_is_a_clear_error(f):
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(3, 2\)"):
        f(np.ones((2, 3)), np.ones((3, 2)))


@pytest.mark.parametrize("f", [relu, tanh, softmax])
def test_float32_stays_float32(f):
    assert f(np.ones((2, 3), dtype=np.float32)).dtype == np.float32


def test_activation_backwards_keep_float32():
    x = np.ones((2, 3), dtype=np.float32)
    assert relu_backward(x, x).dtype == np.float32
    assert tanh_backward(x, x).dtype == np.float32


def test_softmax_is_stable_for_huge_logits():
    p = softmax(np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3)


def test_softmax_single_row():
    np.testing.assert_allclose(softmax(np.array([0.0, np.log(3.0)])), [0.25, 0.75])


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=st.floats(-50, 50)))
def test_softmax_rows_are_distributions(z):
    p = softmax(z)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.log(np.clip(p, 1e-300, None)), log_softmax(z), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)), elements=st.floats(-5, 5)))
def test_softmax_is_shift_invariant(z):
    np.testing.assert_allclose(softmax(z), softmax(z + 123.0), atol=1e-12)


@pytest.mark.parametrize("pair", [(relu, relu_backward), (tanh, tanh_backward)])
@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (7, 2)])
def test_activation_gradcheck(pair, shape, rng):
    x = rng.normal(size=shape)
    x[np.abs(x) < 0.05] = 0.5  # keep away from ReLU's kink, where differences are not derivatives
    assert nnlab.gradcheck(pair, x).passed


def test_object_input_is_a_type_error():
    with pytest.raises(TypeError, match="relu"):
        relu(np.array(["a", "b"]))


_NAN_ROW = np.array([1.0, np.nan])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: relu(_NAN_ROW), "relu: x holds 1 non-finite"),
    (lambda: tanh(_NAN_ROW), "tanh: x holds 1 non-finite"),
    (lambda: relu_backward(_NAN_ROW, np.ones(2)), "relu_backward: x holds 1 non-finite"),
    (lambda: relu_backward(np.ones(2), _NAN_ROW), "relu_backward: dout holds 1 non-finite"),
    (lambda: tanh_backward(_NAN_ROW, np.ones(2)), "tanh_backward: x holds 1 non-finite"),
    (lambda: tanh_backward(np.ones(2), _NAN_ROW), "tanh_backward: dout holds 1 non-finite"),
    (lambda: softmax(np.array([[np.inf, 1.0]])), "softmax: logits holds 1 non-finite"),
    (lambda: relu_backward(np.ones(2), np.ones(3)), "relu_backward: x and dout must have the same shape, got x (2,)"),
    (lambda: tanh_backward(np.ones(2), np.ones(3)), "tanh_backward: x and dout must have the same shape, got x (2,)"),
])
def test_every_refusal_names_the_function_and_the_argument(call, message):
    """The messages word for word: each names the function and the offending argument (the error standard)."""
    with pytest.raises(nnlab.errors.NnlabError) as caught:
        call()
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("width", [2, 100])  # both sides of the short-row fast path
def test_each_row_is_shifted_by_its_own_maximum(width):
    """Rows 1000 apart: a shift by one maximum for the whole batch would underflow the low row to 0/0."""
    row = -np.arange(width, dtype=np.float64)
    z = np.stack([row + 1000.0, row, row - 500.0])
    expected = softmax(row[None, :])
    for p in softmax(z):
        np.testing.assert_allclose(p, expected[0], rtol=1e-12)
    np.testing.assert_allclose(log_softmax(z), np.log(np.repeat(expected, 3, axis=0)), rtol=1e-9, atol=1e-12)


def test_log_softmax_is_stable_for_huge_logits():
    np.testing.assert_array_equal(log_softmax(np.array([[1000.0, 0.0]])), [[0.0, -1000.0]])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: softmax(np.ones((2, 0))), "softmax: logits need at least one class along the last axis, got shape (2, 0)"),
    (lambda: log_softmax(np.ones((2, 0))),
     "log_softmax: logits need at least one class along the last axis, got shape (2, 0)"),
    (lambda: softmax(np.float64(1.0)), "softmax: logits need at least one class along the last axis, got shape ()"),
])
def test_softmax_without_classes_is_refused(call, message):
    with pytest.raises(nnlab.NnlabValueError) as caught:
        call()
    assert str(caught.value) == message


def test_relu_of_a_large_array_clips_at_zero_exactly():
    """Above 2**20 entries relu compares with the scalar 0 instead of a cached array: the same answer."""
    x = np.linspace(-1.0, 1.0, (1 << 20) + 3)
    out = relu(x)
    assert out.min() == 0.0 and np.array_equal(out, np.maximum(x, 0.0))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: softmax(np.array(["a", "b"])), "softmax: logits must hold real numbers, got dtype <U1"),
    (lambda: log_softmax(_NAN_ROW), "log_softmax: logits holds 1 non-finite"),
    (lambda: log_softmax(np.array([[1e308, -1e308]])), "log_softmax: the result overflowed to inf/NaN"),
    (lambda: log_softmax(np.float64(1.0)),
     "log_softmax: logits need at least one class along the last axis, got shape ()"),
    (lambda: softmax(np.array([[np.inf, 1.0]])), "softmax: logits holds 1 non-finite"),
])
def test_softmax_refusals_come_in_words_without_a_numpy_warning(call, message):
    """Word for word, and no RuntimeWarning on the way (inf - inf and overflow happen inside, silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(nnlab.errors.NnlabError) as caught:
            call()
    assert str(caught.value).startswith(message)


def test_softmax_of_a_range_beyond_float_max_is_one_hot_without_a_warning():
    """1e308 - (-1e308) overflows inside the shift; the far-below class still gets probability exactly 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = softmax(np.array([[1e308, -1e308]]))
    np.testing.assert_array_equal(p, [[1.0, 0.0]])


def test_log_softmax_of_a_single_row_is_one_row():
    out = log_softmax(np.array([0.0, 0.0]))
    assert out.shape == (2,)
    np.testing.assert_allclose(out, np.log([0.5, 0.5]), rtol=1e-15)


def test_softmax_and_log_softmax_work_along_the_last_axis_of_a_3d_array(rng):
    z = rng.normal(size=(2, 3, 4)) * 3
    p, logp = softmax(z), log_softmax(z)
    assert p.shape == logp.shape == z.shape
    for i in range(2):
        np.testing.assert_allclose(p[i], softmax(z[i]), rtol=1e-13)
        np.testing.assert_allclose(logp[i], log_softmax(z[i]), rtol=1e-13)


def test_log_softmax_keeps_float32():
    out = log_softmax(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    assert out.dtype == np.float32


@pytest.mark.parametrize(("call", "message"), [
    (lambda: nnlab.gelu(_NAN_ROW), "gelu: x holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: nnlab.gelu(np.array(["a"])), "gelu: x must hold real numbers, got dtype <U1"),
    (lambda: nnlab.gelu(np.ones(1), approximate="x"), "gelu: approximate must be 'none' (exact) or 'tanh', got 'x'"),
    (lambda: nnlab.gelu_backward(_NAN_ROW, np.ones(2)), "gelu_backward: x holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: nnlab.gelu_backward(np.ones(1), np.ones(1), approximate="x"),
     "gelu_backward: approximate must be 'none' (exact) or 'tanh', got 'x'"),
    (lambda: nnlab.leaky_relu(_NAN_ROW), "leaky_relu: x holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: nnlab.leaky_relu(np.ones(1), negative_slope="x"),
     "leaky_relu: negative_slope must be a finite number, got 'x'"),
    (lambda: nnlab.leaky_relu_backward(_NAN_ROW, np.ones(2)),
     "leaky_relu_backward: x holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: nnlab.leaky_relu_backward(np.ones(1), np.ones(1), negative_slope="x"),
     "leaky_relu_backward: negative_slope must be a finite number, got 'x'"),
    (lambda: nnlab.sigmoid(_NAN_ROW), "sigmoid: x holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: nnlab.sigmoid(np.array(["a"])), "sigmoid: x must hold real numbers, got dtype <U1"),
    (lambda: nnlab.sigmoid_backward(_NAN_ROW, np.ones(2)),
     "sigmoid_backward: x holds 1 non-finite value(s) (NaN or inf)"),
])
def test_activation_function_refusals_word_for_word(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value) == message


def test_every_backward_takes_zero_dimensional_arrays():
    """A single number in, a single number out: the cores write into scratch arrays, which 0-d inputs must not break."""
    x, dout = np.float64(0.5), np.float64(2.0)
    s = 1 / (1 + np.exp(-0.5))
    expected = {
        tanh_backward: 2.0 * (1 - np.tanh(0.5) ** 2),
        nnlab.sigmoid_backward: 2.0 * s * (1 - s),
        nnlab.leaky_relu_backward: 2.0,
        relu_backward: 2.0,
    }
    for backward, value in expected.items():
        out = backward(x, dout)
        assert np.ndim(out) == 0
        assert float(out) == pytest.approx(value, rel=1e-14)
    assert np.ndim(nnlab.gelu_backward(x, dout)) == 0


def test_gelu_beyond_float_max_saturates_without_a_warning():
    huge = np.array([1e200, -1e200])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(nnlab.gelu(huge, approximate="tanh"), [1e200, 0.0])
        np.testing.assert_array_equal(nnlab.gelu_backward(huge, np.ones(2)), [1.0, 0.0])
        np.testing.assert_array_equal(nnlab.gelu_backward(huge, np.ones(2), approximate="tanh"), [1.0, 0.0])


def test_leaky_relu_takes_the_negative_branch_at_exactly_zero():
    """``x if x > 0 else slope * x``, as PyTorch computes it: with a negative slope, +0.0 comes out as -0.0."""
    out = nnlab.leaky_relu(np.array([0.0, 2.0]), negative_slope=-0.5)
    np.testing.assert_array_equal(np.signbit(out), [True, False])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_sum_of_a_float_matrix_is_its_product_with_ones(dtype, rng):
    """As documented: one matrix-vector product with a vector of ones (rounded as BLAS rounds, to the bit)."""
    z = rng.normal(size=(50, 1000)).astype(dtype)
    sums = nnlab.functional.row_sum(z)
    assert sums.shape == (50, 1) and sums.dtype == dtype
    np.testing.assert_array_equal(sums[:, 0], z @ np.ones(1000, dtype))


def test_row_sum_of_a_boolean_matrix_counts_along_the_rows():
    mask = np.array([[True, True, False], [True, True, True]])
    np.testing.assert_array_equal(nnlab.functional.row_sum(mask), [[2], [3]])
