"""Losses: mean squared error, softmax cross-entropy, and the handout's L2 penalty.

Two flavours, one set of formulas:

* the handout's functions (``cross_entropy``, ``softmax_cross_entropy_backward``,
  ``mse``) return a value or a gradient, exactly as Stage 5 uses them;
* loss objects (:class:`MSELoss`, :class:`SoftmaxCrossEntropyLoss`) return
  ``(value, gradient)`` in one call, which is what :func:`nnlab.train.fit` needs.  Like the
  modules, each has a checked face (``loss(pred, target)``) over a pure, unchecked core
  (``loss._loss(pred, target, inplace=False)``) that keeps no state; ``fit`` calls the core,
  allowing it to overwrite the output it owns.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from nnlab._checks import (
    as_float_array,
    as_real_number,
    constant_array,
    finite_output,
    overflow_error,
    refuse_masked,
    require_finite,
    require_same_shape,
)
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.functional import row_max, row_sum
from nnlab.optim import checked_params
from nnlab.utils import one_hot

_minimum, _maximum = np.minimum.reduce, np.maximum.reduce


def require_integer_labels(labels: np.ndarray, where: str) -> None:
    """Raise ``NnlabTypeError`` unless 1-D ``labels`` are integers (class indices).

    Why: float or boolean labels are a common slip (``y`` read from a CSV as floats); without
    this check they would be taken for one-hot rows and fail with a shape error about something else.
    """
    if labels.dtype.kind in "iu":
        return
    what = "booleans" if labels.dtype.kind == "b" else f"dtype {labels.dtype}"
    sample = labels[:3].tolist() if labels.dtype.kind in "bfc" else None
    raise NnlabTypeError(f"{where}: class labels of shape (batch,) must be integers, got {what}"
                         + (f" ({sample}...)" if sample else "")
                         + "; pass y.astype(int), or one-hot rows of shape (batch, classes)")


def _targets_like(Y_true, probs: np.ndarray, where: str) -> np.ndarray:
    """Accept one-hot targets of the same shape, or integer class labels of shape (batch,).

    One-hot (or soft) rows must be probability distributions; that test also fails on NaN and inf,
    and only then is ``Y_true`` scanned to name them.
    """
    if type(Y_true) is np.ndarray and Y_true.shape == probs.shape and Y_true.dtype.char in "fd" \
            and _are_distributions(Y_true):  # the handout's one-hot float rows: one test, no conversions
        return Y_true
    refuse_masked(Y_true, "Y_true", where)  # np.asarray would drop the mask: the hidden labels would count
    Y = np.asarray(Y_true)
    if Y.ndim == 1 and probs.ndim == 2:
        require_integer_labels(Y, where)
        check_labels(Y, probs.shape, where)
        return one_hot(Y, probs.shape[1], dtype=probs.dtype)
    Y = as_float_array(Y, "Y_true", where)
    require_same_shape(probs, Y, ("probs", "Y_true"), where)
    if Y.size:
        _require_distributions(Y, "Y_true", where, "one-hot rows, or integer labels of shape (batch,)")
    return Y


@functools.lru_cache(maxsize=16)
def _log_floor(eps: float, dtype) -> np.floating:
    """The smallest probability ``cross_entropy`` feeds to ``log``, as a scalar of ``dtype``: ``eps``, raised to
    the dtype's smallest positive normal number (0 stays 0).  Made once per pair: ``np.finfo`` costs microseconds."""
    return dtype.type(max(eps, float(np.finfo(dtype).tiny)) if eps > 0 else 0)


@functools.lru_cache(maxsize=64)
def _row_test(classes: int, dtype) -> tuple[np.ndarray, float]:
    """What testing rows of ``classes`` probabilities needs, made once per width and dtype: the vector of ones
    :func:`~nnlab.functional.row_sum` multiplies by (the same cached array), and how far from 1 a row may sum,
    the rounding of its additions in ``dtype`` (``np.finfo`` costs microseconds)."""
    return constant_array((classes,), 1, dtype), max(1e-6, 16 * classes * float(np.finfo(dtype).eps))


