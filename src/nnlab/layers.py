"""The module protocol and the layers built on it: ``Linear``, ``ReLU``, ``Tanh``, ``Sequential``.

Every module has two faces over one piece of arithmetic:

* the **checked face**, ``forward(x)`` and ``backward(dout) -> dx``, for people: it accepts
  what a user types (lists, integers, float32 or float64, a single row), checks shapes in O(1),
  scans one array for NaN/inf, never writes to an array the caller holds, and then calls
* the **unchecked core**, ``_forward(x, inplace=False)`` and
  ``_backward(dout, inplace=False, need_dx=True)``, for code that has already checked its
  data: :class:`Sequential`, :class:`~nnlab.models.MLP`, :func:`nnlab.train.fit` and
  :func:`nnlab.train.predict` call the cores directly.

Both faces run the same core, so the handout's loop and ``fit`` compute the same numbers
(``tests/test_equivalence.py``).  What the core may do is passed to it as arguments, never
set on the module from outside: ``inplace=True`` hands the module its input to overwrite,
``need_dx=False`` says nobody needs dLoss/dInput.

Gradient buffers (one rule for both faces): a module allocates one gradient array per
parameter, with the parameter's shape and dtype (``dW``, ``db``), and every backward
*writes into* it: the values are replaced, never added to, and the array object stays the
same.  Keep ``lin.dW.copy()`` if you need the old values after the next backward.

Writing a new layer (Dropout, BatchNorm1d, Conv2d, ...): subclass :class:`Module` and implement

1. ``_forward(self, x, inplace=False) -> out``: the arithmetic, caching what ``_backward``
   needs.  ``x`` has passed ``_check_input``.  With ``inplace=True`` the caller gives ``x``
   away: you may overwrite it and return it.  With ``inplace=False`` never write to ``x`` and
   never return ``x`` or a view of it (the next module may be allowed to overwrite your output).
2. ``_backward(self, dout, inplace=False, need_dx=True) -> dx | None``: write each parameter's
   gradient into its buffer and return dLoss/dInput.  The same rule holds for ``dout`` as for
   ``x``; with ``need_dx=False`` you may skip dx and return ``None``.
3. ``parameters()`` if the layer has any: ``[Param(self, "W", "dW", decay=True), ...]``, with
   the gradient buffers allocated once (in ``__init__`` or ``reset_parameters``).
4. ``keeps_output``: leave it ``True`` (the safe default) if ``_backward`` reads the array
   ``_forward`` returned; set it ``False`` if it does not, so that :class:`Sequential` may let
   the next module work in place on it.
5. its checks, each cheap: ``_check_input(x) -> x`` (default: a float array),
   ``_check_output(x, out) -> out`` (default: one NaN/inf scan of ``out``; on failure, a scan of
   ``x`` says whether the input was to blame or the result overflowed), and
   ``_check_dout(dout) -> dout`` (default: a float array without NaN/inf; override it to check
   the shape against what ``_forward`` cached, and that ``forward`` ran at all).

A module written the handout's way, subclassing :class:`Module` and overriding only ``forward``
and ``backward``, still works everywhere: its core falls back to those public methods.  To
change the arithmetic of an existing layer, override its ``_forward``/``_backward``: the
containers, ``fit`` and ``predict`` call those, not the public methods.

To be saved in a checkpoint and rebuilt by :func:`nnlab.load`, a layer also

6. is registered: decorate the class with :func:`register_module` (checkpoints name it by
   its class name; no list of ``isinstance`` checks to edit);
7. describes itself: ``config()`` returns its constructor arguments as JSON-ready values,
   ``from_config(config, dtype)`` rebuilds an untrained copy, and ``state_spec(config)``
   gives the name and shape of every array the rebuilt layer holds, computed from
   ``config`` alone (a checkpoint loader checks a file's arrays against it before it
   allocates anything).  Non-trainable arrays (running statistics) go in ``buffers()``;
   containers list their parts in ``named_children()``.

Every module has a ``training`` flag (``True`` on creation), set for a module and all its
parts by :meth:`Module.train` and :meth:`Module.eval`; layers that behave differently while
training (dropout, batch normalisation) read it.  :func:`mode` sets it for the length of a
block and then gives every part back its own mode (``fit`` and ``predict`` use it).

An optimizer updates any model through ``parameters()`` alone, and
:func:`nnlab.gradcheck.gradcheck` checks any model the same way.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from nnlab._checks import (
    as_float_array,
    constant_array,
    float_dtype,
    require_finite,
    require_positive_int,
    scan_result,
)
from nnlab.errors import NnlabRuntimeError, NnlabTypeError, NnlabValueError
from nnlab.functional import relu_backward_core, relu_core, tanh_backward_core

#: Module classes a checkpoint can rebuild, by class name (filled by :func:`register_module`).
MODULE_TYPES: dict[str, type] = {}


def register_module(cls):
    """Class decorator: let checkpoints save ``cls`` under its class name and rebuild it.

    The class implements ``config``, ``from_config`` and ``state_spec`` (see the module
    docstring) unless the defaults fit (no constructor arguments, no arrays).

    Raises:
        NnlabValueError: if another class is already registered under the same name.
    """
    name = cls.__name__
    if MODULE_TYPES.setdefault(name, cls) is not cls:
        raise NnlabValueError(f"register_module: a different class is already registered as {name!r}")
    return cls


def describe(module) -> dict:
    """A JSON-ready description of ``module`` (type, constructor arguments, mode) that :func:`build` rebuilds."""
    name = type(module).__name__
    if MODULE_TYPES.get(name) is not type(module):
        raise NnlabTypeError(f"cannot describe a {name}: register its class with nnlab.layers.register_module "
                             f"(registered: {', '.join(sorted(MODULE_TYPES))})")
    return {"type": name, "config": module.config(), "training": bool(module.training)}


def build(description: dict, dtype=np.float64) -> Module:
    """An untrained module from :func:`describe`'s record, in the recorded training mode."""
    cls = MODULE_TYPES[description["type"]]
    module = cls.from_config(description["config"], np.dtype(dtype))
    module.training = bool(description.get("training", True))
    return module


