"""Gradient checking by central finite differences, for any module, loss or function pair.

The idea (handout, Stage 2): nudge one number by ``+h`` and ``-h``, and the change in
the loss divided by ``2h`` approximates its derivative with error ``O(h^2)``.  If the
hand-written backward pass agrees with that estimate to ~1e-7 in float64, it is right.

Usage on your own layer::

    >>> import numpy as np, nnlab
    >>> rng = np.random.default_rng(0)
    >>> result = nnlab.gradcheck(nnlab.Linear(3, 2, rng=rng), rng.normal(size=(4, 3)))
    >>> result.passed
    True

For a module, the scalar checked is ``L = sum(module.forward(x) * dout)`` with a
fixed random ``dout``, so ``dL/dout`` is ``dout`` and ``backward(dout)`` must return
``dL/dx`` and set every parameter gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnlab._checks import as_float_array
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import Module


def rel_error(a, b, tiny=1e-12) -> float:
    """Relative error of two arrays: ``||a - b|| / max(||a|| + ||b||, tiny)``.

    The norm form is used rather than an elementwise maximum: where the true
    gradient is exactly 0 (a ReLU that is off), finite differences leave ~1e-11 of
    rounding, and an elementwise ratio would call that a 100% error.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise NnlabValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), tiny))
    return value if np.isfinite(value) else float("inf")  # an overflowing comparison is a failed one


def numerical_gradient(f, x: np.ndarray, h=1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f()`` with respect to array ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored exactly.

    Args:
        f: a function of no arguments returning a float; it must read ``x``.
        x: float64 array (modified and restored).
        h: step size.
    Returns:
        array of ``x``'s shape with ``(f(x + h e_i) - f(x - h e_i)) / 2h``.
    """
    if x.dtype != np.float64:
        raise NnlabTypeError(
            f"numerical_gradient: x must be float64 (got {x.dtype}); float32 rounding swamps the estimate"
        )
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):  # by index, not through a flat view: x may be column-major (like Linear.W)
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@dataclass
class GradcheckResult:
    """Relative error of each analytic gradient against its finite-difference estimate.

    Attributes:
        errors: name (``"input"``, ``"l1.W"``, ...) -> relative error.
        tol: the pass threshold.
    """

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6

    @property
    def max_error(self) -> float:
        """The largest relative error."""
        return max(self.errors.values()) if self.errors else 0.0

    @property
    def passed(self) -> bool:
        """True when every relative error is at most ``tol``."""
        return self.max_error <= self.tol

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=5)
        rows = [f"  {k:<{width}}  rel. error {v:.2e}" for k, v in self.errors.items()]
        verdict = "PASS" if self.passed else "FAIL"
        return "\n".join([f"gradcheck {verdict} (max {self.max_error:.2e}, tol {self.tol:.0e})", *rows])


def _param_names(module: Module) -> list[str]:
    names, counts = [], {}
    for p in module.parameters():
        owner = getattr(p.owner, "name", None) or type(p.owner).__name__
        key = f"{owner}.{p.name}"
        counts[key] = counts.get(key, 0) + 1
        names.append(key if counts[key] == 1 else f"{key}#{counts[key]}")
    return names


def _check_module(module: Module, x, dout, h, tol, rng) -> GradcheckResult:
    net = getattr(module, "net", module)  # MLP's forward returns a tuple; check its Sequential
    for p in net.parameters():
        if p.value.dtype != np.float64:
            raise NnlabTypeError("gradcheck: parameters must be float64; call module.astype(np.float64) first")
    x = as_float_array(x, "x", "gradcheck", finite=True).astype(np.float64, copy=True)
    out = net.forward(x)
    dout = rng.standard_normal(out.shape) if dout is None else np.asarray(dout, dtype=np.float64)
    dx = net.backward(dout)
    params = net.parameters()
    analytic = {name: p.grad.copy() for name, p in zip(_param_names(net), params)}

    def objective() -> float:
        return float(np.sum(net.forward(x) * dout))

    result = GradcheckResult(tol=tol)
    if dx is not None:
        result.errors["input"] = rel_error(dx, numerical_gradient(objective, x, h))
    for (name, grad), p in zip(analytic.items(), params):
        result.errors[name] = rel_error(grad, numerical_gradient(objective, p.value, h))
    net.forward(x)  # leave the caches consistent with x
    return result


def _check_loss(loss, pred, target, h, tol) -> GradcheckResult:
    pred = as_float_array(pred, "pred", "gradcheck").astype(np.float64, copy=True)
    _, grad = loss(pred, target)
    grad = np.array(grad, copy=True)
    numeric = numerical_gradient(lambda: loss(pred, target)[0], pred, h)
    return GradcheckResult({"pred": rel_error(grad, numeric)}, tol)


def _check_pair(pair, x, dout, h, tol, rng) -> GradcheckResult:
    f, f_backward = pair
    x = as_float_array(x, "x", "gradcheck").astype(np.float64, copy=True)
    out = np.asarray(f(x))
    dout = rng.standard_normal(out.shape) if dout is None else np.asarray(dout, dtype=np.float64)
    analytic = np.asarray(f_backward(x, dout))
    numeric = numerical_gradient(lambda: float(np.sum(np.asarray(f(x)) * dout)), x, h)
    return GradcheckResult({"input": rel_error(analytic, numeric)}, tol)


def gradcheck(obj, x, target=None, dout=None, h=1e-6, tol=1e-6, seed=0) -> GradcheckResult:
    """Compare analytic gradients with central finite differences in float64.

    Args:
        obj: one of
            * a module (``Linear``, ``Sequential``, ``MLP``, your own ``Module``):
              checks dL/dx and every parameter gradient;
            * a loss object returning ``(value, grad)`` such as ``MSELoss()``
              (then ``target`` is required): checks dLoss/dpred;
            * a pair ``(f, f_backward)`` such as ``(relu, relu_backward)`` where
              ``f_backward(x, dout)`` returns dL/dx.
        x: the input, of any shape the module takes (rows, or images (N, C, H, W) for a
            ``Conv2d``); for a loss: the prediction / logits.
        target: targets, for a loss.
        dout: the upstream gradient; random normal when ``None``.
        h: finite-difference step.
        tol: largest relative error that passes (1e-6 is strict for float64).
        seed: seed of the random ``dout``.
    Returns:
        a :class:`GradcheckResult`; ``print`` it for a table, test ``.passed``.
    """
    rng = np.random.default_rng(seed)
    if isinstance(obj, Module) or hasattr(obj, "net"):
        return _check_module(obj, x, dout, h, tol, rng)
    if isinstance(obj, tuple) and len(obj) == 2 and all(callable(f) for f in obj):
        return _check_pair(obj, x, dout, h, tol, rng)
    if callable(obj):
        if target is None:
            raise NnlabValueError("gradcheck: checking a loss needs its target")
        return _check_loss(obj, x, target, h, tol)
    raise NnlabTypeError(
        f"gradcheck: cannot check {type(obj).__name__}; pass a Module, a loss or a (f, f_backward) pair"
    )
