"""nnlab: neural networks from first principles in NumPy.

The handout's API is importable from here, with the handout's names and shapes::

    from nnlab import Linear, MLP, relu, relu_backward, softmax, cross_entropy

Underneath is one small module system (:mod:`nnlab.layers`, and :mod:`nnlab.conv` for images), losses
(:mod:`nnlab.losses`), optimizers (:mod:`nnlab.optim`), gradient checking
(:mod:`nnlab.gradcheck`) and a training loop (:mod:`nnlab.train`).
"""

from nnlab import data as data  # the loaders and splits, as nnlab.data
from nnlab.activations import GELU, LeakyReLU, Sigmoid
from nnlab.checkpoint import CheckpointError, load, load_checkpoint
from nnlab.conv import Conv2d, Flatten, MaxPool2d, make_cnn
from nnlab.dropout import Dropout
from nnlab.errors import NnlabError, NnlabRuntimeError, NnlabTypeError, NnlabValueError
from nnlab.functional import (
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    tanh,
    tanh_backward,
)
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
from nnlab.normalization import BatchNorm1d
from nnlab.optim import SGD, Adam, AdamW, Optimizer, RMSprop, clip_grad_norm
from nnlab.schedules import CosineAnnealingLR, StepLR
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
    "AdamW",
    "BatchNorm1d",
    "CheckpointError",
    "Conv2d",
    "CosineAnnealingLR",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "GELU",
    "GradcheckResult",
    "History",
    "L2Penalty",
    "LeakyReLU",
    "Linear",
    "MLP",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "NnlabError",
    "NnlabRuntimeError",
    "NnlabTypeError",
    "NnlabValueError",
    "Optimizer",
    "Param",
    "RMSprop",
    "ReLU",
    "SGD",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropyLoss",
    "StepLR",
    "Tanh",
    "assert_close",
    "clip_grad_norm",
    "cross_entropy",
    "fit",
    "gelu",
    "gelu_backward",
    "gradcheck",
    "leaky_relu",
    "leaky_relu_backward",
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
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_cross_entropy_backward",
    "standardize_features",
    "tanh",
    "tanh_backward",
    "unstandardize_linear_weights",
]
