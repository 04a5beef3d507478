"""nnlab: neural networks from first principles in NumPy.

The handout's API is importable from here, with the handout's names and shapes::

    from nnlab import Linear, MLP, relu, relu_backward, softmax, cross_entropy

Underneath is one small module system (:mod:`nnlab.layers`, and :mod:`nnlab.conv` for images), losses
(:mod:`nnlab.losses`), optimizers (:mod:`nnlab.optim`), gradient checking
(:mod:`nnlab.gradcheck`) and a training loop (:mod:`nnlab.train`).
"""

from nnlab import data as data  # the loaders and splits, as nnlab.data
from nnlab.checkpoint import CheckpointError, load, load_checkpoint
from nnlab.conv import Conv2d, Flatten, MaxPool2d, make_cnn
from nnlab.errors import NnlabError, NnlabRuntimeError, NnlabTypeError, NnlabValueError
from nnlab.functional import log_softmax, relu, relu_backward, softmax, tanh, tanh_backward
from nnlab.gradcheck import GradcheckResult, gradcheck, numerical_gradient, rel_error
from nnlab.layers import Linear, Module, Param, ReLU, Sequential, Tanh
from nnlab.losses import (
    L2Penalty,
    MSELoss,
    SoftmaxCrossEntropyLoss,
    cross_entropy,
    mse,
    softmax_cross_entropy_backward,
)
from nnlab.models import MLP, make_mlp
from nnlab.optim import SGD, Adam, Optimizer
from nnlab.train import EarlyStopping, History, fit
from nnlab.utils import (
    assert_close,
    one_hot,
    plot_series,
    seed_everything,
    standardize_features,
    unstandardize_linear_weights,
)

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "CheckpointError",
    "Conv2d",
    "EarlyStopping",
    "Flatten",
    "GradcheckResult",
    "History",
    "L2Penalty",
    "Linear",
    "MLP",
    "MSELoss",
    "MaxPool2d",
    "NnlabError",
    "NnlabRuntimeError",
    "NnlabTypeError",
    "NnlabValueError",
    "Module",
    "Optimizer",
    "Param",
    "ReLU",
    "SGD",
    "Sequential",
    "SoftmaxCrossEntropyLoss",
    "Tanh",
    "assert_close",
    "cross_entropy",
    "fit",
    "gradcheck",
    "load",
    "load_checkpoint",
    "log_softmax",
    "make_cnn",
    "make_mlp",
    "mse",
    "numerical_gradient",
    "one_hot",
    "plot_series",
    "rel_error",
    "relu",
    "relu_backward",
    "seed_everything",
    "softmax",
    "softmax_cross_entropy_backward",
    "standardize_features",
    "tanh",
    "tanh_backward",
    "unstandardize_linear_weights",
]
