"""The public surface: the handout's names importable from the top, each documented."""

import inspect
import pydoc

import nnlab

HANDOUT_NAMES = [
    "Linear", "MLP", "relu", "relu_backward", "tanh", "tanh_backward", "softmax", "cross_entropy",
    "softmax_cross_entropy_backward", "one_hot", "standardize_features", "unstandardize_linear_weights",
    "assert_close", "plot_series",
]


def test_handout_names_are_top_level():
    for name in HANDOUT_NAMES:
        assert name in nnlab.__all__ and hasattr(nnlab, name)


def test_every_public_name_has_a_docstring():
    for name in nnlab.__all__:
        obj = getattr(nnlab, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
        if inspect.isclass(obj):
            for meth_name, meth in vars(obj).items():
                if callable(meth) and not meth_name.startswith("_"):
                    assert inspect.getdoc(getattr(obj, meth_name)), f"{name}.{meth_name} has no docstring"


def test_handout_signatures():
    assert list(inspect.signature(nnlab.Linear).parameters)[:2] == ["in_dim", "out_dim"]
    assert list(inspect.signature(nnlab.MLP).parameters)[:4] == ["in_dim", "hidden_dim", "out_dim", "nonlin"]
    assert list(inspect.signature(nnlab.relu_backward).parameters) == ["x", "dout"]
    assert list(inspect.signature(nnlab.cross_entropy).parameters)[:2] == ["probs", "Y_true"]
    assert list(inspect.signature(nnlab.assert_close).parameters)[:5] == ["name", "got", "want", "atol", "rtol"]


def test_help_linear_shows_shapes():
    text = pydoc.render_doc(nnlab.Linear, renderer=pydoc.plaintext)
    assert "(out_dim, in_dim)" in text and "Shape" in text
