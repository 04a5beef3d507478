"""Evaluation metrics with bootstrap intervals: scikit-learn's metrics, SciPy's bootstrap.

Stage 7 scores every model on the test rows with :func:`classification_scores` or
:func:`regression_scores`: each metric's point estimate and a percentile bootstrap
95 % interval over resampled test rows (:func:`bootstrap_interval`, on
``scipy.stats.bootstrap``).  :func:`confusion_matrix` stays for Stage 5 (integer
labels in ``range(n_classes)``; one line of NumPy needs no library call).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of rows of true class ``i`` predicted as ``j``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


#: Confidence level of the bootstrap intervals unless a caller asks for another.
INTERVAL_LEVEL = 0.95


def bootstrap_interval(metric, y_true, y_other, n_boot: int, seed: int, level: float = INTERVAL_LEVEL):
    """``(estimate, low, high)``: ``metric(y_true, y_other)`` and its percentile bootstrap interval.

    Rows are resampled in pairs (``scipy.stats.bootstrap(paired=True)``).  A resample on
    which the metric is undefined (ROC-AUC with one class) is left out of the
    percentiles instead of making the whole interval NaN.
    """
    from scipy import stats

    y_true, y_other = np.asarray(y_true), np.asarray(y_other)

    def statistic(t, o):
        try:
            return metric(y_true[t.astype(np.int64)], y_other[o.astype(np.int64)])
        except ValueError:  # e.g. ROC-AUC of a resample holding one class
            return np.nan

    rows = np.arange(len(y_true))
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():  # undefined (NaN) resamples are left out below; no need to warn about each
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = stats.bootstrap((rows, rows), statistic, paired=True, vectorized=False, n_resamples=n_boot,
                                 method="percentile", confidence_level=level, rng=np.random.default_rng(seed))
    dist = np.asarray(result.bootstrap_distribution, dtype=float)
    dist = dist[np.isfinite(dist)]
    tail = (1 - level) / 2
    low, high = np.quantile(dist, [tail, 1 - tail]) if dist.size else (np.nan, np.nan)
    return float(metric(y_true, y_other)), float(low), float(high)


def paired_difference(metric, y_true, pred_a, pred_b, n_boot: int, seed: int, level: float = INTERVAL_LEVEL):
    """``(estimate, low, high)`` of ``metric(y, a) - metric(y, b)``, both scored on the same resampled rows.

    Pairing matters: two models judged on the same test rows share that sample's luck, which
    two separate intervals side by side ignore.  An interval that holds 0 says the test rows
    cannot tell the two models apart.
    """
    pair = np.stack([np.asarray(pred_a), np.asarray(pred_b)], axis=1)  # resampled together, row by row
    return bootstrap_interval(lambda t, both: metric(t, both[:, 0]) - metric(t, both[:, 1]), y_true, pair,
                              n_boot, seed, level)


def _roc_auc(y_true, score, positive):
    return skm.roc_auc_score(np.asarray(y_true) == positive, score)


def classification_scores(y_true, y_pred, proba, classes, n_boot: int, seed: int) -> dict:
    """Accuracy, macro-F1 and (two classes, with probabilities) ROC-AUC, each ``(estimate, low, high)``.

    ``classes`` are the labels in the column order of ``proba``; ROC-AUC scores the second.
    """
    labels = list(classes)
    out = {"accuracy": bootstrap_interval(skm.accuracy_score, y_true, y_pred, n_boot, seed),
           "macro_f1": bootstrap_interval(lambda t, p: skm.f1_score(t, p, labels=labels, average="macro",
                                                                     zero_division=0.0),
                                          y_true, y_pred, n_boot, seed)}
    if len(labels) == 2 and proba is not None:
        out["roc_auc"] = bootstrap_interval(lambda t, s: _roc_auc(t, s, labels[1]), y_true, proba[:, 1], n_boot, seed)
    return out


#: The metric each task's headline number uses, by name (higher is better for accuracy, lower for RMSE).
HEADLINE = {"classification": ("accuracy", skm.accuracy_score), "regression": ("rmse", skm.root_mean_squared_error)}


def regression_scores(y_true, y_pred, n_boot: int, seed: int) -> dict:
    """RMSE, MAE and R^2, each ``(estimate, low, high)``."""
    return {"rmse": bootstrap_interval(skm.root_mean_squared_error, y_true, y_pred, n_boot, seed),
            "mae": bootstrap_interval(skm.mean_absolute_error, y_true, y_pred, n_boot, seed),
            "r2": bootstrap_interval(skm.r2_score, y_true, y_pred, n_boot, seed)}
