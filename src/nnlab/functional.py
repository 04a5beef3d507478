"""Activations and softmax as pure functions (the handout's Stage 3 and 5 API).

Every public function takes arrays, checks them and returns a new array; nothing is
cached.  Each one's arithmetic is an unchecked ``*_core`` function, which the module
versions in :mod:`nnlab.layers` (``ReLU``, ``Tanh``) and :mod:`nnlab.activations` (``Sigmoid``,
``LeakyReLU``, ``GELU``) call too: one formula, two faces.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from nnlab._checks import (
    as_float_array,
    constant_array,
    finite_output,
    require_finite,
    require_same_shape,
    zeros_like_cached,
)
from nnlab.errors import NnlabValueError


def row_max(z):
    """Maximum of every row of a 2-D array, shape (rows, 1).

    Why not ``z.max(axis=1)``: NumPy reduces a short trailing axis (10 classes) one row
    at a time, ~10 us for a 128 x 10 batch; reducing the transposed copy along its
    first axis is vectorised across rows and takes ~2.5 us.  Same numbers exactly.
    """
    if z.ndim == 2 and z.shape[1] <= 64:
        return np.ascontiguousarray(z.T).max(axis=0)[:, None]
    return z.max(axis=-1, keepdims=True)


def row_sum(z):
    """Sum of every row of a 2-D array, shape (rows, 1).

    Computed as one BLAS matrix-vector product with a vector of ones (about half the
    time of ``z.sum(axis=1)`` on a 128 x 10 batch); other arrays sum along the last axis.
    """
    if z.ndim == 2 and z.dtype.kind == "f":
        return (z @ constant_array((z.shape[1],), 1, z.dtype))[:, None]
    return z.sum(axis=-1, keepdims=True)


def _pair(x, dout, where: str):
    """``x`` and ``dout`` checked as a backward function's arguments: finite float arrays of one shape and dtype."""
    x = as_float_array(x, "x", where, finite=True)
    dout = as_float_array(dout, "dout", where, finite=True)
    require_same_shape(x, dout, ("x", "dout"), where)
    # mixed precision computes in the wider type: a float64 dout may lie beyond float32's range
    dtype = np.result_type(x, dout)
    return x.astype(dtype, copy=False), dout.astype(dtype, copy=False)


def _rowwise(core, *arrays):
    """``core(*arrays)`` for arrays of any shape, 0-d included (the cores write into scratch arrays, not scalars)."""
    shape = arrays[0].shape
    return core(*(a.reshape(-1) if a.ndim == 0 else a for a in arrays)).reshape(shape)


def relu_core(x, out=None):
    """``max(0, x)`` without checks; ``out=x`` rectifies in place.

    Compared against a cached array of zeros, not the scalar 0: NumPy's scalar path is
    not vectorised and takes about 3x as long, for the same bits.  (Arrays beyond a
    million elements use the scalar, so that no huge array of zeros is kept.)
    """
    zero = zeros_like_cached(x) if x.size <= 1 << 20 else 0
    return np.maximum(x, zero, out=out)


def relu_backward_core(x, dout, out=None):
    """``dout * (x > 0)`` without checks; ``x`` may be the ReLU's input or its output (same mask)."""
    return np.multiply(dout, x > 0, out=out)


def tanh_backward_core(t, dout, out=None):
    """``dout * (1 - t**2)`` without checks, from the tanh *output* ``t``; ``out=dout`` works in place."""
    slope = t * t
    np.subtract(1, slope, out=slope)
    return np.multiply(dout, slope, out=slope if out is None else out)


def relu(x):
    """Rectified linear unit, elementwise: ``max(0, x)``.

    Args:
        x: array of any shape.
    Returns:
        array of the same shape and float dtype as ``x``.
    """
    x = as_float_array(x, "x", "relu", finite=True)
    return relu_core(x)