def state_spec(description: dict) -> dict[str, tuple]:
    """Name -> shape of every array the module :func:`build` makes from ``description`` holds."""
    return MODULE_TYPES[description["type"]].state_spec(description["config"])


def modules(module) -> list:
    """``module`` and every part of it, depth first (through ``named_children``)."""
    found, stack = [], [module]
    while stack:
        m = stack.pop()
        found.append(m)
        stack.extend(child for _, child in reversed(m.named_children()))
    return found


@contextlib.contextmanager
def mode(module, training: bool):
    """Run a block with ``module`` and all its parts in training (or evaluation) mode, then restore each part's mode.

    What :func:`nnlab.train.fit` and :func:`nnlab.train.predict` use: every part gets back
    the mode it had before, even when the parts were in different modes, and even when the
    block raises.

    Example:
        >>> import nnlab
        >>> net = nnlab.Sequential(nnlab.Linear(2, 2), nnlab.Dropout(0.5))
        >>> with nnlab.layers.mode(net, training=False):
        ...     net[1].training
        False
        >>> net[1].training
        True
    """
    # a module that never had its mode set reads the class default: give it back exactly that (no new attribute)
    saved = [(m, vars(m).get("training")) for m in modules(module)]
    module.train(training)
    try:
        yield module
    finally:
        for m, flag in saved:
            if flag is None:
                vars(m).pop("training", None)
            else:
                m.training = flag


def _prefixed(prefix: str, items: dict) -> dict:
    return {f"{prefix}.{k}": v for k, v in items.items()}


def _usable_grad_buffer(grad, value) -> bool:
    """Whether backward can write the gradient of ``value`` into ``grad`` in place: a plain, writeable ndarray of
    ``value``'s shape, dtype and memory layout.  O(1)."""
    return type(grad) is np.ndarray and grad.shape == value.shape and grad.dtype == value.dtype \
        and grad.strides == value.strides and grad.flags.writeable


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
        """The gradient buffer, filled by the owner's last ``backward``."""
        return getattr(self.owner, self.grad_name)

    @grad.setter
    def grad(self, new) -> None:
        setattr(self.owner, self.grad_name, new)

    def ensure_grad_buffer(self) -> None:
        """Give the gradient a buffer of the parameter's shape, dtype and memory layout if it lost one.

        Why: backward writes into the buffer in place; a user who replaced ``W`` (or ``dW``)
        with an array of another shape, dtype or layout gets a fresh buffer instead of a
        NumPy error (or an optimizer step that cannot take BLAS's fast path).
        """
        owner = self.owner
        value = getattr(owner, self.name)
        if not _usable_grad_buffer(getattr(owner, self.grad_name), value):
            setattr(owner, self.grad_name, np.zeros_like(value))

    def __repr__(self) -> str:
        return f"Param({type(self.owner).__name__}.{self.name}, shape={self.value.shape})"


