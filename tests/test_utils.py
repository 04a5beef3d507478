"""Helpers: one_hot, standardization, assert_close, plot_series, seeding."""

import numpy as np
import pytest

import nnlab
from nnlab import assert_close, one_hot, plot_series, standardize_features, unstandardize_linear_weights


def test_one_hot_basic():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1]), 2).dtype == np.float32


@pytest.mark.parametrize("labels", [[-1, 0], [0, 3]])
def test_one_hot_rejects_out_of_range_labels(labels):
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(np.array(labels), 3)


def test_one_hot_rejects_fractional_labels():
    with pytest.raises(TypeError, match="integers"):
        one_hot(np.array([0.5]), 3)


def test_standardize_features(rng):
    X = rng.normal(loc=5, scale=3, size=(50, 3))
    Xn, mu, sigma = standardize_features(X)
    assert mu.shape == sigma.shape == (1, 3)
    np.testing.assert_allclose(Xn.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Xn.std(axis=0), 1, atol=1e-6)


def test_constant_column_does_not_divide_by_zero():
    Xn, _, _ = standardize_features(np.array([[1.0, 2.0], [1.0, 3.0]]))
    assert np.all(np.isfinite(Xn))


def test_unstandardized_weights_give_the_same_predictions(rng):
    X = rng.normal(loc=[0.5, 40, 1], scale=[0.2, 10, 1], size=(20, 3))
    Xn, mu, sigma = standardize_features(X)
    W_std, b_std = rng.normal(size=3), 650.0
    W_orig, b_orig = unstandardize_linear_weights(W_std, b_std, mu, sigma)
    np.testing.assert_allclose(Xn @ W_std + b_std, X @ W_orig + b_orig)
    W2, _ = unstandardize_linear_weights(W_std.reshape(1, 3), np.array([b_std]), mu, sigma)
    np.testing.assert_allclose(W2, W_orig)


def test_unstandardize_checks_shapes():
    with pytest.raises(ValueError, match="d entries"):
        unstandardize_linear_weights(np.ones(3), 0.0, np.ones((1, 2)), np.ones((1, 3)))


def test_assert_close_prints_and_returns(capsys):
    assert assert_close("same", np.ones(3), np.ones(3))
    assert not assert_close("diff", np.ones(3), np.zeros(3))
    assert not assert_close("shape", np.ones(3), np.ones(2))
    out = capsys.readouterr().out
    assert "[same] match: True" in out and "[diff] match: False" in out and "shapes: (3,) vs (2,)" in out
    with pytest.raises(AssertionError):
        assert_close("strict", np.ones(2), np.zeros(2), strict=True)


def test_plot_series_writes_a_png(tmp_path):
    path = plot_series(range(5), [5, 4, 3, 2, 1], title="MSE over steps", path=tmp_path / "mse.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_series_default_path_uses_title(tmp_path):
    path = plot_series([0, 1], [1.0, 0.5], title="Two-layer linear: MSE")
    assert path.name == "two_layer_linear_mse.png" and path.exists()


def test_plot_series_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        plot_series([0, 1, 2], [1.0, 2.0])


def test_seed_everything_is_repeatable():
    a = nnlab.seed_everything(7).normal(size=3), np.random.rand(2)
    b = nnlab.seed_everything(7).normal(size=3), np.random.rand(2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        nnlab.seed_everything(-1)


def test_one_hot_refuses_a_float_label_beyond_int64_without_a_numpy_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cast to int64 used to warn "invalid value encountered in cast"
        with pytest.raises(nnlab.NnlabValueError, match=r"labels must lie in \[0, 3\), got \[10000000000000000000\]"):
            nnlab.one_hot(np.array([1e19]), 3)


@pytest.mark.parametrize("xs, ys", [([0, 1, 2], [1.7e308] * 3), ([0, 1, 2], [1e308, 1.6e308, 1.7e308]),
                                    ([0, 1, 2], [-1.7e308, 1.7e308, 0.0]), ([0, 1e308, 1.7e308], [1, 2, 3])])
@pytest.mark.parametrize("logy", [False, True])
def test_plot_series_draws_values_near_float_max_without_a_warning(tmp_path, xs, ys, logy):
    """matplotlib's axis arithmetic overflowed there (a raw ValueError or OverflowError, after RuntimeWarnings)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = nnlab.plot_series(xs, ys, title="huge", path=tmp_path / "huge.png", logy=logy)
    assert path.stat().st_size > 0


def test_values_beyond_the_plot_limit_are_scaled_by_a_power_of_ten_the_label_names():
    from nnlab.utils import PLOT_LIMIT, _plottable

    values, label = _plottable(np.array([1.0, -1.7e308]), "loss")
    assert label == "loss (× 1e308)" and values.tolist() == [1e-308, -1.7]
    small = np.array([PLOT_LIMIT, -3.0])
    values, label = _plottable(small, "loss")
    assert values is small and label == "loss"


def test_plot_series_reads_a_generator_once(tmp_path):
    """A generator used to be refused as 'ys must hold real numbers, got dtype object'."""
    path = plot_series(range(3), (i * i for i in range(3)), title="gen", path=tmp_path / "g.png")
    assert path.stat().st_size > 0
    with pytest.raises(nnlab.NnlabValueError, match="xs and ys must be non-empty and the same length, got 3 and 2"):
        plot_series(iter([0, 1, 2]), (i for i in range(2)), path=tmp_path / "h.png")