def relu_backward(x, dout):
    """Gradient of the loss with respect to the ReLU's input.

    ``dx = dout * (x > 0)``: the upstream gradient passes where the input was
    positive and is blocked elsewhere.  At exactly ``x == 0`` the derivative is
    taken as 0, as in the handout's ``x > 0`` mask.

    Args:
        x: the ReLU's *input* (pre-activation), any shape.
        dout: upstream gradient, same shape as ``x``.
    Returns:
        ``dx`` with the shape of ``x`` and the dtype of ``dout``.
    """
    x, dout = _pair(x, dout, "relu_backward")
    return relu_backward_core(x, dout)


def tanh(x):
    """Hyperbolic tangent, elementwise; squashes values into (-1, 1).

    ``np.tanh`` is used rather than ``(e^x - e^-x)/(e^x + e^-x)``, which overflows
    for ``|x|`` above about 710.
    """
    x = as_float_array(x, "x", "tanh", finite=True)
    return np.tanh(x)


def tanh_backward(x, dout):
    """Gradient through tanh: ``dx = dout * (1 - tanh(x)**2)``.

    Args:
        x: the tanh's *input* (pre-activation), any shape.
        dout: upstream gradient, same shape as ``x``.
    Returns:
        ``dx`` with the shape of ``x``.
    """
    x, dout = _pair(x, dout, "tanh_backward")
    return _rowwise(tanh_backward_core, np.tanh(x), dout)


