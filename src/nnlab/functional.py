"""Activations and softmax as pure functions (the handout's Stage 3 and 5 API).

Every public function takes arrays, checks them and returns a new array; nothing is
cached.  Each one's arithmetic is an unchecked ``*_core`` function, which the module
versions in :mod:`nnlab.layers` (``ReLU``, ``Tanh``) call too: one formula, two faces.
"""

from __future__ import annotations

import numpy as np

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
    x = as_float_array(x, "x", "relu_backward", finite=True)
    dout = as_float_array(dout, "dout", "relu_backward", finite=True)
    require_same_shape(x, dout, ("x", "dout"), "relu_backward")
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
    x = as_float_array(x, "x", "tanh_backward", finite=True)
    dout = as_float_array(dout, "dout", "tanh_backward", finite=True)
    require_same_shape(x, dout, ("x", "dout"), "tanh_backward")
    # the core writes into tanh's output: it must have the wider dtype, or a float64 dout would overflow float32
    t = np.tanh(x.astype(np.result_type(x, dout), copy=False))
    if x.ndim == 0:  # NumPy hands back 0-d results as scalars, which the in-place core cannot write into
        return tanh_backward_core(t.reshape(1), dout.reshape(1)).reshape(())
    return tanh_backward_core(t, dout)


def softmax(logits):
    """Row-wise softmax: ``exp(z_i) / sum_j exp(z_j)`` over the last axis.

    The row maximum is subtracted first, which leaves the result unchanged but
    keeps ``exp`` from overflowing (logits of +-1e4 are fine).

    Args:
        logits: (batch, C) scores, or a single row of shape (C,); finite.
    Returns:
        probabilities of the same shape; each row sums to 1.
    Raises:
        ValueError: for NaN/inf logits or no classes.
    """
    z = as_float_array(logits, "logits", "softmax")
    if z.ndim == 0 or z.shape[-1] == 0:
        raise NnlabValueError(f"softmax: logits need at least one class along the last axis, got shape {z.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        p = z - row_max(z)  # a range beyond float max overflows here: reported below
        np.exp(p, out=p)
        p /= row_sum(p)
    if not np.isfinite(p).all():  # NaN/inf logits make their row non-finite: one check covers both
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