def _are_distributions(arr: np.ndarray, given=None) -> bool:
    """Whether every row of 2-D ``arr`` is a probability distribution: entries >= 0, summing to 1 (to rounding).

    ``given``: the dtype the caller passed, when ``arr`` is a conversion of it to a wider one (float16
    becomes float32); the rounding allowed is then that of ``given``, which its values were rounded to.

    A minimum, a maximum and one matrix-vector product: NaN fails the first two (it compares false)
    and inf the maximum, so a ``True`` also says the array is finite, without another scan; entries
    of at most 1 also keep the row sum from overflowing.  The reductions are called as ufunc
    methods, which skips ``ndarray.min``'s Python wrapper: this runs four times per training step
    of the handout's loop, on arrays small enough for that wrapper to be a third of the cost.
    """
    if not (_minimum(arr, None) >= 0 and _maximum(arr, None) <= 1 + 1e-6):  # (NaN compares false)
        return False
    ones, tol = _row_test(arr.shape[1], arr.dtype)
    if given is not None and given != arr.dtype:
        # values rounded to ``given`` (then summed exactly enough in arr.dtype): each is off by at most half a unit
        # of its own size, so the sum by half a unit of 1, whatever the width; four units leave room for the sum
        # a float16 softmax itself computed.  (Not the width-scaled rule: at 64 classes that reached 1.)
        tol = max(tol, 4 * float(np.finfo(given).eps))
    sums = arr @ ones  # row_sum's product (np.dot rounds some strided layouts differently)
    return bool(1 - tol <= _minimum(sums) and _maximum(sums) <= 1 + tol)


def _require_distributions(arr: np.ndarray, name: str, where: str, expected: str, given=None) -> None:
    """Raise unless every row of 2-D ``arr`` is a probability distribution, naming the first row that is not
    (``given`` as for :func:`_are_distributions`)."""
    if _are_distributions(arr, given):
        return
    require_finite(arr, name, where)
    if arr.min() < 0:
        row = int(np.argmax((arr < 0).any(axis=1)))
        raise NnlabValueError(f"{where}: {name} must hold probabilities >= 0 ({expected}); row {row} holds "
                              f"{float(arr[row].min()):g}")
    with np.errstate(over="ignore"):  # entries near float max sum to inf, which the message says
        sums = arr @ _row_test(arr.shape[1], arr.dtype)[0]  # the sums the test refused
    row = int(np.argmax(np.abs(sums - 1)))
    # the sum in the shortest digits of its own precision that tell it from its neighbours (str, not format,
    # which prints a float32 through float64): a refused 1.000001 must not read "1"
    raise NnlabValueError(f"{where}: each row of {name} must sum to 1 ({expected}); row {row} sums to {sums[row]!s}")


def _float_dtype(values):
    """The floating dtype of an array the caller passed (None for anything else): its precision is its values'."""
    dtype = getattr(values, "dtype", None)
    return dtype if isinstance(dtype, np.dtype) and dtype.kind == "f" else None


