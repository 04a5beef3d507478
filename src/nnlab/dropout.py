"""Dropout: inverted dropout, as ``torch.nn.Dropout`` computes it.

In training mode every value is kept with probability ``1 - p`` and scaled by
``1 / (1 - p)``, or zeroed; the expected output therefore equals the input, and in
evaluation mode the layer is the identity (nothing to rescale at test time).
"""

from __future__ import annotations

import math

import numpy as np

from nnlab._checks import as_float_array
from nnlab.errors import NnlabValueError
from nnlab.layers import Module, register_module


def check_probability(p, where: str = "Dropout", name: str = "p") -> float:
    """``p`` as a float in [0, 1], or an error naming ``where`` and ``name``."""
    real = isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool)
    if not real or not (math.isfinite(float(p)) and 0 <= float(p) <= 1):
        raise NnlabValueError(f"{where}: {name} must be a probability in [0, 1], got {p!r}")
    return float(p)


@register_module
class Dropout(Module):
    """Inverted dropout: ``out = x * mask / (1 - p)`` while training, ``out = x`` in evaluation mode.

    Args:
        p: probability of zeroing each value, in [0, 1] (PyTorch's default 0.5; ``p = 1``
            zeroes everything, as in PyTorch).
        rng: the ``numpy.random.Generator`` the masks are drawn from (seed it for
            repeatable runs); ``None`` uses the global ``np.random`` state, as
            :class:`~nnlab.layers.Linear` does.  Any object with a
            ``random(size, dtype)`` method will do (a test passes one that returns a fixed
            mask).

    Attributes:
        mask: the last training forward's multiplier, ``keep / (1 - p)`` (0 where dropped),
            in the input's dtype; ``None`` after an evaluation-mode forward.

    A value is kept when its uniform draw ``u`` satisfies ``u >= p``.  Backward is
    ``dout * mask`` (the identity in evaluation mode).  Checkpoints save ``p`` and the
    mode, not the generator: a loaded Dropout draws from the global state.

    Shape: any -> the same shape.

    Example:
        >>> import numpy as np, nnlab
        >>> drop = nnlab.Dropout(0.5, rng=np.random.default_rng(0))
        >>> sorted(set(drop.forward(np.ones((4, 4))).ravel().tolist()))
        [0.0, 2.0]
        >>> drop.eval().forward(np.ones((1, 2)))
        array([[1., 1.]])
    """

    #: backward reads the mask, not the output: the next module may overwrite the output
    keeps_output = False

    def __init__(self, p=0.5, rng=None):
        self.p = check_probability(p)
        self.rng = rng
        self.mask = None
        self._shape = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def forward(self, x):
        """Training mode: return ``x * mask / (1 - p)`` with a fresh mask; evaluation mode: a copy of ``x``."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``dout * mask / (1 - p)`` (training) or ``dout`` (evaluation), for the last forward's mode."""
        return super().backward(dout)

    def _forward(self, x, inplace=False):
        self._shape = x.shape
        if not self.training or self.p == 0:
            self.mask = None
            return x if inplace else x.copy()  # (never hand back the caller's array: the next module may write it)
        if self.rng is None:  # the global state, as the handout's np.random.seed(...) expects
            draw = np.random.random_sample(x.shape)
        else:
            draw = self.rng.random(x.shape, dtype=x.dtype)
        keep = draw >= self.p
        # p = 1 keeps nothing; PyTorch returns zeros there rather than dividing by 0
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        self.mask = np.multiply(keep, scale, dtype=x.dtype)
        return np.multiply(x, self.mask, out=x if inplace else None)

    def _backward(self, dout, inplace=False, need_dx=True):
        if self.mask is None:
            return dout if inplace else dout.copy()
        return np.multiply(dout, self.mask, out=dout if inplace else None)

    def _check_dout(self, dout) -> np.ndarray:
        if self._shape is None:
            raise self._not_run_yet()
        dout = as_float_array(dout, "dout", self._label(), finite=True)
        if dout.shape != self._shape:
            raise NnlabValueError(f"{self!r}: backward expected dout of shape {self._shape}, got {dout.shape}")
        return dout

    def config(self) -> dict:
        """``p`` (the generator is not saved)."""
        return {"p": self.p}

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """No arrays; checks ``p``."""
        check_probability(config["p"])
        return {}
