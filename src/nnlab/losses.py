"""Losses: mean squared error, softmax cross-entropy, and the handout's L2 penalty.

Two flavours, one set of formulas:

* the handout's functions (``cross_entropy``, ``softmax_cross_entropy_backward``,
  ``mse``) return a value or a gradient, exactly as Stage 5 uses them;
* loss objects (:class:`MSELoss`, :class:`SoftmaxCrossEntropyLoss`) return
  ``(value, gradient)`` in one call, which is what :func:`nnlab.train.fit` needs.
"""

from __future__ import annotations

import numpy as np

from nnlab._checks import as_float_array, finite_output, require_same_shape
from nnlab.errors import NnlabValueError
from nnlab.functional import log_softmax, row_max, row_sum
from nnlab.utils import one_hot


def _targets_like(Y_true, probs: np.ndarray, where: str) -> np.ndarray:
    """Accept one-hot targets of the same shape, or integer class labels of shape (batch,)."""
    Y = np.asarray(Y_true)
    if Y.ndim == 1 and probs.ndim == 2 and Y.dtype.kind in "iu" and Y.shape[0] == probs.shape[0]:
        return one_hot(Y, probs.shape[1], dtype=probs.dtype)
    Y = as_float_array(Y, "Y_true", where, finite=True)
    require_same_shape(probs, Y, ("probs", "Y_true"), where)
    return Y


def _check_probs(probs, where: str) -> np.ndarray:
    probs = as_float_array(probs, "probs", where, finite=True)
    if probs.ndim != 2:
        raise NnlabValueError(f"{where}: probs must be 2-D (batch, classes), got shape {probs.shape}")
    if probs.size and (probs.min() < 0 or probs.max() > 1 + 1e-6):
        raise NnlabValueError(f"{where}: probs must lie in [0, 1] (pass softmax(logits), not logits)")
    return probs


def mse(yhat, y) -> float:
    """Mean squared error ``mean((yhat - y)**2)`` over every element."""
    yhat = as_float_array(yhat, "yhat", "mse", finite=True)
    y = as_float_array(y, "y", "mse", finite=True)
    require_same_shape(yhat, y, ("yhat", "y"), "mse")
    if yhat.size == 0:
        raise NnlabValueError("mse: the arrays are empty")
    with np.errstate(over="ignore", invalid="ignore"):
        err = yhat - y
        value = np.mean(err * err)
    return float(finite_output(value, "mse"))


def cross_entropy(probs, Y_true, eps=1e-9) -> float:
    """Mean negative log-likelihood of the true classes.

    ``CE = -(1/B) * sum_i sum_c Y[i, c] * log(probs[i, c])``.  Probabilities are
    clipped below at ``eps`` so that a probability of exactly 0 gives a large,
    finite loss instead of ``inf``; a perfect prediction gives exactly 0.

    Args:
        probs: (batch, C) predicted probabilities (e.g. from ``softmax``).
        Y_true: (batch, C) one-hot targets, or (batch,) integer labels.
        eps: smallest probability fed to ``log``.
    Returns:
        the loss as a Python float.
    """
    probs = _check_probs(probs, "cross_entropy")
    Y = _targets_like(Y_true, probs, "cross_entropy")
    if probs.shape[0] == 0:
        raise NnlabValueError("cross_entropy: the batch is empty (0 rows)")
    logp = np.log(np.clip(probs, eps, None))
    return float(-(Y * logp).sum() / probs.shape[0]) + 0.0  # + 0.0 turns -0.0 into 0.0


def softmax_cross_entropy_backward(probs, Y_true):
    """Gradient of mean cross-entropy with respect to the logits: ``(probs - Y) / batch``.

    This fused form is why softmax and cross-entropy are paired: the softmax
    Jacobian and the ``1/p`` of the log cancel (see REPORT.md, Stage 5).

    Args:
        probs: (batch, C) softmax output.
        Y_true: (batch, C) one-hot targets, or (batch,) integer labels.
    Returns:
        (batch, C) gradient, dtype of ``probs``.
    """
    probs = _check_probs(probs, "softmax_cross_entropy_backward")
    Y = _targets_like(Y_true, probs, "softmax_cross_entropy_backward")
    return ((probs - Y) / max(probs.shape[0], 1)).astype(probs.dtype, copy=False)


