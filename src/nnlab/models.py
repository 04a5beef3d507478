"""Models built from :mod:`nnlab.layers`: the handout's ``MLP`` and a builder for deeper nets.

``MLP`` is only a handout-shaped face on a :class:`~nnlab.layers.Sequential`
(``Linear -> ReLU|Tanh -> Linear``): the same layers, the same forward and backward
code, so that what a student trains by hand and what ``nnlab.train.fit`` trains
are one code path.
"""

from __future__ import annotations

import numpy as np

from nnlab._checks import require_positive_int, scan_result
from nnlab.activations import GELU, LeakyReLU, Sigmoid
from nnlab.dropout import Dropout, check_probability
from nnlab.errors import NnlabValueError
from nnlab.layers import Linear, Module, Param, ReLU, Sequential, Tanh, register_module
from nnlab.normalization import BatchNorm1d

#: The activations a model can use, by name (each with its default settings).
NONLINEARITIES = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU, "gelu": GELU}
#: Activations whose layers get He initialisation by default (the rest, Xavier): the ReLU family.
HE_NONLINEARITIES = ("relu", "leaky_relu", "gelu")
#: Normalisation layers ``make_mlp`` can insert, by name.
NORMS = {"batch": BatchNorm1d}


def _activation(nonlin: str, where: str) -> Module:
    if nonlin not in NONLINEARITIES:
        choices = ", ".join(repr(k) for k in NONLINEARITIES)
        raise NnlabValueError(f"{where}: nonlin must be one of {choices}, got {nonlin!r}")
    return NONLINEARITIES[nonlin]()


def make_mlp(sizes, nonlin="relu", dtype=np.float64, init=None, rng=None, dropout=0.0, norm=None) -> Sequential:
    """Build ``Linear -> [BatchNorm1d] -> act -> [Dropout] -> ... -> Linear`` with the given layer widths.

    Every hidden layer is ``Linear``, then batch normalisation (``norm="batch"``), then the
    activation, then dropout (``dropout > 0``): the common order, which normalises the
    pre-activations and drops the activations.  The output layer is a plain ``Linear``.

    Args:
        sizes: widths ``[in_dim, hidden_1, ..., out_dim]``; at least two entries.
        nonlin: an activation named in ``NONLINEARITIES`` (``"relu"``, ``"tanh"``,
            ``"sigmoid"``, ``"leaky_relu"``, ``"gelu"``), used after every hidden layer.
        dtype: parameter dtype.
        init: ``"xavier"`` or ``"he"``; by default He for the ReLU family (relu,
            leaky_relu, gelu), Xavier for tanh and sigmoid.
        rng: ``numpy.random.Generator`` for the initial weights and the dropout masks
            (global state if ``None``).
        dropout: dropout probability after every hidden activation (0 = none).
        norm: ``None`` or ``"batch"`` (a ``BatchNorm1d`` after every hidden ``Linear``).
    Returns:
        a :class:`~nnlab.layers.Sequential`.
    """
    sizes = [require_positive_int(s, "layer width", "make_mlp") for s in sizes]
    if len(sizes) < 2:
        raise NnlabValueError(f"make_mlp: need at least an input and an output width, got {sizes}")
    _activation(nonlin, "make_mlp")
    if norm is not None and norm not in NORMS:
        raise NnlabValueError(f"make_mlp: norm must be None or one of {', '.join(map(repr, NORMS))}, got {norm!r}")
    check_probability(dropout, "make_mlp", "dropout")
    if init is None:
        init = "he" if nonlin in HE_NONLINEARITIES else "xavier"
    layers: list[Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(a, b, dtype=dtype, init=init, rng=rng, name=f"l{i + 1}"))
        if i == len(sizes) - 2:
            break
        if norm is not None:
            layers.append(NORMS[norm](b, dtype=dtype))
        layers.append(_activation(nonlin, "make_mlp"))
        if dropout:
            layers.append(Dropout(dropout, rng=rng))
    return Sequential(layers)


