"""The module protocol and the layers built on it: ``Linear``, ``ReLU``, ``Tanh``, ``Sequential``.

Every module has

* ``forward(x)``: computes the output and caches what ``backward`` needs;
* ``backward(dout) -> dx``: given dLoss/dOutput, *sets* (never adds to) the
  gradients of its parameters and returns dLoss/dInput;
* ``parameters()``: a list of :class:`Param`, each pairing a parameter array with
  its gradient (the handout's ``W``/``dW`` and ``b``/``db``).

An optimizer updates any model through ``parameters()`` alone, and
:func:`nnlab.gradcheck.gradcheck` checks any model the same way.
"""

from __future__ import annotations

import math

import numpy as np

from nnlab._checks import as_float_array, finite_output, require_finite, require_positive_int
from nnlab.errors import NnlabRuntimeError, NnlabTypeError, NnlabValueError


class Param:
    """A parameter array paired with its gradient, both read live from the owning module.

    Attributes:
        owner: the module holding the arrays.
        name: attribute name of the parameter, e.g. ``"W"``.
        grad_name: attribute name of its gradient, e.g. ``"dW"``.
        decay: whether L2 regularisation / weight decay applies (weights yes, biases no,
            as in the handout: "only the weights (W) are regularized, not the biases").
    """

    __slots__ = ("owner", "name", "grad_name", "decay")

    def __init__(self, owner, name: str, grad_name: str, decay: bool):
        self.owner = owner
        self.name = name
        self.grad_name = grad_name
        self.decay = decay

    @property
    def value(self) -> np.ndarray:
        """The parameter array (update it in place, e.g. ``p.value -= lr * p.grad``)."""
        return getattr(self.owner, self.name)

    @value.setter
    def value(self, new) -> None:
        setattr(self.owner, self.name, new)

    @property
    def grad(self) -> np.ndarray:
        """The gradient set by the owner's last ``backward``."""
        return getattr(self.owner, self.grad_name)

    @grad.setter
    def grad(self, new) -> None:
        setattr(self.owner, self.grad_name, new)

    def __repr__(self) -> str:
        return f"Param({type(self.owner).__name__}.{self.name}, shape={self.value.shape})"


class Module:
    """Base class of every layer and model: forward, backward, parameters.

    Subclasses override :meth:`forward` and :meth:`backward`, and
    :meth:`parameters` when they hold parameters.  Calling a module calls
    ``forward``.
    """

    #: Check every input (dtype, shape, NaN/inf) and never overwrite arrays the caller holds.
    #: :func:`nnlab.train.fit` turns this off while it trains: it checks its data once, and the
    #: layers may then reuse their gradient buffers and work in place on their own temporaries.
    validate = True

    def forward(self, x):
        """Compute the output for input ``x`` and cache what ``backward`` needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, dout):
        """Given dLoss/dOutput, set parameter gradients and return dLoss/dInput."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")

    def parameters(self) -> list[Param]:
        """The module's parameters paired with their gradients (empty for activations)."""
        return []

    def __call__(self, x):
        return self.forward(x)

    def astype(self, dtype) -> Module:
        """Convert every parameter and gradient to ``dtype`` in place; returns ``self``."""
        for p in self.parameters():
            p.value = p.value.astype(dtype)
            p.grad = p.grad.astype(dtype)
        return self

    def save(self, path, extra=None):
        """Write this model to ``path`` (an ``.npz`` checkpoint, atomically); see :mod:`nnlab.checkpoint`."""
        from nnlab.checkpoint import save

        return save(self, path, extra)

    @property
    def dtype(self):
        """The dtype of the module's parameters (float64 when it has none)."""
        params = self.parameters()
        return params[0].value.dtype if params else np.dtype(np.float64)

    def _not_run_yet(self) -> RuntimeError:
        return NnlabRuntimeError(f"{self!r}: backward() was called before forward(); run forward(x) first")


def _glorot_limit(in_dim: int, out_dim: int) -> float:
    return math.sqrt(6.0 / (in_dim + out_dim))