def _check_probs(probs, where: str) -> np.ndarray:
    """``probs`` as a float array of probability rows, or an error saying what it holds instead."""
    if type(probs) is np.ndarray and probs.ndim == 2 and probs.dtype.char in "fd" and probs.size \
            and _are_distributions(probs):  # the common case ends here: a minimum, a maximum, one row sum
        return probs
    given = _float_dtype(probs)
    probs = as_float_array(probs, "probs", where)
    if probs.ndim != 2:
        raise NnlabValueError(f"{where}: probs must be 2-D (batch, classes), got shape {probs.shape}")
    if probs.shape[0] == 0:
        raise NnlabValueError(f"{where}: the batch is empty (0 rows)")
    if probs.shape[1] == 0:
        raise NnlabValueError(f"{where}: probs need at least one class, got shape {probs.shape}")
    if not _are_distributions(probs, given):
        if not (probs.min() >= 0 and probs.max() <= 1 + 1e-6):  # also false for NaN, which min and max pass on
            require_finite(probs, "probs", where)
            raise NnlabValueError(f"{where}: probs must lie in [0, 1] (pass softmax(logits), not logits)")
        _require_distributions(probs, "probs", where, "pass softmax(logits)", given)
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
        eps: smallest probability fed to ``log``, in [0, 1) (a positive eps below the smallest
            normal number of ``probs``' dtype is raised to it).  With ``eps=0`` nothing is clipped:
            a true class given probability 0 makes the loss ``inf`` (classes with target 0
            add nothing, as ``0 * log 0 = 0``).
    Returns:
        the loss as a Python float.
    """
    if type(eps) is not float or not 0 < eps < 1:  # a float in (0, 1), as the default, needs no more checks
        eps = as_real_number(eps[()] if isinstance(eps, np.ndarray) and eps.ndim == 0 else eps, "eps",
                             "cross_entropy")
        if not 0 <= eps < 1:
            raise NnlabValueError(f"cross_entropy: eps must be in [0, 1), got {eps!r}")
    probs = _check_probs(probs, "cross_entropy")
    Y = _targets_like(Y_true, probs, "cross_entropy")
    floor = _log_floor(eps, probs.dtype)
    if floor > 0:  # the usual case: log sees only positive numbers, and Y is checked finite, so the value is
        value = -float(np.vdot(Y, np.log(np.maximum(probs, floor)))) / probs.shape[0]  # finite (BLAS dot)
    else:  # eps = 0: log(0) = -inf where a probability is 0
        with np.errstate(divide="ignore"):
            logp = np.log(probs)
        logp[Y == 0] = 0  # 0 * log 0 counts as 0, not NaN
        value = -float(np.sum(Y * logp)) / probs.shape[0]
    return value + 0.0  # + 0.0 turns -0.0 into 0.0


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
    # both are rows of probabilities now (checked finite), so the gradient is finite: no scan of it
    grad = np.subtract(probs, Y, dtype=probs.dtype.type)  # (.type: native byte order)
    grad /= probs.shape[0]
    return grad


class Loss:
    """Base class of the loss objects: a checked ``__call__`` over a pure core ``_loss``.

    ``loss(pred, target) -> (value, dLoss/dpred)`` checks both arrays (O(1) shape checks;
    NaN/inf is found through the value, which is non-finite whenever an input is), then
    calls ``_loss(pred, target, inplace=False)``.  The core keeps no state: it computes the
    value and the gradient from its arguments alone, so one loss object can serve
    :func:`nnlab.train.fit` and an ``evaluate`` callback at the same time.  With
    ``inplace=True`` (``fit``'s own model output) the core may overwrite ``pred`` and
    return it as the gradient.

    A new loss implements ``_check_pred(pred) -> pred``, ``_check_target(target, pred) ->
    target`` and ``_loss(pred, target, inplace=False) -> (float, grad)``.
    """

    def __call__(self, pred, target):
        """Return ``(value, gradient with respect to pred)``, checked."""
        pred = self._check_pred(pred)
        target = self._check_target(target, pred)
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite value is reported below, in words
            value, grad = self._loss(pred, target, inplace=False)
        if not math.isfinite(value):
            self._explain_nonfinite(pred, target)
        return value, grad

    def _check_pred(self, pred) -> np.ndarray:
        return as_float_array(pred, "pred", type(self).__name__)

    def _check_target(self, target, pred: np.ndarray):
        raise NotImplementedError(f"{type(self).__name__} must implement _check_target(target, pred)")

    def _loss(self, pred, target, inplace=False):
        raise NotImplementedError(f"{type(self).__name__} must implement _loss(pred, target, inplace=False)")

    def _explain_nonfinite(self, pred, target) -> None:
        where = type(self).__name__
        require_finite(pred, self._names[0], where)
        if target.dtype.kind == "f":
            require_finite(target, self._names[1], where)
        raise overflow_error(where)  # finite inputs, non-finite value

    _names = ("pred", "target")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    """Mean squared error returning ``(value, dLoss/dyhat)``.

    ``L = mean((yhat - y)**2)`` over all elements; ``dL/dyhat = 2 (yhat - y) / size``.
    For a single output column this is the handout's ``(2 / bs) * err``.
    """

    _names = ("yhat", "y")

    def _check_pred(self, yhat) -> np.ndarray:
        yhat = as_float_array(yhat, "yhat", "MSELoss")
        if yhat.size == 0:
            raise NnlabValueError("MSELoss: the arrays are empty")
        return yhat

    def _check_target(self, y, yhat: np.ndarray) -> np.ndarray:
        y = as_float_array(y, "y", "MSELoss", dtype=yhat.dtype)
        require_same_shape(yhat, y, ("yhat", "y"), "MSELoss")
        return y

    def _loss(self, yhat, y, inplace=False):
        err = np.subtract(yhat, y, out=yhat if inplace else None)
        value = float(np.vdot(err, err)) / err.size
        err *= 2.0 / err.size
        return value, err


class SoftmaxCrossEntropyLoss(Loss):
    """Softmax followed by mean cross-entropy, on raw logits, returning ``(value, dlogits)``.

    The value is ``mean_i (log sum_c exp z_ic - z_i,y_i)``, computed after subtracting each
    row's maximum (no ``log`` of a probability rounded to zero, no overflowing ``exp``); the
    gradient is the fused ``(softmax(z) - Y) / batch``.  Targets may be integer labels
    (batch,) in ``[0, classes)`` -- the fast path, no one-hot matrix is built -- or one-hot
    (or any probability) rows (batch, classes).
    """

    _names = ("logits", "Y_true")

    def _check_pred(self, logits) -> np.ndarray:
        z = as_float_array(logits, "logits", "SoftmaxCrossEntropyLoss")
        if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
            raise NnlabValueError(
                f"SoftmaxCrossEntropyLoss: logits must be 2-D (batch >= 1, classes >= 1), got shape {z.shape}"
            )
        # a -inf logit off the true class still gives a finite value: scan the (small) logits themselves
        require_finite(z, "logits", "SoftmaxCrossEntropyLoss")
        return z

    def _check_target(self, Y_true, z: np.ndarray) -> np.ndarray:
        refuse_masked(Y_true, "Y_true", "SoftmaxCrossEntropyLoss")  # (np.asarray drops a mask)
        Y = np.asarray(Y_true)
        if Y.ndim == 1:
            require_integer_labels(Y, "SoftmaxCrossEntropyLoss")
            return check_labels(Y, z.shape, "SoftmaxCrossEntropyLoss")
        Y = as_float_array(Y, "Y_true", "SoftmaxCrossEntropyLoss", dtype=z.dtype)
        require_same_shape(z, Y, ("logits", "Y_true"), "SoftmaxCrossEntropyLoss")
        return Y

    def _loss(self, z, Y, inplace=False):
        if Y.ndim == 1:
            return _softmax_cross_entropy_labels(z, Y, inplace)
        return _softmax_cross_entropy_rows(z, Y, inplace)


def check_labels(labels: np.ndarray, shape: tuple, where: str) -> np.ndarray:
    """Integer class labels for a ``shape = (batch, classes)`` output: one per row, each in ``[0, classes)``.

    Why a check of its own: NumPy would silently wrap a label of -1 to the last class.
    """
    if labels.shape != shape[:1]:
        raise NnlabValueError(f"{where}: expected {shape[0]} integer labels for an output of shape {shape}, "
                              f"got labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= shape[1]):
        bad = labels[(labels < 0) | (labels >= shape[1])]
        raise NnlabValueError(f"{where}: labels must lie in [0, {shape[1]}), got {bad[:5].tolist()}")
    return labels


def _softmax_cross_entropy_labels(z, labels, inplace):
    """Core for integer labels: ``value = mean_i(log s_i - (z_i,y_i - m_i))``, ``grad = (p - onehot(y)) / B``.

    ``m_i`` is the row maximum and ``s_i = sum_c exp(z_ic - m_i)``.  The one-hot matrix is
    never built: ``1 / B`` is subtracted at each row's label, found by its flat index.
    """
    B, C = z.shape
    # a C-ordered result, so that its flat view below addresses the same memory
    own = inplace and z.flags.c_contiguous
    p = np.subtract(z, row_max(z), out=z if own else np.empty(z.shape, z.dtype))
    flat = p.reshape(-1)
    at_label = _row_starts(B, C) + labels
    shifted_true = flat[at_label]
    np.exp(p, out=p)
    sums = row_sum(p)
    value = float(np.log(sums).sum(dtype=np.float64) - shifted_true.sum(dtype=np.float64)) / B
    sums *= B
    p /= sums
    flat[at_label] -= 1.0 / B
    return value, p


@functools.lru_cache(maxsize=8)
def _row_starts(rows: int, cols: int) -> np.ndarray:
    """Flat index of each row's first element in a C-ordered (rows, cols) array: ``0, cols, 2 cols, ...``."""
    starts = np.arange(0, rows * cols, cols)
    starts.flags.writeable = False
    return starts


def _softmax_cross_entropy_rows(z, Y, inplace):
    """Core for target rows (one-hot or soft): ``value = -mean_i sum_c Y_ic log p_ic``, ``grad = (p - Y) / B``."""
    B = z.shape[0]
    logp = np.subtract(z, row_max(z), out=z if inplace else None)
    logp -= np.log(row_sum(np.exp(logp)))
    value = float(-(Y * logp).sum(dtype=np.float64) / B)
    grad = np.exp(logp, out=logp)
    grad -= Y
    grad /= B
    return value, grad


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
        lam = as_real_number(lam, "lam", "L2Penalty")
        if not np.isfinite(lam) or lam < 0:
            raise NnlabValueError(f"L2Penalty: lam must be a finite number >= 0, got {lam}")
        self.lam = lam

    def __repr__(self) -> str:
        return f"L2Penalty(lam={self.lam})"

    def __call__(self, params) -> float:
        """The penalty value for the given parameters (a list of :class:`~nnlab.layers.Param`)."""
        try:
            return float(self.lam * sum(np.sum(p.value * p.value) for p in params if p.decay))
        except (AttributeError, TypeError):  # checked only here, off fit's per-step path
            checked_params(params, "L2Penalty", "L2Penalty(lam)(model.parameters())")
            raise

    def backward(self, params) -> None:
        """Add ``2 * lam * W`` to the gradient of every weight."""
        if self.lam == 0:
            return
        try:
            for p in params:
                if p.decay:
                    p.grad += (2.0 * self.lam) * p.value
        except (AttributeError, TypeError):
            checked_params(params, "L2Penalty.backward", "L2Penalty(lam).backward(model.parameters())")
            raise
