"""Data augmentation for digit images: small random translations.

A handwritten digit moved by a pixel or two is still the same digit.  Showing
the network such shifted copies during training is a cheap way to get more
varied data from a small set; it is used only on training batches, never on
validation or test data.
"""

from __future__ import annotations

import numpy as np


def random_shift(X, rng, side: int, max_shift: int = 1):
    """Translate each ``side x side`` image by up to ``max_shift`` pixels, zero-filling.

    Args:
        X: (batch, side*side) flattened images, or (batch, 1, side, side) single-channel images.
        rng: ``numpy.random.Generator`` choosing the shifts.
        side: image width (8 for scikit-learn digits, 28 for MNIST).
        max_shift: largest shift in each direction.
    Returns:
        a new array of ``X``'s shape and dtype.
    """
    n = X.shape[0]
    imgs = X.reshape(n, side, side)
    padded = np.zeros((n, side + 2 * max_shift, side + 2 * max_shift), dtype=X.dtype)
    padded[:, max_shift : max_shift + side, max_shift : max_shift + side] = imgs
    dy = rng.integers(0, 2 * max_shift + 1, size=n)
    dx = rng.integers(0, 2 * max_shift + 1, size=n)
    rows = dy[:, None] + np.arange(side)[None, :]
    cols = dx[:, None] + np.arange(side)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(X.shape)


class Shift:
    """Picklable callable form of :func:`random_shift` for :func:`nnlab.train.fit`'s ``augment``."""

    def __init__(self, side: int, max_shift: int = 1):
        self.side = side
        self.max_shift = max_shift

    def __call__(self, X, rng):
        return random_shift(X, rng, self.side, self.max_shift)

    def __repr__(self) -> str:
        return f"Shift(side={self.side}, max_shift={self.max_shift})"


def shift_images(X, side: int, dy: int, dx: int):
    """Every ``side x side`` image moved ``dy`` pixels down and ``dx`` right (negative: up, left), zero-filled.

    The deterministic counterpart of :func:`random_shift`, for measuring how a model copes
    with translated test images.  ``X`` is (batch, side*side) or (batch, 1, side, side);
    the result has its shape and dtype.
    """
    n = X.shape[0]
    images = np.asarray(X).reshape(n, side, side)
    out = np.zeros_like(images)
    rows, cols = slice(max(dy, 0), side + min(dy, 0)), slice(max(dx, 0), side + min(dx, 0))
    out[:, rows, cols] = images[:, max(-dy, 0) : side - max(dy, 0), max(-dx, 0) : side - max(dx, 0)]
    return out.reshape(X.shape)
