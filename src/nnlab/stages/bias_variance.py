"""The bias/variance split of several fits of one function, each trained on its own draw of the data."""

from __future__ import annotations

import numpy as np

from nnlab.errors import NnlabValueError


def bias_variance(predictions, truth) -> dict:
    """Squared bias and variance of K fits on a grid, against the noise-free function.

    Args:
        predictions: (K, m) the prediction of each of K fits (one per draw) on m grid points.
        truth: (m,) the noise-free function on the same points.
    Returns:
        ``{"bias_sq", "variance", "mean_mse", "mse_per_draw"}``. With ``mean = predictions.mean(0)``:
        ``bias_sq = mean_x (mean - truth)^2``, ``variance = mean_x mean_k (pred_k - mean)^2`` (divisor K,
        not K - 1, so that ``bias_sq + variance = mean_k mean_x (pred_k - truth)^2 = mean_mse``
        exactly, up to rounding); ``mse_per_draw`` is the (K,) list of each fit's error.

    With few draws the mean fit still varies itself: in expectation ``bias_sq`` exceeds the true
    squared bias by ``variance / (K - 1)``.
    """
    predictions = np.asarray(predictions, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if predictions.ndim != 2 or predictions.shape[0] < 1 or truth.shape != predictions.shape[1:]:
        raise NnlabValueError(f"bias_variance: expected predictions of shape (K >= 1, m) and truth of shape (m,), "
                              f"got {predictions.shape} and {truth.shape}")
    mean = predictions.mean(axis=0)
    mse_per_draw = np.mean((predictions - truth) ** 2, axis=1)
    return {"bias_sq": float(np.mean((mean - truth) ** 2)),
            "variance": float(np.mean(np.mean((predictions - mean) ** 2, axis=0))),
            "mean_mse": float(np.mean(mse_per_draw)), "mse_per_draw": mse_per_draw.tolist()}
