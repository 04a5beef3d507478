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

import inspect
import math
from dataclasses import dataclass, field

import numpy as np

from nnlab._checks import as_float_array
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import Module, Param

#: Parameter / gradient attribute pairs a layer written without nnlab (the handout's style) may hold.
DUCK_PARAMETERS = (("W", "dW"), ("b", "db"))


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
    if not isinstance(x, np.ndarray):
        raise NnlabTypeError(f"numerical_gradient: x must be the float64 NumPy array that f reads (it is nudged in "
                             f"place), got {type(x).__name__}; make it with np.array(..., dtype=float) first")
    if x.dtype != np.float64:
        if x.dtype.kind == "f":
            why = f"{x.dtype} rounding swamps the estimate"
        else:  # an integer (or other) array cannot even hold x + h
            why = (f"an array of dtype {x.dtype} cannot hold the nudged values x +/- h; make x with "
                   "np.array(..., dtype=float) and let f read that array")
        raise NnlabTypeError(f"numerical_gradient: x must be float64 (got {x.dtype}); {why}")
    _check_step(h, "numerical_gradient")
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


def _check_step(h, who: str) -> None:
    """Refuse a step that is not a positive finite number (0 divides by zero; a negative one flips the sign)."""
    if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)) or not math.isfinite(h) \
            or h <= 0:
        raise NnlabValueError(f"{who}: h must be a positive finite step such as 1e-6, got {h!r}")


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


class _DuckLayer(Module):
    """A layer written without nnlab seen as a Module: its ``forward``/``backward``, ``W``/``dW`` and ``b``/``db``."""

    def __init__(self, layer):
        self.layer = layer
        self.name = type(layer).__name__

    def forward(self, x):
        return np.asarray(self.layer.forward(x), dtype=np.float64)

    def backward(self, dout):
        dx = self.layer.backward(dout)
        return None if dx is None else np.asarray(dx, dtype=np.float64)

    def parameters(self) -> list[Param]:
        return [Param(self.layer, value, grad, decay=value == "W") for value, grad in DUCK_PARAMETERS
                if hasattr(self.layer, value) and hasattr(self.layer, grad)]


def _is_duck_layer(obj) -> bool:
    return callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))


def _check_module(module: Module, x, dout, h, tol, rng) -> GradcheckResult:
    net = getattr(module, "net", module)  # MLP's forward returns a tuple; check its Sequential
    for p in net.parameters():
        if not isinstance(p.value, np.ndarray) or p.value.dtype != np.float64:
            raise NnlabTypeError(f"gradcheck: parameters must be float64 arrays, {p.name} is "
                                 f"{getattr(p.value, 'dtype', type(p.value).__name__)}; convert them first "
                                 "(module.astype(np.float64) for an nnlab module)")
    x = _checked_input(x, "x")
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


def _checked_input(x, name: str) -> np.ndarray:
    """A finite float64 copy of ``x`` with at least one entry (an empty input would pass vacuously)."""
    x = as_float_array(x, name, "gradcheck", finite=True).astype(np.float64, copy=True)
    if x.size == 0:
        raise NnlabValueError(f"gradcheck: {name} is empty (shape {x.shape}); there is nothing to check")
    return x


def _name(obj) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _check_loss(loss, pred, target, h, tol) -> GradcheckResult:
    pred = _checked_input(pred, "pred")
    answer = loss(pred, target)
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise NnlabTypeError(f"gradcheck: {_name(loss)} returns a {type(answer).__name__}, not (value, grad); a "
                             f"loss is checked only with its gradient, e.g. nnlab.SoftmaxCrossEntropyLoss() or "
                             f"nnlab.MSELoss(), or pass a pair (f, f_backward)")
    grad = np.array(answer[1], dtype=np.float64, copy=True)
    numeric = numerical_gradient(lambda: loss(pred, target)[0], pred, h)
    return GradcheckResult({"pred": rel_error(grad, numeric)}, tol)


def _check_pair(pair, x, dout, h, tol, rng) -> GradcheckResult:
    f, f_backward = pair
    x = _checked_input(x, "x")
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
            * a layer written without nnlab: any object with ``forward(x)`` and
              ``backward(dout)`` (returning dL/dx, or ``None``), whose parameters, if
              any, are float64 arrays ``W``/``b`` with gradients ``dW``/``db``;
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
    _check_step(h, "gradcheck")
    if isinstance(obj, Module) or hasattr(obj, "net"):
        return _check_module(obj, x, dout, h, tol, rng)
    if _is_duck_layer(obj):
        return _check_module(_DuckLayer(obj), x, dout, h, tol, rng)
    if isinstance(obj, tuple) and len(obj) == 2 and all(callable(f) for f in obj):
        return _check_pair(obj, x, dout, h, tol, rng)
    if callable(obj):
        if target is None:
            if _takes_one_array(obj):
                raise NnlabValueError(f"gradcheck: {_name(obj)} is a function of one array; pass it with its "
                                      f"backward as a pair (f, f_backward), e.g. (nnlab.relu, nnlab.relu_backward)")
            raise NnlabValueError(f"gradcheck: checking the loss {_name(obj)} needs its target (target=...)")
        return _check_loss(obj, x, target, h, tol)
    raise NnlabTypeError(
        f"gradcheck: cannot check {type(obj).__name__}; pass a Module, a layer with forward/backward, a loss "
        "or a (f, f_backward) pair"
    )


def _takes_one_array(f) -> bool:
    """Whether ``f`` can be called with a single argument (a function such as relu, not a loss(pred, target))."""
    try:
        inspect.signature(f).bind(None)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): assume a loss, the case the message covered before
        return False
    return True