class MSELoss:
    """Mean squared error returning ``(value, dLoss/dyhat)``.

    ``L = mean((yhat - y)**2)`` over all elements; ``dL/dyhat = 2 (yhat - y) / size``.
    For a single output column this is the handout's ``(2 / bs) * err``.
    """

    #: Check inputs on every call; :func:`nnlab.train.fit` turns it off (it checked its data once).
    validate = True

    def __call__(self, yhat, y):
        if not self.validate:
            err = yhat - y
            value = float(np.vdot(err, err)) / err.size
            err *= 2.0 / err.size
            return value, err
        yhat = as_float_array(yhat, "yhat", "MSELoss", finite=True)
        y = as_float_array(y, "y", "MSELoss", dtype=yhat.dtype, finite=True)
        require_same_shape(yhat, y, ("yhat", "y"), "MSELoss")
        if yhat.size == 0:
            raise NnlabValueError("MSELoss: the arrays are empty")
        with np.errstate(over="ignore", invalid="ignore"):
            err = yhat - y
            value = float(finite_output(np.mean(err * err), "MSELoss"))
        err *= 2.0 / max(err.size, 1)
        return value, err

    def __repr__(self) -> str:
        return "MSELoss()"


class SoftmaxCrossEntropyLoss:
    """Softmax followed by mean cross-entropy, on raw logits, returning ``(value, dlogits)``.

    The value is computed with ``log_softmax`` (no ``log`` of a rounded-to-zero
    probability), the gradient with the fused ``(softmax - Y) / batch``.
    Targets may be one-hot (batch, C) or integer labels (batch,).
    After a call, ``self.probs`` holds the softmax probabilities.
    """

    validate = True

    def __init__(self):
        """No settings; ``probs`` is filled by each call."""
        self.probs = None

    def __call__(self, logits, Y_true):
        if not self.validate and Y_true.ndim == 1:
            return self._fused_labels(logits, Y_true)
        z = as_float_array(logits, "logits", "SoftmaxCrossEntropyLoss", finite=True)
        if z.ndim != 2 or z.shape[0] == 0:
            raise NnlabValueError(
                f"SoftmaxCrossEntropyLoss: logits must be 2-D (batch >= 1, classes), got shape {z.shape}"
            )
        Y = _targets_like(Y_true, z, "SoftmaxCrossEntropyLoss")
        logp = log_softmax(z)
        value = float(-(Y * logp).sum() / z.shape[0])
        probs = np.exp(logp)
        self.probs = probs
        grad = probs - Y
        grad /= z.shape[0]
        return value, grad

    def _fused_labels(self, z, labels):
        """fit's path for integer labels: softmax in place on the (owned) logits, no one-hot matrix.

        ``value = (sum_i log s_i - sum_i z_i,y_i) / B`` with ``s_i`` the row sums of
        ``exp(z - max)``; the gradient is ``(p - onehot(y)) / B``, made by subtracting 1
        at each row's label.
        """
        B = z.shape[0]
        rows = np.arange(B)
        z -= row_max(z)
        true_logit = z[rows, labels].sum(dtype=np.float64)
        np.exp(z, out=z)
        sums = row_sum(z)
        value = float((np.log(sums).sum(dtype=np.float64) - true_logit) / B)
        z /= sums
        self.probs = z
        z[rows, labels] -= 1
        z /= B
        return value, z

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropyLoss()"


class L2Penalty:
    """The handout's L2 regularisation: ``lam * sum(W**2)`` over weights, never biases.

    Its gradient ``2 * lam * W`` is *added* to each weight's gradient by
    :meth:`backward`, after the data loss's backward pass has set it.

    Note: this is the handout's convention.  PyTorch's ``weight_decay=wd`` and
    Keras's ``L2(l)`` on the same loss correspond to ``lam = wd / 2`` and
    ``lam = l`` respectively.

    Args:
        lam: regularisation strength, >= 0.
    """

    def __init__(self, lam: float):
        """Set the strength ``lam`` (a finite number >= 0)."""
        lam = float(lam)
        if not np.isfinite(lam) or lam < 0:
            raise NnlabValueError(f"L2Penalty: lam must be a finite number >= 0, got {lam}")
        self.lam = lam

    def __repr__(self) -> str:
        return f"L2Penalty(lam={self.lam})"

    def __call__(self, params) -> float:
        """The penalty value for the given parameters (a list of :class:`~nnlab.layers.Param`)."""
        return float(self.lam * sum(np.sum(p.value * p.value) for p in params if p.decay))

    def backward(self, params) -> None:
        """Add ``2 * lam * W`` to the gradient of every weight."""
        if self.lam == 0:
            return
        for p in params:
            if p.decay:
                p.grad += (2.0 * self.lam) * p.value