def softmax(logits):
    """Row-wise softmax: ``exp(z_i) / sum_j exp(z_j)`` over the last axis.

    The row maximum is subtracted first, which leaves the result unchanged but
    keeps ``exp`` from overflowing (logits of +-1e4 are fine).

    Args:
        logits: (batch, C) scores, or a single row of shape (C,); finite.
    Returns:
        probabilities of the same shape; each row sums to 1.
    Raises:
        ValueError: for NaN or +inf logits, a row of only -inf, or no classes (-inf beside a
            finite logit is a probability of 0).
    """
    z = as_float_array(logits, "logits", "softmax")
    if z.ndim == 0 or z.shape[-1] == 0:
        raise NnlabValueError(f"softmax: logits need at least one class along the last axis, got shape {z.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        p = z - row_max(z)  # a range beyond float max overflows here: reported below
        np.exp(p, out=p)
        sums = row_sum(p)
        p /= sums
    # NaN or +inf logits, or a row of only -inf, make their row's sum non-finite (-inf beside a finite
    # logit is a probability of 0, a finite result); a finite sum (>= 1: the row's largest entry is
    # exp(0)) leaves every entry finite, so the sums, a C-th of the output, are all that is scanned
    if not np.isfinite(sums).all():
        require_finite(z, "logits", "softmax")
        finite_output(p, "softmax")
    return p


def log_softmax(logits):
    """Row-wise ``log(softmax(logits))``, computed without taking ``log`` of 0.

    ``log_softmax(z) = z - max(z) - log(sum(exp(z - max(z))))``.  Used by the
    cross-entropy loss module so that a confident wrong answer gives a large but
    finite loss.
    """
    z = as_float_array(logits, "logits", "log_softmax", finite=True)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise NnlabValueError(f"log_softmax: logits need at least one class along the last axis, got shape {z.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = z - row_max(z)
        out = shifted - np.log(row_sum(np.exp(shifted)))
    return finite_output(out, "log_softmax")


# --- sigmoid, leaky ReLU, GELU (each: an unchecked core, then the checked pair) ---------------------------

def sigmoid_core(x, out=None):
    """``1 / (1 + exp(-x))`` without checks, never overflowing; ``out=x`` works in place.

    Computed as ``1 / (1 + z)`` for ``x >= 0`` and ``z / (1 + z)`` for ``x < 0``, with
    ``z = exp(-|x|)``: ``exp`` only ever sees a non-positive argument, so it cannot overflow,
    and a very negative ``x`` keeps its tiny value (4.2e-18 at x = -40) where
    ``1 - sigmoid(-x)`` would round to 0.
    """
    z = np.exp(-np.abs(x))
    numerator = np.where(x >= 0, 1, z)  # (read x before an in-place write over it)
    z += 1
    return np.divide(numerator, z, out=z if out is None else out)


def sigmoid_backward_core(s, dout, out=None):
    """``dout * s * (1 - s)`` without checks, from the sigmoid *output* ``s``; ``out=dout`` works in place."""
    slope = 1 - s
    slope *= s
    return np.multiply(dout, slope, out=slope if out is None else out)


def leaky_relu_core(x, negative_slope, out=None):
    """``x`` where ``x > 0``, else ``negative_slope * x``, without checks; ``out=x`` works in place."""
    return np.multiply(x, np.where(x > 0, 1, negative_slope).astype(x.dtype, copy=False), out=out)


def leaky_relu_backward_core(positive, dout, negative_slope, out=None):
    """``dout`` where the input was positive, else ``negative_slope * dout`` (``positive``: the mask ``x > 0``).

    The derivative at exactly 0 is ``negative_slope``, as in PyTorch (and as ReLU's is 0).
    """
    return np.multiply(dout, np.where(positive, 1, negative_slope).astype(dout.dtype, copy=False), out=out)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_CUBIC = 0.044715
GELU_FORMS = ("none", "tanh")


def _gelu_tanh_gate(x):
    """``sigmoid(2u)`` with ``u = sqrt(2/pi) (x + 0.044715 x^3)``: the tanh form's ``0.5 (1 + tanh(u))``.

    The two are equal; ``1 + tanh(u)`` loses every digit to cancellation once ``tanh(u)``
    is near -1 (x below about -5), the sigmoid does not.
    """
    with np.errstate(over="ignore"):  # x^3 beyond float max: the gate saturates at 0 or 1 all the same
        u = x * x
        u *= _GELU_CUBIC * x
        u += x
        u *= 2 * _SQRT_2_OVER_PI
    return sigmoid_core(u, out=u)


def gelu_core(x, approximate="none"):
    """GELU without checks: ``x * Phi(x)`` (exact), or its tanh approximation (``approximate="tanh"``).

    Exact: ``0.5 x (1 + erf(x / sqrt 2))``, computed as ``0.5 x erfc(-x / sqrt 2)``.  Tanh form
    (Hendrycks & Gimpel): ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, computed as
    ``x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))``.  Both are PyTorch's ``nn.GELU`` formulas; the
    rewriting keeps the small negative tail's digits, which ``1 + erf`` and ``1 + tanh`` cancel away
    (``tests/test_activations.py`` measures both against 1000-digit arithmetic).  ``erfc`` is SciPy's:
    a special function is something we take, not write.
    """
    gate = _gelu_tanh_gate(x) if approximate == "tanh" else scipy.special.erfc(x * -_INV_SQRT_2)
    gate *= x
    if approximate != "tanh":
        gate *= 0.5
    return gate


def gelu_backward_core(x, dout, approximate="none", out=None):
    """``dout * GELU'(x)`` without checks, from the GELU's *input* ``x``; ``out=dout`` works in place.

    Exact: ``GELU'(x) = Phi(x) + x phi(x)`` with ``phi`` the standard normal density.
    Tanh form, with ``s`` the gate above: ``s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 x^2)``
    (the same as ``0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)``, ``t = tanh(u)``).
    """
    if approximate == "tanh":
        # beyond |x| = 50 the gate is exactly 0 or 1 in float64 and the derivative exactly 0 or 1; clipping
        # keeps x^2 finite, so no inf * 0 turns a saturated unit's gradient into NaN
        xc = np.clip(x, -50, 50)
        gate = _gelu_tanh_gate(xc)
        slope = 1 - gate
        slope *= gate
        slope *= xc
        slope *= (2 * _SQRT_2_OVER_PI) * (1 + 3 * _GELU_CUBIC * (xc * xc))
        slope += gate
    else:
        with np.errstate(over="ignore"):  # x^2 beyond float max: exp(-inf) = 0, the density is 0
            density = np.exp(-0.5 * (x * x))
        density *= _INV_SQRT_2PI
        density *= x
        slope = scipy.special.erfc(x * -_INV_SQRT_2)
        slope *= 0.5
        slope += density
    return np.multiply(dout, slope, out=slope if out is None else out)


def sigmoid(x):
    """Logistic sigmoid, elementwise: ``1 / (1 + exp(-x))``, in (0, 1); never overflows.

    Args:
        x: array of any shape.
    Returns:
        array of the same shape and float dtype as ``x``.
    """
    x = as_float_array(x, "x", "sigmoid", finite=True)
    return _rowwise(sigmoid_core, x)


def sigmoid_backward(x, dout):
    """Gradient through the sigmoid: ``dx = dout * s * (1 - s)`` with ``s = sigmoid(x)``.

    Args:
        x: the sigmoid's *input* (pre-activation), any shape.
        dout: upstream gradient, same shape as ``x``.
    Returns:
        ``dx`` with the shape of ``x``.
    """
    x, dout = _pair(x, dout, "sigmoid_backward")
    return _rowwise(lambda x1, d1: sigmoid_backward_core(sigmoid_core(x1), d1), x, dout)


def negative_slope_value(negative_slope, where: str) -> float:
    """``negative_slope`` as a float, or an error naming ``where`` unless it is a finite number."""
    real = isinstance(negative_slope, (int, float, np.integer, np.floating)) and not isinstance(negative_slope, bool)
    if not real or not math.isfinite(float(negative_slope)):
        raise NnlabValueError(f"{where}: negative_slope must be a finite number, got {negative_slope!r}")
    return float(negative_slope)


def leaky_relu(x, negative_slope=0.01):
    """Leaky ReLU, elementwise: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise (PyTorch's default slope).

    Args:
        x: array of any shape.
        negative_slope: the slope left of 0 (finite).
    Returns:
        array of the same shape and float dtype as ``x``.
    """
    x = as_float_array(x, "x", "leaky_relu", finite=True)
    slope = negative_slope_value(negative_slope, "leaky_relu")
    return _rowwise(lambda x1: leaky_relu_core(x1, slope), x)


def leaky_relu_backward(x, dout, negative_slope=0.01):
    """Gradient through leaky ReLU: ``dx = dout`` where ``x > 0``, ``negative_slope * dout`` elsewhere.

    At exactly ``x == 0`` the derivative is ``negative_slope`` (PyTorch's choice; ReLU's is 0).

    Args:
        x: the leaky ReLU's *input*, any shape.
        dout: upstream gradient, same shape as ``x``.
        negative_slope: the slope left of 0.
    Returns:
        ``dx`` with the shape of ``x``.
    """
    x, dout = _pair(x, dout, "leaky_relu_backward")
    slope = negative_slope_value(negative_slope, "leaky_relu_backward")
    return _rowwise(lambda x1, d1: leaky_relu_backward_core(x1 > 0, d1, slope), x, dout)


def gelu_form(approximate, where: str) -> str:
    """``approximate`` if it names a GELU form (``"none"`` or ``"tanh"``), else an error naming ``where``."""
    if approximate not in GELU_FORMS:
        raise NnlabValueError(f"{where}: approximate must be 'none' (exact) or 'tanh', got {approximate!r}")
    return approximate


def gelu(x, approximate="none"):
    """Gaussian error linear unit, elementwise: ``x * Phi(x)``, ``Phi`` the standard normal CDF.

    Args:
        x: array of any shape.
        approximate: ``"none"`` (exact, PyTorch's default) or ``"tanh"`` (the tanh approximation).
    Returns:
        array of the same shape and float dtype as ``x``.
    """
    x = as_float_array(x, "x", "gelu", finite=True)
    form = gelu_form(approximate, "gelu")
    return _rowwise(lambda x1: gelu_core(x1, form), x)


def gelu_backward(x, dout, approximate="none"):
    """Gradient through GELU: ``dx = dout * (Phi(x) + x phi(x))`` (or the tanh form's derivative).

    Args:
        x: the GELU's *input*, any shape.
        dout: upstream gradient, same shape as ``x``.
        approximate: ``"none"`` or ``"tanh"``, as in the forward pass.
    Returns:
        ``dx`` with the shape of ``x``.
    """
    x, dout = _pair(x, dout, "gelu_backward")
    form = gelu_form(approximate, "gelu_backward")
    return _rowwise(lambda x1, d1: gelu_backward_core(x1, d1, form), x, dout)
