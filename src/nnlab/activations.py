"""More activation modules: ``Sigmoid``, ``LeakyReLU``, ``GELU`` (PyTorch's names, defaults and formulas).

Each is a module over the unchecked cores in :mod:`nnlab.functional` (one formula, two
faces), follows the module protocol of :mod:`nnlab.layers`, behaves the same in training
and evaluation mode, and is registered for checkpoints.  What each backward reads decides
what it caches:

* ``Sigmoid`` reads its output (``s (1 - s)``), like ``Tanh``, and may overwrite its input;
* ``LeakyReLU`` reads only the sign of its input: it keeps that mask (one byte per value),
  may overwrite its input, and lets the next module overwrite its output;
* ``GELU`` reads its input: it never writes to it, and lets the next module overwrite its output.
"""

from __future__ import annotations

import numpy as np

from nnlab._checks import as_float_array
from nnlab.errors import NnlabValueError
from nnlab.functional import (
    gelu_backward_core,
    gelu_core,
    gelu_form,
    leaky_relu_backward_core,
    leaky_relu_core,
    negative_slope_value,
    sigmoid_backward_core,
    sigmoid_core,
)
from nnlab.layers import _Activation, register_module


@register_module
class Sigmoid(_Activation):
    """Logistic sigmoid as a module: ``1 / (1 + exp(-x))``; backward is ``dout * s * (1 - s)`` from the output.

    Shape: any -> the same shape.

    Example:
        >>> import numpy as np, nnlab
        >>> nnlab.Sigmoid().forward(np.zeros((1, 2)))
        array([[0.5, 0.5]])
    """

    def forward(self, x):
        """Return ``sigmoid(x)``; the input is never modified."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``dout * s * (1 - s)``."""
        return super().backward(dout)

    def _forward(self, x, inplace=False):
        self.out = sigmoid_core(x, out=x if inplace else None)
        return self.out

    def _backward(self, dout, inplace=False, need_dx=True):
        return sigmoid_backward_core(self.out, dout, out=dout if inplace else None)


class _ReadsInput(_Activation):
    """An activation whose backward reads something of its input (kept in ``_cache``), not its output."""

    keeps_output = False  # the next module may overwrite the output: backward does not read it

    def __init__(self):
        super().__init__()
        self._cache = None

    def _check_dout(self, dout) -> np.ndarray:
        if self._cache is None:
            raise self._not_run_yet()
        dout = as_float_array(dout, "dout", self._label(), finite=True)
        if dout.shape != self._cache.shape:
            raise NnlabValueError(f"{self!r}: backward expected dout of shape {self._cache.shape}, got {dout.shape}")
        return dout


@register_module
class LeakyReLU(_ReadsInput):
    """Leaky ReLU as a module: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: the slope left of 0 (PyTorch's default 0.01; any finite number).

    The derivative at exactly 0 is ``negative_slope``, as in PyTorch.  The layer keeps the
    mask ``x > 0`` rather than its output: with a negative slope the output's sign no
    longer tells where the input was positive.

    Shape: any -> the same shape.
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope_value(negative_slope, "LeakyReLU")

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def forward(self, x):
        """Return ``where(x > 0, x, negative_slope * x)``; the input is never modified."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``where(x > 0, dout, negative_slope * dout)``."""
        return super().backward(dout)

    def _forward(self, x, inplace=False):
        self._cache = x > 0
        return leaky_relu_core(x, self.negative_slope, out=x if inplace else None)

    def _backward(self, dout, inplace=False, need_dx=True):
        return leaky_relu_backward_core(self._cache, dout, self.negative_slope, out=dout if inplace else None)

    def config(self) -> dict:
        """``negative_slope``."""
        return {"negative_slope": self.negative_slope}

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """No arrays; checks the slope."""
        negative_slope_value(config["negative_slope"], "LeakyReLU")
        return {}


@register_module
class GELU(_ReadsInput):
    """Gaussian error linear unit as a module: ``x * Phi(x)``, exact or in its tanh approximation.

    Args:
        approximate: ``"none"`` (default, as in PyTorch: exact, through ``erf``) or
            ``"tanh"``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Backward is ``dout * (Phi(x) + x phi(x))`` (or the tanh form's derivative), from the
    cached input, which the layer never writes to.

    Shape: any -> the same shape.
    """

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = gelu_form(approximate, "GELU")

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"

    def forward(self, x):
        """Return ``gelu(x)``; the input is never modified."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``dout * GELU'(x)``."""
        return super().backward(dout)

    def _forward(self, x, inplace=False):
        self._cache = x  # read again by backward, so never overwritten, whatever ``inplace`` allows
        return gelu_core(x, self.approximate)

    def _backward(self, dout, inplace=False, need_dx=True):
        return gelu_backward_core(self._cache, dout, self.approximate, out=dout if inplace else None)

    def config(self) -> dict:
        """``approximate``."""
        return {"approximate": self.approximate}

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """No arrays; checks the form."""
        gelu_form(config["approximate"], "GELU")
        return {}


__all__ = ["GELU", "LeakyReLU", "Sigmoid"]
