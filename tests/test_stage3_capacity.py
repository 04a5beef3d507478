"""Stage 3's capacity measure: the unbounded least-squares output layer and the norm-bounded one."""

import numpy as np
import pytest

from nnlab.errors import NnlabValueError
from nnlab.stages.stage3 import output_layer_fit, span_error

GRID = np.linspace(-1, 1, 201)
SINE = np.sin(2 * np.pi * GRID)


def _collinear_units():
    """Eight tanh units with tiny first-layer weights: each nearly ``w x`` on [-1, 1], so nearly collinear."""
    w = np.linspace(0.01, 0.05, 8)
    return np.tanh(np.outer(GRID, w))


def _mse_with_best_bias(H, w, target):
    """The error of output weights ``w`` with the bias chosen best for them (the mean residual)."""
    r = target - H @ w
    return float(np.mean((r - r.mean()) ** 2))


def test_collinear_units_need_huge_weights_unbounded_and_the_bound_holds_them():
    H = _collinear_units()
    free = output_layer_fit(H, SINE)
    bounded = output_layer_fit(H, SINE, max_weight_norm=10.0)
    assert free["condition"] > 1e8
    assert free["weight_norm"] > 1e4 * 10.0  # the unbounded fit cancels enormous weights against each other
    assert bounded["weight_norm"] <= 10.0 * (1 + 1e-9)
    assert bounded["weight_norm"] == pytest.approx(10.0, rel=1e-6)  # the bound binds: the answer is on it
    assert bounded["mse"] > free["mse"]


@pytest.mark.parametrize("bound", [0.1, 1.0, 3.0, 30.0, 1e6])
def test_the_bounded_fit_never_beats_the_unbounded_and_respects_its_bound(bound):
    rng = np.random.default_rng(0)
    H = np.tanh(np.outer(GRID, rng.normal(size=12)) + rng.normal(size=12))
    free = output_layer_fit(H, SINE)
    bounded = output_layer_fit(H, SINE, bound)
    assert bounded["mse"] >= free["mse"] * (1 - 1e-9)
    assert bounded["weight_norm"] <= bound * (1 + 1e-9)
    assert free["mse"] == pytest.approx(span_error(H, SINE))


def test_the_bounded_fit_is_the_best_inside_its_bound():
    """No feasible output layer does better: not the unbounded weights shrunk onto the bound, nor random ones."""
    rng = np.random.default_rng(1)
    H = np.tanh(np.outer(GRID, rng.normal(size=10)) + rng.normal(size=10))
    free_w = np.linalg.lstsq(np.c_[H - H.mean(0)], SINE - SINE.mean(), rcond=None)[0]
    for bound in (0.5, 2.0, 5.0):
        best = output_layer_fit(H, SINE, bound)["mse"]
        candidates = [free_w * min(1.0, bound / np.linalg.norm(free_w))]
        for _ in range(200):
            v = rng.normal(size=H.shape[1])
            candidates.append(v / np.linalg.norm(v) * bound * rng.uniform())
        assert all(best <= _mse_with_best_bias(H, w, SINE) + 1e-12 for w in candidates)


def test_a_loose_bound_gives_the_unbounded_fit_and_tightening_it_never_helps():
    rng = np.random.default_rng(2)
    H = np.tanh(np.outer(GRID, rng.normal(size=6)) + rng.normal(size=6))
    free = output_layer_fit(H, SINE)
    assert output_layer_fit(H, SINE, free["weight_norm"] * 2)["mse"] == pytest.approx(free["mse"], rel=1e-9)
    errors = [output_layer_fit(H, SINE, b)["mse"] for b in (10.0, 3.0, 1.0, 0.3, 0.1)]
    assert all(a <= b for a, b in zip(errors, errors[1:]))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_a_bound_that_is_not_positive_is_refused(bad):
    with pytest.raises(NnlabValueError, match="output_layer_fit: max_weight_norm"):
        output_layer_fit(_collinear_units(), SINE, bad)
