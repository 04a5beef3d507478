"""Batch normalisation over the rows of a batch, as ``torch.nn.BatchNorm1d`` computes it (Ioffe & Szegedy, 2015).

Training mode normalises each feature with the batch's own mean and *biased* variance,
then scales and shifts it by the learned ``gamma`` and ``beta``; it also moves the
running estimates towards the batch's mean and *unbiased* variance.  Evaluation mode
normalises with those running estimates instead, so one row's output no longer depends on
the other rows of its batch.

The backward pass is the full one: in training mode the batch mean and variance are
functions of every row, so each row's gradient has two extra terms (``dx`` below); the
simplified ``dout * gamma / std``, which treats the statistics as constants, is right
only in evaluation mode (a test shows that gradcheck catches it in training mode).
"""

from __future__ import annotations

import math

import numpy as np

from nnlab._checks import NonFiniteError, as_float_array, constant_array, require_positive_int
from nnlab.errors import NnlabValueError
from nnlab.layers import Module, Param, register_module


def _number(value, name: str, upper: float) -> float:
    """``value`` as a float in (0, upper] (eps) or [0, upper] (momentum), or an error naming it."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if real else math.nan
    low_ok = v > 0 if name == "eps" else v >= 0
    if not (math.isfinite(v) and low_ok and v <= upper):
        want = "a finite number > 0" if name == "eps" else "a number in [0, 1]"
        raise NnlabValueError(f"BatchNorm1d: {name} must be {want}, got {value!r}")
    return v


@register_module
class BatchNorm1d(Module):
    """Batch normalisation of (batch, features) inputs, with learned scale ``gamma`` and shift ``beta``.

    Training mode, for each feature over the batch's N rows::

        mean = x.mean(0);  var = ((x - mean)**2).mean(0)          (biased, as PyTorch normalises)
        xhat = (x - mean) / sqrt(var + eps);  out = gamma * xhat + beta
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * N / (N - 1)   (unbiased)

    Evaluation mode: ``out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``.

    Args:
        num_features: width C of each input row.
        eps: added to the variance under the square root.
        momentum: weight of the newest batch in the running estimates, in [0, 1]
            (PyTorch's cumulative average, ``momentum=None``, is not offered).
        dtype: dtype of the parameters and running estimates.

    Attributes:
        gamma, beta: scale (ones) and shift (zeros), shape (C,); ``dgamma``, ``dbeta`` their
            gradient buffers, written in place by every backward.
        running_mean, running_var: the running estimates (zeros and ones at first), shape
            (C,); buffers, saved in checkpoints, never trained.

    Weight decay: ``gamma`` and ``beta`` are not decayed (``Param.decay`` is False), by
    the handout's rule that only weights are decayed.  PyTorch's optimizers would decay
    them unless they are put in a parameter group of their own; decaying ``gamma`` pulls the
    layer's output scale towards 0, which is what the normalisation is there to set.

    Shape:
        (N, C) -> (N, C).  Training needs N >= 2 (one row has no variance; PyTorch refuses
        it too); evaluation takes any N >= 1.

    Example:
        >>> import numpy as np, nnlab
        >>> bn = nnlab.BatchNorm1d(2)
        >>> bn.forward(np.array([[1.0, 10.0], [3.0, 30.0]]))
        array([[-0.999995  , -0.99999995],
               [ 0.999995  ,  0.99999995]])
    """

    #: backward reads its cached ``xhat``, not the output
    keeps_output = False

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float64):
        self.num_features = require_positive_int(num_features, "num_features", "BatchNorm1d")
        self.eps = _number(eps, "eps", math.inf)
        self.momentum = _number(momentum, "momentum", 1.0)
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise NnlabValueError(f"BatchNorm1d: dtype must be a float type, got {dtype}")
        self.gamma = np.ones(self.num_features, dtype)
        self.beta = np.zeros(self.num_features, dtype)
        self.dgamma = np.zeros_like(self.gamma)
        self.dbeta = np.zeros_like(self.beta)
        self.running_mean = np.zeros(self.num_features, dtype)
        self.running_var = np.ones(self.num_features, dtype)
        self.xhat = None
        self._inv_std = None
        self._batch_stats = None

    def reset_running_stats(self) -> None:
        """Running mean back to zeros and running variance to ones, in place."""
        self.running_mean[...] = 0
        self.running_var[...] = 1

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum})"

    def _label(self) -> str:
        return f"BatchNorm1d({self.num_features})"

    def parameters(self) -> list[Param]:
        """``[gamma, beta]`` with their gradients; neither is decayed."""
        return [Param(self, "gamma", "dgamma", decay=False), Param(self, "beta", "dbeta", decay=False)]

    def buffers(self) -> dict[str, np.ndarray]:
        """``running_mean`` and ``running_var`` (the live arrays)."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def astype(self, dtype) -> BatchNorm1d:
        """Convert the parameters, their gradients and the running estimates to ``dtype``; returns ``self``."""
        super().astype(dtype)
        self.running_mean = self.running_mean.astype(dtype)
        self.running_var = self.running_var.astype(dtype)
        return self

    def forward(self, x):
        """Normalise ``x`` (batch statistics while training, running ones in evaluation mode), scale and shift.

        In training mode this also updates ``running_mean`` and ``running_var``.
        """
        return super().forward(x)

    def backward(self, dout):
        """Write ``dgamma = sum(dout * xhat)``, ``dbeta = sum(dout)``; return dLoss/dx (the full gradient).

        In training mode ``dx = gamma / (N std) * (N dout - sum(dout) - xhat * sum(dout * xhat))``;
        in evaluation mode ``dx = gamma * dout / sqrt(running_var + eps)``.
        """
        return super().backward(dout)

    def _check_input(self, x) -> np.ndarray:
        x = as_float_array(x, "input", self._label())
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise NnlabValueError(f"{self._label()}: expected input of shape (batch, {self.num_features}), "
                                  f"got shape {x.shape}")
        return x

    def _check_dout(self, dout) -> np.ndarray:
        if self.xhat is None:
            raise self._not_run_yet()
        dout = as_float_array(dout, "dout", self._label(), finite=True)
        if dout.shape != self.xhat.shape:
            raise NnlabValueError(f"{self._label()}: backward expected dout of shape {self.xhat.shape}, "
                                  f"got {dout.shape}")
        self._ensure_grad_buffers()  # the core writes dgamma and dbeta in place
        return dout.astype(self.xhat.dtype, copy=False)

    def _forward(self, x, inplace=False):
        n, dtype = x.shape[0], x.dtype
        if self.training:
            if n < 2:  # checked in the core too: fit's last minibatch could be a single row
                raise NnlabValueError(f"{self._label()}: training mode needs more than one row per batch to "
                                      f"estimate a variance, got {n}")
            mean = self._mean(x)
            centred = np.subtract(x, mean, out=x if inplace else None)
            var = self._mean(centred * centred)
            if not np.isfinite(var).all():  # O(features); before the running estimates take it in
                raise self._non_finite_variance(mean, centred, var)
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * n / (n - 1)) * var
        else:
            centred = np.subtract(x, self.running_mean.astype(dtype, copy=False), out=x if inplace else None)
            var = self.running_var.astype(dtype, copy=False)
            if not (np.isfinite(var).all() and np.isfinite(self.running_mean).all()):
                raise self._non_finite_running_stats()
        inv_std = 1.0 / np.sqrt(var + self.eps)
        centred *= inv_std
        self.xhat, self._inv_std, self._batch_stats = centred, inv_std, self.training
        out = centred * self.gamma.astype(dtype, copy=False)
        out += self.beta.astype(dtype, copy=False)
        return out

    def _non_finite_variance(self, mean, centred, var) -> NonFiniteError:
        """The error for a batch whose variance is inf/NaN (else every output would be 0 and running_var inf)."""
        where = self._label()
        if not np.isfinite(mean).all():
            bad = np.flatnonzero(~np.isfinite(mean)).tolist()
            return NonFiniteError(f"{where}: the input holds NaN or inf (the batch mean of feature(s) {bad[:10]} is "
                                  "not finite)")
        bad = np.flatnonzero(~np.isfinite(var)).tolist()
        largest = float(np.max(np.abs(centred[:, bad])))
        return NonFiniteError(f"{where}: the batch variance of feature(s) {bad[:10]} overflowed to inf (inputs up "
                              f"to {largest:.3g} from their mean: too large for a {np.dtype(var.dtype)} square); "
                              "standardise the inputs (e.g. nnlab.standardize_features) first")

    def _non_finite_running_stats(self) -> NonFiniteError:
        """The error for evaluation with running estimates that hold inf/NaN (they would zero every output)."""
        bad = np.flatnonzero(~(np.isfinite(self.running_var) & np.isfinite(self.running_mean))).tolist()
        return NonFiniteError(f"{self._label()}: running_var/running_mean of feature(s) {bad[:10]} hold inf/NaN "
                              f"(running_var {self.running_var[bad[:3]].tolist()}), so evaluation mode cannot "
                              "normalise; retrain on standardised inputs, or call reset_running_stats()")

    @staticmethod
    def _mean(x):
        """Column means as one BLAS matrix-vector product (a vector of 1/N times ``x``)."""
        return constant_array((x.shape[0],), 1.0 / x.shape[0], x.dtype) @ x

    def _backward(self, dout, inplace=False, need_dx=True):
        xhat = self.xhat
        ones = constant_array((dout.shape[0],), 1, dout.dtype)
        np.matmul(ones, dout, out=self.dbeta)
        scratch = dout * xhat
        np.matmul(ones, scratch, out=self.dgamma)
        if not need_dx:
            return None
        gamma = self.gamma.astype(dout.dtype, copy=False)
        if not self._batch_stats:  # the statistics were constants: only the scale reaches x
            return np.multiply(dout, gamma * self._inv_std, out=dout if inplace else None)
        n = dout.shape[0]
        # dx = gamma * inv_std / N * (N dout - sum(dout) - xhat * sum(dout * xhat))
        np.multiply(xhat, self.dgamma.astype(dout.dtype, copy=False), out=scratch)
        dx = np.multiply(dout, n, out=dout if inplace else None)
        dx -= self.dbeta.astype(dout.dtype, copy=False)
        dx -= scratch
        dx *= gamma * (self._inv_std / n)
        return dx

    def config(self) -> dict:
        """``num_features``, ``eps`` and ``momentum`` (the dtype is the checkpoint's)."""
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

    @classmethod
    def from_config(cls, config: dict, dtype=np.float64) -> BatchNorm1d:
        """A fresh BatchNorm1d of ``config``'s width and constants."""
        return cls(**config, dtype=dtype)

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """``gamma``, ``beta``, ``running_mean``, ``running_var``, each (num_features,); checks the constants."""
        c = require_positive_int(config["num_features"], "num_features", "BatchNorm1d")
        _number(config["eps"], "eps", math.inf)
        _number(config["momentum"], "momentum", 1.0)
        return {"gamma": (c,), "beta": (c,), "running_mean": (c,), "running_var": (c,)}