@register_module
class MLP(Module):
    """One-hidden-layer perceptron, ``Linear -> activation -> Linear`` (the handout's Stage 3).

    Args:
        in_dim: input width.
        hidden_dim: number of hidden units.
        out_dim: output width (1 for regression, C for C-class logits).
        nonlin: ``"relu"`` (default), ``"tanh"``, or another name in ``NONLINEARITIES``.
        dtype: parameter dtype (float64 default).
        init: ``"xavier"`` (the handout's, default) or ``"he"``.
        rng: ``numpy.random.Generator`` for the initial weights (global state if ``None``).

    Attributes:
        l1, l2: the two :class:`~nnlab.layers.Linear` layers.
        act: the activation module.
        net: the underlying ``Sequential(l1, act, l2)``.
        h_pre: the pre-activation ``z1`` cached by the last ``forward`` (the handout's name).

    Shape:
        forward: (batch, in_dim) -> ``(yhat, h)`` with yhat (batch, out_dim) and
        h (batch, hidden_dim) the hidden activations.

    Example:
        >>> import numpy as np, nnlab
        >>> model = nnlab.MLP(1, 32, 1, nonlin="tanh", rng=np.random.default_rng(0))
        >>> yhat, h = model.forward(np.zeros((5, 1)))
        >>> yhat.shape, h.shape
        ((5, 1), (5, 32))
    """

    keeps_output = False  # its last module is a Linear

    def __init__(self, in_dim, hidden_dim, out_dim, nonlin="relu", dtype=np.float64, init="xavier", rng=None):
        self.act = _activation(nonlin, "MLP")
        self.nonlin = nonlin
        self.l1 = Linear(in_dim, hidden_dim, dtype=dtype, init=init, rng=rng, name="l1")
        self.l2 = Linear(hidden_dim, out_dim, dtype=dtype, init=init, rng=rng, name="l2")
        self.net = Sequential(self.l1, self.act, self.l2)
        self.h_pre = None

    def __repr__(self) -> str:
        return f"MLP({self.l1.in_dim}, {self.l1.out_dim}, {self.l2.out_dim}, nonlin={self.nonlin!r})"

    def forward(self, x):
        """Return ``(yhat, h)``: the output and the hidden activations.

        Checked like any module: ``l1`` checks ``x``, and both ``z1`` and ``yhat`` are scanned for
        NaN/inf (``z1`` too, because relu and tanh turn an infinite ``z1`` into finite values);
        in between, the layers' cores run.  The activation does not work in place, so ``h_pre``
        (the handout's cache of the pre-activation ``z1``) stays intact next to ``h``.
        """
        l1 = self.l1
        x = l1._check_input(x)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by a scan, not a warning
            # z1 is scanned as l1.forward would: relu(-inf) and tanh(+-inf) are finite, so yhat cannot vouch for it
            z1 = l1._check_output(x, l1._forward(x, inplace=False))
            h = self.act._forward(z1, inplace=False)
            yhat = self.l2._forward(h, inplace=False)
        self.h_pre = z1
        return scan_result(yhat, None, "MLP", params=self.named_arrays), h

    def predict(self, x):
        """Return only ``yhat`` (for code that expects one output)."""
        return self.net.forward(x)

    def backward(self, dyhat, h=None):
        """Back-propagate ``dyhat``; writes every ``dW``/``db`` and returns ``dx``.

        ``h`` is accepted for the handout's signature; the activation module
        already cached what it needs, so an ``h`` of another shape than the last forward's
        is an error (it belongs to another batch).
        """
        cached = self.act.out
        if h is not None and cached is not None and np.shape(h) != cached.shape:
            raise NnlabValueError(f"MLP.backward: h has shape {np.shape(h)}, but the last forward's hidden "
                                  f"activations have shape {cached.shape}; pass the h that forward returned")
        return self.net.backward(dyhat)

    def _check_input(self, x):
        return self.l1._check_input(x)

    def _forward(self, x, inplace=False):
        return self.net._forward(x, inplace)

    def _backward(self, dout, inplace=False, need_dx=True):
        return self.net._backward(dout, inplace, need_dx)

    def parameters(self) -> list[Param]:
        """``[l1.W, l1.b, l2.W, l2.b]`` with their gradients."""
        return self.net.parameters()

    def named_children(self) -> list[tuple[str, Module]]:
        """``l1``, ``act`` and ``l2`` (their arrays are saved as ``l1.W``, ``l1.b``, ...)."""
        return [("l1", self.l1), ("act", self.act), ("l2", self.l2)]

    def config(self) -> dict:
        """The widths, the activation and the initialisation (the dtype is the checkpoint's)."""
        return {"in_dim": self.l1.in_dim, "hidden_dim": self.l1.out_dim, "out_dim": self.l2.out_dim,
                "nonlin": self.nonlin, "init": self.l1.init}

    @classmethod
    def from_config(cls, config: dict, dtype=np.float64) -> MLP:
        """An MLP of ``config``'s shape; its (irrelevant) initial weights come from a fixed seed."""
        return cls(**config, dtype=dtype, rng=np.random.default_rng(0))

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """``l1.W``, ``l1.b``, ``l2.W``, ``l2.b`` from the widths."""
        _activation(config["nonlin"], "MLP")
        first = Linear.state_spec({"in_dim": config["in_dim"], "out_dim": config["hidden_dim"]})
        second = Linear.state_spec({"in_dim": config["hidden_dim"], "out_dim": config["out_dim"]})
        return {**{f"l1.{k}": v for k, v in first.items()}, **{f"l2.{k}": v for k, v in second.items()}}