class Linear(Module):
    """Fully connected layer: ``out = x @ W.T + b`` (the handout's Stage 2 layer).

    Args:
        in_dim: width of each input row.
        out_dim: width of each output row.
        dtype: parameter dtype, float64 by default (use float32 for speed).
        init: ``"xavier"`` (Glorot uniform, the handout's choice, good for tanh and
            linear nets) or ``"he"`` (He uniform, ``sqrt(6 / in_dim)``, suited to ReLU).
        rng: a ``numpy.random.Generator``; when ``None`` the global ``np.random``
            state is used, so ``np.random.seed(42)`` makes the handout's code repeatable.
        name: optional label used in error messages (``MLP`` names its layers l1, l2).

    Attributes:
        W: weights, shape (out_dim, in_dim) -- the PyTorch layout.
        b: bias, shape (out_dim,), initialised to zeros.
        dW, db: gradients from the last ``backward``, same shapes as ``W`` and ``b``.
        x: the input cached by the last ``forward``.

    Shape:
        forward: (batch, in_dim) -> (batch, out_dim); a single row (in_dim,) -> (out_dim,).
        backward: (batch, out_dim) -> (batch, in_dim); a flat list or 1-D array is one row.

    Example:
        >>> import numpy as np, nnlab
        >>> lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
        >>> lin.forward(np.ones((4, 3))).shape
        (4, 2)
    """

    def __init__(self, in_dim, out_dim, dtype=np.float64, init="xavier", rng=None, name=None):
        self.in_dim = require_positive_int(in_dim, "in_dim", "Linear")
        self.out_dim = require_positive_int(out_dim, "out_dim", "Linear")
        if init not in ("xavier", "he"):
            raise NnlabValueError(f"Linear: init must be 'xavier' or 'he', got {init!r}")
        self.init = init
        self.name = name
        self.needs_input_grad = True
        self._dtype = np.dtype(dtype)
        if self._dtype.kind != "f":
            raise NnlabTypeError(f"Linear: dtype must be a float type, got {self._dtype}")
        self.reset_parameters(rng)
        self.x = None

    def reset_parameters(self, rng=None) -> None:
        """Draw fresh weights (Glorot or He uniform), zero the bias and the gradients."""
        if self.init == "xavier":
            limit = _glorot_limit(self.in_dim, self.out_dim)
        else:
            limit = math.sqrt(6.0 / self.in_dim)
        draw = np.random.uniform if rng is None else rng.uniform
        shape = (self.out_dim, self.in_dim)
        self.W = np.asarray(draw(-limit, limit, size=shape), dtype=self._dtype)
        self.b = np.zeros(self.out_dim, dtype=self._dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def parameters(self) -> list[Param]:
        return [Param(self, "W", "dW", decay=True), Param(self, "b", "db", decay=False)]

    def _label(self) -> str:
        tag = f" '{self.name}'" if self.name else ""
        return f"Linear{tag}({self.in_dim} -> {self.out_dim})"

    def __repr__(self) -> str:
        return f"Linear(in_dim={self.in_dim}, out_dim={self.out_dim}, dtype={self.W.dtype})"

    def forward(self, x):
        """Return ``x @ W.T + b`` and cache ``x``.

        Float inputs keep their dtype: a float32 batch through a float64 layer
        gives float32 output (the weights are cast for the product).  NaN or inf
        in ``x`` is a ``ValueError`` (``fit`` checks its data once up front and
        turns this per-call check off while it trains).
        """
        if not self.validate:  # fit's path: x is a float 2-D batch of the layer's dtype, checked up front
            self.x = x
            out = x @ self.W.T
            out += self.b
            return out
        x = as_float_array(x, "input", self._label())
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_dim:
            raise NnlabValueError(f"{self._label()}: expected input of width {self.in_dim}, got shape {x.shape}")
        self.x = x
        W, b = self.W, self.b
        if W.dtype != x.dtype:
            W, b = W.astype(x.dtype), b.astype(x.dtype)
        out = x @ W.T
        out += b
        if not np.isfinite(out).all():
            # NaN/inf anywhere in x makes its output row non-finite, so checking the (smaller) output
            # catches bad input too; only then is x inspected, to say which it was
            require_finite(x, "input", self._label())
            finite_output(out, self._label())
        return out

    def backward(self, dout):
        """Set ``dW = dout.T @ x`` and ``db = dout.sum(0)``; return ``dx = dout @ W``.

        Gradients are assigned, never accumulated: calling ``backward`` twice
        with the same ``dout`` gives the same ``dW`` and ``db``.
        """
        if not self.validate:  # fit's path: write the gradients into their buffers, no temporaries
            np.matmul(dout.T, self.x, out=self.dW)
            np.sum(dout, axis=0, out=self.db)
            return dout @ self.W if self.needs_input_grad else None
        if self.x is None:
            raise self._not_run_yet()
        dout = np.atleast_2d(as_float_array(dout, "dout", self._label()))
        x = np.atleast_2d(self.x)
        if dout.shape != (x.shape[0], self.out_dim):
            raise NnlabValueError(
                f"{self._label()}: backward expected dout of shape {(x.shape[0], self.out_dim)}, got {dout.shape}"
            )
        if dout.dtype != x.dtype:
            dout = dout.astype(x.dtype)
        self.dW = (dout.T @ x).astype(self.W.dtype, copy=False)
        self.db = dout.sum(axis=0).astype(self.b.dtype, copy=False)
        if not self.needs_input_grad:
            return None
        W = self.W if self.W.dtype == x.dtype else self.W.astype(x.dtype)
        dx = dout @ W
        return dx.reshape(self.x.shape)


class _Activation(Module):
    """Shared shape checks for elementwise activations."""

    def __init__(self):
        self.x = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _check_dout(self, dout) -> np.ndarray:
        if self.x is None:
            raise self._not_run_yet()
        dout = as_float_array(dout, "dout", repr(self))
        if dout.shape != self.x.shape:
            raise NnlabValueError(f"{self!r}: backward expected dout of shape {self.x.shape}, got {dout.shape}")
        return dout


class ReLU(_Activation):
    """ReLU as a module: ``max(0, x)``; backward passes ``dout`` where ``x > 0``.

    The derivative at exactly 0 is 0 (the handout's mask).
    """

    def forward(self, x):
        """Return ``max(0, x)`` and cache ``x``."""
        if not self.validate:  # x is the previous layer's fresh output: rectify it in place
            self.x = np.maximum(x, 0, out=x)  # (relu(x) > 0) == (x > 0), so the cache still gives the mask
            return x
        self.x = as_float_array(x, "input", "ReLU")
        return np.maximum(self.x, 0)

    def backward(self, dout):
        """Return ``dout * (x > 0)``."""
        if not self.validate:  # dout is the next layer's fresh output: mask it in place
            return np.multiply(dout, self.x > 0, out=dout)  # (np.copyto with where= is 10x slower)
        dout = self._check_dout(dout)
        return dout * (self.x > 0)


class Tanh(_Activation):
    """tanh as a module; backward is ``dout * (1 - tanh(x)**2)`` from the cached output."""

    def forward(self, x):
        """Return ``tanh(x)``; caches the input ``x`` and the output."""
        self.x = x if not self.validate else as_float_array(x, "input", "Tanh")
        self.out = np.tanh(self.x)
        return self.out

    def backward(self, dout):
        """Return ``dout * (1 - tanh(x)**2)``."""
        if not self.validate:
            dout *= 1 - self.out * self.out
            return dout
        dout = self._check_dout(dout)
        return dout * (1 - self.out * self.out)


class Sequential(Module):
    """A chain of modules: forward runs them in order, backward in reverse.

    Args:
        *layers: modules (or one list of modules), applied first to last.

    Example:
        >>> import nnlab
        >>> net = nnlab.Sequential(nnlab.Linear(2, 8), nnlab.ReLU(), nnlab.Linear(8, 1))
        >>> len(net.parameters())
        4
    """

    def __init__(self, *layers):
        """Chain ``layers`` (modules, or a single list of them)."""
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise NnlabTypeError(f"Sequential: layer {i} must be an nnlab Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x):
        """Apply every layer in turn."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        """Back-propagate through the layers in reverse order; returns dLoss/dInput."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
            if dout is None:  # the first Linear was told not to compute its input gradient
                break
        return dout

    def parameters(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.parameters()]
