"""Stratified splits, stratified k-fold and minibatch iteration, seeded and leak-free."""

from __future__ import annotations

import numpy as np

from nnlab.errors import NnlabValueError


def stratified_split(y, fractions, rng):
    """Split indices ``0..n-1`` into parts whose class proportions match ``y``'s.

    Within each class the indices are shuffled and cut by ``fractions``; leftover
    rows from rounding go to the first part.  Parts are disjoint and cover all rows.

    Args:
        y: (n,) class labels.
        fractions: e.g. ``(0.8, 0.2)`` or ``(0.6, 0.2, 0.2)``; must sum to 1.
        rng: ``numpy.random.Generator``.
    Returns:
        a list of sorted index arrays, one per fraction.
    """
    y = np.asarray(y)
    fractions = np.asarray(fractions, dtype=float)
    if fractions.ndim != 1 or np.any(fractions <= 0) or abs(fractions.sum() - 1) > 1e-9:
        raise NnlabValueError(f"stratified_split: fractions must be positive and sum to 1, got {fractions.tolist()}")
    parts = [[] for _ in fractions]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        counts = np.floor(fractions * idx.size).astype(int)
        counts[0] += idx.size - counts.sum()
        start = 0
        for part, c in zip(parts, counts):
            part.append(idx[start : start + c])
            start += c
    return [np.sort(np.concatenate(p)) for p in parts]


def stratified_kfold(y, k, rng):
    """Yield ``(train_idx, val_idx)`` for ``k`` stratified folds of ``y``'s positions.

    Every row is in exactly one validation fold.
    """
    y = np.asarray(y)
    if k < 2:
        raise NnlabValueError(f"stratified_kfold: need k >= 2 folds, got {k}")
    if y.shape[0] < k:
        raise NnlabValueError(f"stratified_kfold: {y.shape[0]} rows cannot make {k} folds")
    fold_of = np.empty(y.shape[0], dtype=int)
    offset = 0
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold_of[idx] = (np.arange(idx.size) + offset) % k
        offset += idx.size
    for f in range(k):
        yield np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)


def iterate_minibatches(n, batch_size, rng=None):
    """Yield index arrays of consecutive minibatches over ``n`` rows.

    With ``rng`` the order is a fresh permutation (the handout's per-epoch
    shuffle); without it, rows stay in order.  The last batch may be smaller.
    """
    order = np.arange(n) if rng is None else rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
