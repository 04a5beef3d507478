"""Optimizers: plain/momentum SGD and Adam.

An optimizer holds a model's :class:`~nnlab.layers.Param` list and, on ``step()``,
updates every parameter in place from the gradient its module's ``backward`` set.
It knows nothing about layers; its state (velocities, moments) lives here, not in
the layers.

Weight decay adds ``weight_decay * W`` to the gradient of weights only (biases are
never decayed), as PyTorch does; it equals the handout's L2 penalty with
``lam = weight_decay / 2``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from nnlab._checks import as_real_number
from nnlab.errors import NnlabTypeError, NnlabValueError

# BLAS ``y += a * x``, from SciPy's bundled OpenBLAS (NumPy exposes no axpy of its own).  Loaded when
# nnlab is imported, not on the first step: a thread limit (threadpoolctl, as `nnlab bench` and parallel
# runs use) only reaches the BLAS libraries already loaded when it is set.
_AXPY = {np.dtype(t).char: get_blas_funcs("axpy", dtype=t) for t in (np.float32, np.float64)}


def _positive(value, name: str, where: str, allow_zero=False) -> float:
    value = as_real_number(value, name, where)
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise NnlabValueError(f"{where}: {name} must be a finite number {bound}, got {value}")
    return value


class Optimizer:
    """Base class: keeps the parameter list; subclasses implement :meth:`step`."""

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise NnlabValueError(f"{type(self).__name__}: got an empty parameter list")
        self.lr = _positive(lr, "lr", type(self).__name__)
        self._scratch = [None] * len(self.params)

    def step(self) -> None:
        """Update every parameter from its current gradient."""
        raise NotImplementedError

    def state_arrays(self) -> list[np.ndarray]:
        """The optimizer's own arrays (velocities, moments), for housekeeping such as denormal flushing."""
        return []

    def _apply(self, i, p, update, scale) -> None:
        """``W -= scale * update``, in place.

        Contiguous float32/float64 arrays of one layout go through BLAS ``axpy`` (one fused pass, ~2x
        faster than multiply-then-subtract on a 100k-weight layer, and less call overhead
        on small ones); anything else through a reused buffer, so no new array is made per step.
        """
        W = p.value
        axpy = _AXPY.get(W.dtype.char)
        if axpy is not None and W.dtype == update.dtype and W.strides == update.strides \
                and (W.flags.c_contiguous or W.flags.f_contiguous):
            flat = W.ravel(order="K")  # a view, in memory order (the same order for both: same strides)
            out = axpy(update.ravel(order="K"), flat, a=-scale)
            if out is not flat:  # (the wrapper copies an array BLAS cannot take as it is, e.g. a misaligned one)
                W[...] = out.reshape(W.shape, order="F" if W.flags.f_contiguous and not W.flags.c_contiguous else "C")
            return
        buf = self._scratch[i]
        if buf is None or buf.shape != update.shape or buf.dtype != W.dtype:
            buf = self._scratch[i] = np.empty_like(W)
        np.multiply(update, scale, out=buf)
        W -= buf

    def _grad(self, p, weight_decay: float) -> np.ndarray:
        if weight_decay and p.decay:
            return p.grad + weight_decay * p.value
        return p.grad


class SGD(Optimizer):
    """Stochastic gradient descent: ``W -= lr * g``, or with momentum ``v = m v + g; W -= lr * v``.

    Args:
        params: ``model.parameters()``.
        lr: learning rate.
        momentum: heavy-ball momentum in [0, 1); 0 is the handout's plain update.
        weight_decay: adds ``weight_decay * W`` to each weight's gradient.
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = _positive(momentum, "momentum", "SGD", allow_zero=True)
        if self.momentum >= 1:
            raise NnlabValueError(f"SGD: momentum must be below 1, got {momentum}")
        self.weight_decay = _positive(weight_decay, "weight_decay", "SGD", allow_zero=True)
        self.velocity = [None] * len(self.params)

    def state_arrays(self) -> list[np.ndarray]:
        return [v for v in self.velocity if v is not None]

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay})"

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = self._grad(p, self.weight_decay)
            if self.momentum:
                v = self.velocity[i]
                if v is None:
                    v = self.velocity[i] = np.zeros_like(p.value)
                v *= self.momentum
                v += g
                g = v
            self._apply(i, p, g, self.lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments.

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``W -= lr * m_hat / (sqrt(v_hat) + eps)``.

    Args:
        params: ``model.parameters()``.
        lr: step size.
        betas: decay rates of the two moment estimates.
        eps: added to the denominator.
        weight_decay: adds ``weight_decay * W`` to each weight's gradient (L2, as in
            ``torch.optim.Adam``).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise NnlabTypeError(f"Adam: betas must be a pair of numbers (b1, b2), got {betas!r}")
        b1, b2 = (as_real_number(b, "betas", "Adam") for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise NnlabValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.betas = (b1, b2)
        self.eps = _positive(eps, "eps", "Adam")
        self.weight_decay = _positive(weight_decay, "weight_decay", "Adam", allow_zero=True)
        self.m = [np.zeros_like(p.value) for p in self.params]
        self.v = [np.zeros_like(p.value) for p in self.params]
        self.t = 0

    def state_arrays(self) -> list[np.ndarray]:
        return self.m + self.v

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay})"

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for i, (p, m, v) in enumerate(zip(self.params, self.m, self.v)):
            g = self._grad(p, self.weight_decay)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            # eps is scaled so the update equals lr * m_hat / (sqrt(v_hat) + eps) exactly
            denom = np.sqrt(v)
            denom += self.eps * math.sqrt(1 - b2**self.t)
            np.divide(m, denom, out=denom)
            self._apply(i, p, denom, step_size)
