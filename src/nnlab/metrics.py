"""Evaluation metrics, written out (and tested against scikit-learn), plus bootstrap intervals.

Classification: accuracy, macro-F1, binary ROC-AUC, confusion matrix.
Regression: RMSE, MAE, R^2.
"""

from __future__ import annotations

import numpy as np


def accuracy_score(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of rows of true class ``i`` predicted as ``j``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean over classes of ``F1 = 2 TP / (2 TP + FP + FN)`` (0 for a class never seen nor said)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(float)
    denom = 2 * tp + (cm.sum(axis=0) - tp) + (cm.sum(axis=1) - tp)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


def roc_auc(y_true, score) -> float:
    """Binary ROC-AUC: the probability that a random positive outscores a random negative (ties count half).

    Computed from ranks (the Mann-Whitney U statistic).  ``nan`` if one class is absent.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, float).ravel() - np.asarray(y_pred, float).ravel()
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(y_true, float).ravel() - np.asarray(y_pred, float).ravel())))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (0 for predicting the mean)."""
    y = np.asarray(y_true, float).ravel()
    res = np.sum((y - np.asarray(y_pred, float).ravel()) ** 2)
    tot = np.sum((y - y.mean()) ** 2)
    return float(1 - res / tot) if tot > 0 else float("nan")


def bootstrap_ci(metric, y_true, y_other, rng, n_boot=1000, level=0.95):
    """Percentile bootstrap interval of ``metric(y_true, y_other)`` over resampled test rows.

    Returns:
        ``(point estimate, low, high)``.
    """
    y_true = np.asarray(y_true)
    y_other = np.asarray(y_other)
    n = len(y_true)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        value = metric(y_true[idx], y_other[idx])
        if np.isfinite(value):
            stats.append(value)
    alpha = (1 - level) / 2
    low, high = (np.quantile(stats, [alpha, 1 - alpha]) if stats else (np.nan, np.nan))
    return float(metric(y_true, y_other)), float(low), float(high)
