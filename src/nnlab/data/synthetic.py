"""The handout's synthetic regression data: a noisy line (Stages 1-2) and a noisy sine (Stage 3).

Noise is drawn from NumPy's *global* generator, in the handout's order, so that
after ``np.random.seed(42)`` these return exactly the arrays the handout's code makes.
"""

from __future__ import annotations

import math

import numpy as np


def make_line(n=200, a=2.5, b=-0.7, noise=0.25, low=-2.0, high=2.0):
    """``x = linspace(low, high, n)``, ``y = a x + b + noise * N(0, 1)``.

    Returns:
        ``(x, y)``, each of shape (n,).
    """
    x = np.linspace(low, high, n)
    y = a * x + b + noise * np.random.randn(n)
    return x, y


def make_sine(n=400, noise=0.1):
    """``x = linspace(-1, 1, n)``, ``y = sin(2 pi x) + noise * N(0, 1)`` (handout Stage 3).

    Returns:
        ``(x, y)``, each of shape (n,).
    """
    x = np.linspace(-1, 1, n)
    y = np.sin(2 * math.pi * x) + noise * np.random.randn(n)
    return x, y
