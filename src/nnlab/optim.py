"""Optimizers: plain, momentum and Nesterov SGD; Adam, AdamW, RMSprop (PyTorch's update rules and defaults).

An optimizer holds a model's :class:`~nnlab.layers.Param` list and, on ``step()``,
updates every parameter in place from the gradient its module's ``backward`` set.
It knows nothing about layers; its state (velocities, moments) lives here, not in
the layers.

Weight decay adds ``weight_decay * W`` to the gradient of weights only (biases are
never decayed), as PyTorch does; it equals the handout's L2 penalty with
``lam = weight_decay / 2``.  :class:`AdamW` instead *decouples* the decay: it shrinks each
weight by ``lr * weight_decay`` of itself before the Adam step, outside the moment
estimates (Loshchilov & Hutter, 2019).  "Weights" are the parameters whose
:class:`~nnlab.layers.Param` says ``decay=True``: ``Linear.W``, never a bias, nor
``BatchNorm1d``'s ``gamma`` and ``beta``.  (PyTorch decays every parameter of a group;
the parity tests give it two groups to compare like with like.)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from nnlab._checks import NonFiniteError, as_real_number
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import Param

# BLAS ``y += a * x``, from SciPy's bundled OpenBLAS (NumPy exposes no axpy of its own).  Loaded when
# nnlab is imported, not on the first step: a thread limit (threadpoolctl, as `nnlab bench` and parallel
# runs use) only reaches the BLAS libraries already loaded when it is set.
_AXPY = {np.dtype(t).char: get_blas_funcs("axpy", dtype=t) for t in (np.float32, np.float64)}


def _below_one(value, name: str, where: str) -> float:
    """A coefficient in [0, 1) (momentum, a moment's decay rate), or an error naming it."""
    value = _positive(value, name, where, allow_zero=True)
    if value >= 1:
        raise NnlabValueError(f"{where}: {name} must be below 1, got {value}")
    return value


def _positive(value, name: str, where: str, allow_zero=False) -> float:
    value = as_real_number(value, name, where)
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise NnlabValueError(f"{where}: {name} must be a finite number {bound}, got {value}")
    return value


def _kind(value) -> str:
    """A short description of what was passed, for messages: ``a list of ndarray``, ``a Linear module``."""
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {' and '.join(kinds)}" if kinds else f"an empty {type(value).__name__}"
    if callable(getattr(value, "parameters", None)):
        return f"a {type(value).__name__} module (call its .parameters())"
    if callable(value) and getattr(value, "__name__", "") == "parameters":
        return "the method .parameters itself (call it: .parameters())"
    return f"{type(value).__name__} {value!r}"


def checked_params(params, where: str, example: str | None = None) -> list[Param]:
    """``params`` as a list of :class:`~nnlab.layers.Param`, each once, or an error naming what was given.

    Why: an optimizer steps ``p.value`` from ``p.grad``; plain arrays (``[layer.W, layer.b]``)
    have no gradient attached, and a parameter listed twice would be stepped twice per step.
    """
    example = example or f"{where}(model.parameters(), lr=...)"
    expected = f"{where}: params must be the model's parameters, e.g. {example}; got "
    if callable(getattr(params, "parameters", None)) or callable(params) or isinstance(params, (str, bytes)):
        raise NnlabTypeError(expected + _kind(params))
    try:
        listed = list(params)
    except TypeError:
        raise NnlabTypeError(expected + _kind(params)) from None
    if not all(isinstance(p, Param) for p in listed):
        raise NnlabTypeError(expected + _kind(listed))
    seen = {}
    for i, p in enumerate(listed):
        key = (id(p.owner), p.name)
        if key in seen:
            raise NnlabValueError(f"{where}: parameter {p.name!r} of {type(p.owner).__name__} is listed twice "
                                  f"(positions {seen[key]} and {i}) and would be counted twice; pass each "
                                  f"parameter once, e.g. {example}")
        seen[key] = i
    return listed


class Optimizer:
    """Base class: keeps the parameter list; subclasses implement :meth:`step`."""

    def __init__(self, params, lr):
        self.params = checked_params(params, type(self).__name__)
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

    With ``nesterov=True`` the step looks ahead along the velocity, as PyTorch writes
    Nesterov momentum: ``v = m v + g; W -= lr * (g + m v)``.

    Args:
        params: ``model.parameters()``.
        lr: learning rate.
        momentum: heavy-ball momentum in [0, 1); 0 is the handout's plain update.
        weight_decay: adds ``weight_decay * W`` to each weight's gradient.
        nesterov: Nesterov momentum (needs ``momentum > 0``, as in PyTorch).
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        self.momentum = _below_one(momentum, "momentum", "SGD")
        self.weight_decay = _positive(weight_decay, "weight_decay", "SGD", allow_zero=True)
        if nesterov and not self.momentum:
            raise NnlabValueError(f"SGD: nesterov=True needs a momentum above 0, got momentum={momentum}")
        self.nesterov = bool(nesterov)
        self.velocity = [None] * len(self.params)

    def state_arrays(self) -> list[np.ndarray]:
        return [v for v in self.velocity if v is not None]

    def __repr__(self) -> str:
        nesterov = ", nesterov=True" if self.nesterov else ""
        return f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}{nesterov})"

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = self._grad(p, self.weight_decay)
            if self.momentum:
                v = self.velocity[i]
                if v is None:
                    v = self.velocity[i] = np.zeros_like(p.value)
                v *= self.momentum
                v += g
                if self.nesterov:  # W -= lr * (g + m v), as two fused updates: no temporary array
                    self._apply(i, p, g, self.lr)
                    self._apply(i, p, v, self.lr * self.momentum)
                    continue
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
        where = type(self).__name__  # (AdamW shares these checks)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise NnlabTypeError(f"{where}: betas must be a pair of numbers (b1, b2), got {betas!r}")
        b1, b2 = (as_real_number(b, "betas", where) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise NnlabValueError(f"{where}: betas must lie in [0, 1), got {betas}")
        self.betas = (b1, b2)
        self.eps = _positive(eps, "eps", where)
        self.weight_decay = _positive(weight_decay, "weight_decay", where, allow_zero=True)
        self.m = [np.zeros_like(p.value) for p in self.params]
        self.v = [np.zeros_like(p.value) for p in self.params]
        self.t = 0

    def state_arrays(self) -> list[np.ndarray]:
        return self.m + self.v

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay})"

    def step(self) -> None:
        self._adam_step(self.weight_decay)

    def _adam_step(self, l2: float) -> None:
        """One Adam update, with ``l2 * W`` added to each weight's gradient first."""
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for i, (p, m, v) in enumerate(zip(self.params, self.m, self.v)):
            g = self._grad(p, l2)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            # eps is scaled so the update equals lr * m_hat / (sqrt(v_hat) + eps) exactly
            denom = np.sqrt(v)
            denom += self.eps * math.sqrt(1 - b2**self.t)
            np.divide(m, denom, out=denom)
            self._apply(i, p, denom, step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Each step first shrinks every weight, ``W -= lr * weight_decay * W``, then takes the
    plain Adam step (:class:`Adam` without L2).  Unlike L2 inside Adam, the decay is not
    divided by ``sqrt(v_hat)``: every weight decays at the same rate, whatever its
    gradient history.  Biases and normalisation parameters are not decayed.

    Args:
        params: ``model.parameters()``.
        lr: step size.
        betas: decay rates of the two moment estimates.
        eps: added to the denominator.
        weight_decay: decoupled decay rate (PyTorch's default 0.01).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps)
        self.weight_decay = _positive(weight_decay, "weight_decay", "AdamW", allow_zero=True)

    def __repr__(self) -> str:
        return f"AdamW(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay})"

    def step(self) -> None:
        if self.weight_decay:
            shrink = 1 - self.lr * self.weight_decay
            for p in self.params:
                if p.decay:
                    p.value *= shrink
        self._adam_step(0.0)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton, 2012) as ``torch.optim.RMSprop`` computes it (not centred).

    ``s = alpha s + (1 - alpha) g^2``; ``W -= lr * g / (sqrt(s) + eps)``; with momentum
    ``b = momentum b + g / (sqrt(s) + eps)``; ``W -= lr * b``.

    Args:
        params: ``model.parameters()``.
        lr: learning rate (PyTorch's default 0.01).
        alpha: decay rate of the mean square, in [0, 1).
        eps: added to the denominator.
        weight_decay: adds ``weight_decay * W`` to each weight's gradient (L2, as in PyTorch).
        momentum: momentum of the scaled step, in [0, 1).
    """

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
        super().__init__(params, lr)
        self.alpha = _below_one(alpha, "alpha", "RMSprop")
        self.eps = _positive(eps, "eps", "RMSprop")
        self.weight_decay = _positive(weight_decay, "weight_decay", "RMSprop", allow_zero=True)
        self.momentum = _below_one(momentum, "momentum", "RMSprop")
        self.square_avg = [np.zeros_like(p.value) for p in self.params]
        self.momentum_buffer = [np.zeros_like(p.value) for p in self.params] if self.momentum else []

    def state_arrays(self) -> list[np.ndarray]:
        return self.square_avg + self.momentum_buffer

    def __repr__(self) -> str:
        return (f"RMSprop(lr={self.lr}, alpha={self.alpha}, eps={self.eps}, weight_decay={self.weight_decay}, "
                f"momentum={self.momentum})")

    def step(self) -> None:
        a = self.alpha
        for i, (p, s) in enumerate(zip(self.params, self.square_avg)):
            g = self._grad(p, self.weight_decay)
            s *= a
            s += (1 - a) * (g * g)
            scaled = np.sqrt(s)
            scaled += self.eps
            np.divide(g, scaled, out=scaled)
            if self.momentum:
                b = self.momentum_buffer[i]
                b *= self.momentum
                b += scaled
                scaled = b
            self._apply(i, p, scaled, self.lr)


#: Added to the total norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does.
CLIP_EPS = 1e-6


def clip_grad_norm(params, max_norm) -> float:
    """Scale every gradient in place so that their joint 2-norm is at most ``max_norm``; return the norm before.

    As ``torch.nn.utils.clip_grad_norm_``: ``total = sqrt(sum of ||g||^2 over every
    parameter's gradient)``; if ``max_norm / (total + 1e-6)`` is below 1, every gradient is
    multiplied by it (so a norm just above ``max_norm`` ends a hair below it); otherwise
    nothing changes.  A gradient holding NaN or inf is refused, naming the parameter, before any
    gradient is touched (PyTorch would multiply the NaN into every gradient; so did nnlab).  A
    total that overflows although every gradient is finite is computed again from scaled-down
    gradients, so the clip still applies.

    Args:
        params: :class:`~nnlab.layers.Param` objects, e.g. ``model.parameters()``.
        max_norm: the largest joint norm allowed, a finite number > 0.
    Returns:
        the joint norm of the gradients before clipping (float).
    """
    max_norm = _positive(max_norm, "max_norm", "clip_grad_norm")
    try:
        params = list(params)
        grads = [p.grad for p in params]
    except (TypeError, AttributeError):  # a model, plain arrays, ...: named only on this slow path
        checked_params(params, "clip_grad_norm", "clip_grad_norm(model.parameters(), max_norm)")
        raise
    with np.errstate(over="ignore", invalid="ignore"):
        total = math.sqrt(sum(float(np.dot(g.ravel(order="K"), g.ravel(order="K"))) for g in grads))
        if not math.isfinite(total):  # slow path: say which gradient, or rescale an overflowing sum of squares
            total = _finite_norm(params, grads)
        coef = max_norm / (total + CLIP_EPS)
        if coef < 1.0:
            for g in grads:
                g *= coef
    return total


def _finite_norm(params, grads) -> float:
    """The joint 2-norm of finite gradients whose squares overflowed, or an error naming a NaN/inf gradient."""
    for i, (p, g) in enumerate(zip(params, grads)):
        if not np.isfinite(g).all():
            bad = int(g.size - np.count_nonzero(np.isfinite(g)))
            raise NonFiniteError(f"clip_grad_norm: the gradient of parameter {i} ({type(p.owner).__name__}.{p.name}) "
                                 f"holds {bad} NaN/inf value(s); clipping "
                                 "would spread NaN into every gradient (training diverged: lower the learning rate, "
                                 "or check the model's backward with nnlab.gradcheck)")
    largest = max(float(np.max(np.abs(g))) for g in grads if g.size)
    return largest * math.sqrt(sum(float(np.sum(np.square(g / largest))) for g in grads))
