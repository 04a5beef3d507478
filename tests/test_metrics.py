"""Stage 7's scores: scikit-learn's metrics with SciPy bootstrap intervals; Stage 5's confusion matrix."""

import numpy as np
import pytest
from sklearn import metrics as skm

from nnlab import metrics as mx


@pytest.mark.parametrize("seed", range(3))
def test_confusion_matrix_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=60)
    p = np.where(rng.random(60) < 0.7, y, rng.integers(0, 3, size=60))
    np.testing.assert_array_equal(mx.confusion_matrix(y, p, 3), skm.confusion_matrix(y, p, labels=[0, 1, 2]))


def test_scores_are_sklearns_with_intervals_around_them():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    p = np.where(rng.random(200) < 0.8, y, 1 - y)
    proba = np.c_[1 - 0.7 * p - 0.1, 0.7 * p + 0.1]
    out = mx.classification_scores(y, p, proba, [0, 1], n_boot=300, seed=1)
    assert out["accuracy"][0] == skm.accuracy_score(y, p)
    assert out["macro_f1"][0] == skm.f1_score(y, p, average="macro")
    assert out["roc_auc"][0] == skm.roc_auc_score(y, proba[:, 1])
    for est, lo, hi in out.values():
        assert lo < est < hi and hi - lo < 0.2
    t, q = rng.normal(size=40), rng.normal(size=40)
    reg = mx.regression_scores(t, q, n_boot=200, seed=1)
    assert reg["rmse"][0] == skm.root_mean_squared_error(t, q) and reg["r2"][0] == skm.r2_score(t, q)


def test_bootstrap_is_seeded_and_matches_scipy_percentiles():
    from scipy import stats

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=50)
    p = np.where(rng.random(50) < 0.75, y, 1 - y)
    a = mx.bootstrap_interval(skm.accuracy_score, y, p, n_boot=400, seed=7)
    assert a == mx.bootstrap_interval(skm.accuracy_score, y, p, n_boot=400, seed=7)
    ref = stats.bootstrap((y, p), skm.accuracy_score, paired=True, vectorized=False, n_resamples=400,
                          method="percentile", rng=np.random.default_rng(7)).confidence_interval
    assert a[1:] == pytest.approx((ref.low, ref.high))


def test_auc_resamples_with_one_class_are_left_out():
    y = np.array([0] * 19 + [1])  # many resamples hold no positive
    score = np.linspace(0, 1, 20)
    est, lo, hi = mx.bootstrap_interval(lambda t, s: skm.roc_auc_score(t, s), y, score, n_boot=200, seed=0)
    assert est == 1.0 and np.isfinite(lo) and np.isfinite(hi)