class Module:
    """Base class of every layer and model: a checked face over an unchecked core.

    Subclasses implement ``_forward``, ``_backward`` and, when they hold parameters,
    :meth:`parameters`; see this module's docstring for the full protocol.  Calling a
    module calls ``forward``.
    """

    #: True when ``_backward`` reads the array ``_forward`` returned, so that a container
    #: must not let the next module overwrite it.  True is the safe default.
    keeps_output = True

    #: Training mode (``True``) or evaluation mode; set with :meth:`train` / :meth:`eval`.
    training = True

    def train(self, mode: bool = True) -> Module:
        """Put this module and every part of it in training mode (or evaluation mode); returns ``self``."""
        self.training = bool(mode)
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Put this module and every part of it in evaluation mode; returns ``self``."""
        return self.train(False)

    def named_children(self) -> list[tuple[str, Module]]:
        """The modules this one is made of, with the names their arrays are saved under (none for a layer)."""
        return []

    def buffers(self) -> dict[str, np.ndarray]:
        """Arrays the module keeps that are not trained (e.g. running statistics); none by default."""
        return {}

    def config(self) -> dict:
        """The constructor arguments, JSON-ready, from which :meth:`from_config` rebuilds this module."""
        return {}

    @classmethod
    def from_config(cls, config: dict, dtype=np.float64) -> Module:
        """An untrained module of this class made from :meth:`config`'s record."""
        return cls(**config)

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """Name -> shape of every parameter and buffer a module built from ``config`` holds.

        Computed from ``config`` alone, without building the module; it must check the
        values it uses (a checkpoint loader calls it on untrusted records).
        """
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by name (parts' arrays as ``"<part>.<name>"``), live arrays, not copies."""
        children = self.named_children()
        if children:
            return {k: v for name, child in children for k, v in _prefixed(name, child.state_dict()).items()}
        return {**{p.name: p.value for p in self.parameters()}, **self.buffers()}

    def load_state_dict(self, arrays: dict) -> None:
        """Copy ``arrays`` (names and shapes as :meth:`state_dict` gives them) into this module.

        Values are cast to each array's current dtype and layout; gradient buffers are reset.

        Raises:
            NnlabValueError: for a missing, extra or differently shaped array.
        """
        mine = self.state_dict()
        if set(mine) != set(arrays):
            raise NnlabValueError(f"load_state_dict: expected arrays {sorted(mine)}, got {sorted(arrays)}")
        for name, current in mine.items():
            new = np.asarray(arrays[name])
            if new.shape != current.shape:
                raise NnlabValueError(f"load_state_dict: {name} should have shape {current.shape}, got {new.shape}")
            current[...] = new  # in place: keeps dtype, memory layout and every reference to the array
        for p in self.parameters():
            p.grad = np.zeros_like(p.value)

    def forward(self, x):
        """Checked forward: check ``x``, run the core, scan the result for NaN/inf."""
        x = self._check_input(x)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by the scan, not a warning
            out = self._forward(x, inplace=False)
        return self._check_output(x, out)

    def backward(self, dout):
        """Checked backward: check ``dout``, then set parameter gradients and return dLoss/dInput."""
        dout = self._check_dout(dout)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._backward(dout, inplace=False, need_dx=True)

    def _forward(self, x, inplace=False):
        """The unchecked core of ``forward`` (see the module docstring for the contract)."""
        if type(self).forward is not Module.forward:  # a module written the handout's way
            return self.forward(x)
        raise NotImplementedError(f"{type(self).__name__} must implement _forward(x, inplace=False)")

    def _backward(self, dout, inplace=False, need_dx=True):
        """The unchecked core of ``backward`` (see the module docstring for the contract)."""
        if type(self).backward is not Module.backward:
            return self.backward(dout)
        raise NotImplementedError(f"{type(self).__name__} must implement _backward(dout, inplace=False, need_dx=True)")

    def _check_input(self, x) -> np.ndarray:
        return as_float_array(x, "input", self._label())

    def _check_output(self, x, out):
        return scan_result(out, x, self._label(), params=self.named_arrays)

    def _check_dout(self, dout) -> np.ndarray:
        return as_float_array(dout, "dout", self._label(), finite=True)

    def _ensure_grad_buffers(self) -> None:
        """Give every parameter a gradient buffer its backward can write into (:meth:`Param.ensure_grad_buffer`)."""
        for p in self.parameters():
            p.ensure_grad_buffer()

    def _label(self) -> str:
        return repr(self)

    def parameters(self) -> list[Param]:
        """The module's parameters paired with their gradients (empty for activations)."""
        return []

    def named_arrays(self) -> list[tuple[str, np.ndarray]]:
        """``(name, array)`` of every parameter, named for messages: ``W``, or ``l1.W`` / ``layer 2.b`` in a chain."""
        own = [(p.name, p.value) for p in self.parameters() if p.owner is self]
        for child, module in self.named_children():
            label = getattr(module, "name", None) or (f"layer {child}" if child.isdigit() else child)
            own += [(f"{label}.{name}", value) for name, value in module.named_arrays()]
        return own

    def __call__(self, x):
        return self.forward(x)

    def astype(self, dtype) -> Module:
        """Convert every parameter and gradient to ``dtype`` (a float type) in place; returns ``self``."""
        dtype = float_dtype(dtype, f"{type(self).__name__}.astype")
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


@register_module
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
        W: weights, shape (out_dim, in_dim) -- the PyTorch layout -- stored column-major, so
            that ``W.T`` is contiguous (any layout you assign works; this one is fastest).
        b: bias, shape (out_dim,), initialised to zeros.
        dW, db: gradient buffers, same shapes and dtype as ``W`` and ``b``, allocated once;
            every ``backward`` overwrites their values (it never adds to them and never
            replaces the arrays), so ``lin.dW += 2 * lam * lin.W`` after a backward adds the
            L2 term, and ``lin.dW.copy()`` keeps a value past the next backward.
        x: the input cached by the last forward.

    Shape:
        forward: (batch, in_dim) -> (batch, out_dim); a single row (in_dim,) -> (out_dim,).
        backward: (batch, out_dim) -> (batch, in_dim); a flat list or 1-D array is one row.

    Example:
        >>> import numpy as np, nnlab
        >>> lin = nnlab.Linear(3, 2, rng=np.random.default_rng(0))
        >>> lin.forward(np.ones((4, 3))).shape
        (4, 2)
    """

    #: backward needs the input, not the output: the next module may overwrite the output
    keeps_output = False

    def __init__(self, in_dim, out_dim, dtype=np.float64, init="xavier", rng=None, name=None):
        self.in_dim = require_positive_int(in_dim, "in_dim", "Linear")
        self.out_dim = require_positive_int(out_dim, "out_dim", "Linear")
        if init not in ("xavier", "he"):
            raise NnlabValueError(f"Linear: init must be 'xavier' or 'he', got {init!r}")
        self.init = init
        self.name = name
        self._dtype = np.dtype(dtype)
        if self._dtype.kind != "f":
            raise NnlabTypeError(f"Linear: dtype must be a float type, got {self._dtype}")
        self.reset_parameters(rng)
        self.x = None

    def reset_parameters(self, rng=None) -> None:
        """Draw fresh weights (Glorot or He uniform), zero the bias and the gradient buffers."""
        if self.init == "xavier":
            limit = _glorot_limit(self.in_dim, self.out_dim)
        else:
            limit = math.sqrt(6.0 / self.in_dim)
        draw = np.random.uniform if rng is None else rng.uniform
        shape = (self.out_dim, self.in_dim)
        # column-major storage (W.T is a row-major (in, out) array): the forward product x @ W.T is then a
        # plain row-major GEMM, measured ~12% faster at batch 128 than with a transposed operand
        self.W = np.asfortranarray(draw(-limit, limit, size=shape), dtype=self._dtype)
        self.b = np.zeros(self.out_dim, dtype=self._dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def parameters(self) -> list[Param]:
        """``[W, b]`` with their gradients; only ``W`` is decayed by L2."""
        return [Param(self, "W", "dW", decay=True), Param(self, "b", "db", decay=False)]

    def config(self) -> dict:
        """``in_dim``, ``out_dim``, ``init`` and ``name`` (the dtype is the checkpoint's)."""
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "init": self.init, "name": self.name}

    @classmethod
    def from_config(cls, config: dict, dtype=np.float64) -> Linear:
        """A Linear of ``config``'s widths; its (irrelevant) initial weights come from a fixed seed."""
        return cls(**config, dtype=dtype, rng=np.random.default_rng(0))

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """``W`` (out_dim, in_dim) and ``b`` (out_dim,)."""
        n_in = require_positive_int(config["in_dim"], "in_dim", "Linear")
        n_out = require_positive_int(config["out_dim"], "out_dim", "Linear")
        return {"W": (n_out, n_in), "b": (n_out,)}

    def _label(self) -> str:
        tag = f" '{self.name}'" if self.name else ""
        return f"Linear{tag}({self.in_dim} -> {self.out_dim})"

    def __repr__(self) -> str:
        return f"Linear(in_dim={self.in_dim}, out_dim={self.out_dim}, dtype={self.W.dtype})"

    def forward(self, x):
        """Return ``x @ W.T + b`` and cache ``x``.

        Float inputs keep their dtype: a float32 batch through a float64 layer gives
        float32 output (the weights are cast for the product).  NaN or inf in ``x`` is a
        ``ValueError`` naming the layer.  Cost of the checks: O(1) for the shape, plus one
        scan of the output (which is non-finite whenever the input is, so the input is
        scanned only to word the error).
        """
        return super().forward(x)

    def backward(self, dout):
        """Write ``dW = dout.T @ x`` and ``db = dout.sum(0)`` into the buffers; return ``dx = dout @ W``.

        Gradients are assigned, never accumulated: calling ``backward`` twice with the
        same ``dout`` gives the same ``dW`` and ``db``.
        """
        return super().backward(dout)

    def _check_input(self, x) -> np.ndarray:
        if type(x) is not np.ndarray or x.dtype.char not in "fd":  # (the label is made only when needed)
            x = as_float_array(x, "input", self._label())
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_dim:
            raise NnlabValueError(f"{self._label()}: expected input of width {self.in_dim}, got shape {x.shape}")
        return x

    def _check_dout(self, dout) -> np.ndarray:
        x = self.x
        if x is None:
            raise self._not_run_yet()
        if type(dout) is np.ndarray and dout.dtype == x.dtype and x.ndim == 2 \
                and dout.shape == (x.shape[0], self.out_dim):
            # the usual call (a batch, dout from the same computation): one scan and the buffers' O(1) check
            if not np.isfinite(dout).all():
                require_finite(dout, "dout", self._label())
            self._ensure_grad_buffers()
            return dout
        if type(dout) is not np.ndarray or dout.dtype.char not in "fd":
            dout = as_float_array(dout, "dout", self._label())
        rows = x.shape[0] if x.ndim == 2 else 1
        if np.atleast_2d(dout).shape != (rows, self.out_dim):
            want = (rows, self.out_dim) if x.ndim == 2 else (self.out_dim,)
            raise NnlabValueError(f"{self._label()}: backward expected dout of shape {want}, got {dout.shape}")
        if x.ndim == 2:  # the handout's "a simple list [...] is one row"
            dout = np.atleast_2d(dout)
        if dout.dtype != x.dtype:
            dout = dout.astype(x.dtype)
        if not np.isfinite(dout).all():  # (the label is made only when needed)
            require_finite(dout, "dout", self._label())
        self._ensure_grad_buffers()
        return dout

    def _ensure_grad_buffers(self) -> None:
        """``dW``/``db`` as buffers backward can write into (:meth:`Param.ensure_grad_buffer` for each), tested
        here without building the two ``Param`` objects that :meth:`parameters` makes on every call (this runs
        on every checked backward)."""
        if not (_usable_grad_buffer(self.dW, self.W) and _usable_grad_buffer(self.db, self.b)):
            for p in self.parameters():
                p.ensure_grad_buffer()

    def _check_parameters(self, x) -> None:
        """Raise, naming the layer and the widths, when ``W``/``b`` were replaced by arrays of another shape or type,
        or when ``x`` (inside a chain, unchecked so far) is not ``in_dim`` wide.  O(1): shapes and dtypes only."""
        want = {"W": (self.out_dim, self.in_dim), "b": (self.out_dim,)}
        for name, shape in want.items():
            value = getattr(self, name)
            # a masked array or np.matrix is an ndarray whose products mean something else (a raw broadcast error,
            # or matrix output); other subclasses (np.memmap) compute as plain arrays do
            odd = isinstance(value, (np.ma.MaskedArray, np.matrix))
            if odd or not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != shape:
                got = (f"a {type(value).__name__}" if odd or not isinstance(value, np.ndarray)
                       else f"shape {value.shape}, dtype {value.dtype}")
                raise NnlabValueError(f"{self._label()}: {name} must be a float array of shape {shape}, got {got} "
                                      f"(assign an array of that shape, e.g. np.array(..., dtype=float), or build a "
                                      f"new Linear for other widths)")
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_dim:
            raise NnlabValueError(f"{self._label()}: expected input of width {self.in_dim}, got shape {x.shape} "
                                  f"(the layer before it gives {x.shape[-1] if x.ndim else 0} columns)")

    def _forward(self, x, inplace=False):
        # x is never written (backward needs it), so ``inplace`` changes nothing here
        W, b = self.W, self.b
        if type(W) is not np.ndarray or type(b) is not np.ndarray or W.shape != (self.out_dim, self.in_dim) \
                or b.shape != (self.out_dim,) or W.dtype.kind != "f" or b.dtype.kind != "f" \
                or x.ndim > 2 or x.shape[-1:] != (self.in_dim,):  # a 3-D x of width in_dim must not pass
            self._check_parameters(x)
        self.x = x
        if W.dtype != x.dtype:  # float32 data through a float64 layer stays float32
            W, b = W.astype(x.dtype), b.astype(x.dtype)
        out = x @ W.T
        out += b
        return out

    def _backward(self, dout, inplace=False, need_dx=True):
        x = self.x
        if x.ndim == 1:  # the handout's single row: a batch of one
            x, dout = x.reshape(1, -1), dout.reshape(1, -1)
        np.matmul(dout.T, x, out=self.dW)
        # the column sum as one BLAS matrix-vector product (about 3x faster than np.sum(axis=0))
        np.matmul(constant_array((dout.shape[0],), 1, dout.dtype), dout, out=self.db)
        if not need_dx:
            return None
        W = self.W if self.W.dtype == dout.dtype else self.W.astype(dout.dtype)
        dx = dout @ W  # a fresh array: never written over the cached x, which may be the caller's data
        return dx if self.x.ndim == 2 else dx.reshape(self.x.shape)


class _Activation(Module):
    """Elementwise activation: caches its output, and checks its input (it can saturate a NaN-free inf)."""

    def __init__(self):
        self.out = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _check_output(self, x, out):
        # relu(-inf) = 0 and tanh(+-inf) = +-1 are finite, so the output cannot vouch for the
        # input; scan the input (the same size) instead.  Neither function can overflow.
        require_finite(x, "input", self._label())
        return out

    def _check_dout(self, dout) -> np.ndarray:
        if self.out is None:
            raise self._not_run_yet()
        dout = as_float_array(dout, "dout", self._label(), finite=True)
        if dout.shape != self.out.shape:
            raise NnlabValueError(f"{self!r}: backward expected dout of shape {self.out.shape}, got {dout.shape}")
        return dout


@register_module
class ReLU(_Activation):
    """ReLU as a module: ``max(0, x)``; backward passes ``dout`` where ``x > 0``.

    The derivative at exactly 0 is 0 (the handout's mask).  The mask is read from the
    cached output: ``max(0, x) > 0`` exactly where ``x > 0``, so the layer may rectify its
    input in place when allowed to.
    """

    def forward(self, x):
        """Return ``max(0, x)``; the input is never modified."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``dout * (x > 0)``."""
        return super().backward(dout)

    def _forward(self, x, inplace=False):
        self.out = relu_core(x, out=x if inplace else None)
        return self.out

    def _backward(self, dout, inplace=False, need_dx=True):
        return relu_backward_core(self.out, dout, out=dout if inplace else None)


@register_module
class Tanh(_Activation):
    """tanh as a module; backward is ``dout * (1 - tanh(x)**2)`` from the cached output."""

    def forward(self, x):
        """Return ``tanh(x)``; the input is never modified."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``dout * (1 - tanh(x)**2)``."""
        return super().backward(dout)

    def _forward(self, x, inplace=False):
        self.out = np.tanh(x, out=x if inplace else None)
        return self.out

    def _backward(self, dout, inplace=False, need_dx=True):
        return tanh_backward_core(self.out, dout, out=dout if inplace else None)


def _check_widths(layers) -> None:
    """Refuse a chain whose Linear layers do not fit: each one's ``in_dim`` equals the width reaching it.

    Elementwise activations keep the width; after any other module the width is not known here (it is checked
    when the chain runs).
    """
    width, source = None, None
    for i, layer in enumerate(layers):
        if isinstance(layer, Linear):
            if width is not None and layer.in_dim != width:
                raise NnlabValueError(f"Sequential: layer {i}, {layer._label()}, expects {layer.in_dim} inputs but "
                                      f"layer {source} gives {width}; make it Linear({width}, {layer.out_dim})")
            width, source = layer.out_dim, i
        elif not isinstance(layer, _Activation):
            width = None


@register_module
class Sequential(Module):
    """A chain of modules: forward runs them in order, backward in reverse.

    The checked ``forward`` checks the input with the first module's checks and scans
    the final output for NaN/inf (an overflow anywhere inside shows up there); in between,
    the modules' cores run, each allowed to work in place on an array the chain owns
    (never on the caller's input, never on an output the previous module keeps).

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
        _check_widths(layers)
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

    @property
    def keeps_output(self) -> bool:
        """Whether the last module keeps its output (then nobody may overwrite the chain's output)."""
        return self.layers[-1].keeps_output if self.layers else False

    def forward(self, x):
        """Apply every layer in turn (checked: the caller's ``x`` is never written)."""
        if not self.layers:
            return as_float_array(x, "input", "Sequential")
        first = self.layers[0]
        out = first.forward(x)  # the first module checks the input its own way
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by the scan, not a warning
            out = self._forward_from(1, out, inplace=not first.keeps_output)
        return scan_result(out, None, "Sequential", params=self.named_arrays)

    def backward(self, dout):
        """Back-propagate through the layers in reverse order; returns dLoss/dInput."""
        if not self.layers:
            return as_float_array(dout, "dout", "Sequential")
        dout = self.layers[-1]._check_dout(dout)
        for layer in self.layers[:-1]:  # (the last layer's check saw to its own) the cores write into these
            layer._ensure_grad_buffers()
        with np.errstate(over="ignore", invalid="ignore"):
            return self._backward(dout)

    def _check_input(self, x) -> np.ndarray:
        return self.layers[0]._check_input(x) if self.layers else super()._check_input(x)

    def _forward(self, x, inplace=False):
        return self._forward_from(0, x, inplace)

    def _forward_from(self, start, x, inplace):
        # The caller decides for the first module; after that a module may overwrite its input
        # unless the module that produced it reads it again in its backward.
        for layer in self.layers[start:]:
            x = layer._forward(x, inplace)
            inplace = not layer.keeps_output
        return x

    def _backward(self, dout, inplace=False, need_dx=True):
        # dout belongs to the caller; every dx after it is a fresh array the chain owns
        layers = self.layers
        for i in range(len(layers) - 1, -1, -1):
            dout = layers[i]._backward(dout, inplace, need_dx or i > 0)
            inplace = True
        return dout

    def parameters(self) -> list[Param]:
        """Every layer's parameters, first layer first."""
        return [p for layer in self.layers for p in layer.parameters()]

    def named_children(self) -> list[tuple[str, Module]]:
        """The layers, named by position (``"0"``, ``"1"``, ...)."""
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def config(self) -> dict:
        """``{"layers": [describe(layer), ...]}``."""
        return {"layers": [describe(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict, dtype=np.float64) -> Sequential:
        """Rebuild every layer from its record."""
        return cls([build(layer, dtype) for layer in config["layers"]])

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """The layers' arrays, prefixed by position."""
        layers = config["layers"]
        if not isinstance(layers, list):
            raise NnlabTypeError(f"Sequential: config 'layers' must be a list, got {type(layers).__name__}")
        spec = {}
        for i, layer in enumerate(layers):
            spec.update(_prefixed(str(i), state_spec(layer)))
        return spec
