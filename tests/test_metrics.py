"""Our metrics equal scikit-learn's on random inputs."""

import numpy as np
import pytest
from sklearn import metrics as skm

from nnlab import metrics as mx


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=60)
    p = np.where(rng.random(60) < 0.7, y, rng.integers(0, 3, size=60))
    assert mx.accuracy_score(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert mx.macro_f1(y, p, 3) == pytest.approx(skm.f1_score(y, p, average="macro"))
    np.testing.assert_array_equal(mx.confusion_matrix(y, p, 3), skm.confusion_matrix(y, p, labels=[0, 1, 2]))
    yb = rng.integers(0, 2, size=50)
    score = np.round(rng.random(50) + 0.3 * yb, 1)  # rounding makes ties
    assert mx.roc_auc(yb, score) == pytest.approx(skm.roc_auc_score(yb, score))
    t, q = rng.normal(size=40), rng.normal(size=40)
    assert mx.rmse(t, q) == pytest.approx(np.sqrt(skm.mean_squared_error(t, q)))
    assert mx.mae(t, q) == pytest.approx(skm.mean_absolute_error(t, q))
    assert mx.r2(t, q) == pytest.approx(skm.r2_score(t, q))


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    p = np.where(rng.random(200) < 0.8, y, 1 - y)
    est, lo, hi = mx.bootstrap_ci(mx.accuracy_score, y, p, np.random.default_rng(1), n_boot=300)
    assert lo < est < hi and hi - lo < 0.15


def test_auc_with_one_class_is_nan():
    assert np.isnan(mx.roc_auc(np.ones(5), np.arange(5)))
