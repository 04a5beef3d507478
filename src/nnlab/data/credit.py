"""The handout's toy credit table (Stage 4 and Stage 6): five people, three features, a score."""

from __future__ import annotations

import numpy as np

#: Column names of :func:`credit_table`'s features.
CREDIT_FEATURES = ("utilization", "age", "late_payments")


def credit_table():
    """Return ``(X, y)``: X (5, 3) = [utilization 0-1, age in years, late payments], y (5, 1) scores."""
    X = np.array(
        [
            [0.10, 45, 0],
            [0.90, 22, 3],
            [0.40, 31, 1],
            [0.20, 52, 0],
            [0.70, 28, 2],
        ],
        dtype=float,
    )
    y = np.array([720, 580, 660, 740, 610], dtype=float).reshape(-1, 1)
    return X, y
