"""nnlab's scikit-learn estimators: scikit-learn's own checks, use inside its tools, divergence, the L2 mapping."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnlab.errors import NnlabError
from nnlab.estimators import MLPClassifier, MLPRegressor, TrainingDivergedError, _penalty_lam


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_grid_search_and_cross_val_score():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01,
                                                         batch_size=32, max_iter=60, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [0.0, 1.0], "mlpclassifier__activation": ["relu", "tanh"]},
                        cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.85 and grid.score(X, y) > 0.9
    assert len(grid.cv_results_["params"]) == 4
    scores = cross_val_score(make_pipeline(StandardScaler(), MLPRegressor(learning_rate_init=0.01, batch_size=32,
                                                                          max_iter=60, random_state=0)),
                             *make_regression(200, 5, noise=5.0, random_state=0), cv=3)
    assert scores.min() > 0.8


def test_fitted_attributes_and_feature_names():
    import pandas as pd

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = MLPClassifier(max_iter=5, early_stopping=True, n_iter_no_change=2, random_state=0).fit(X, y)
    assert list(model.feature_names_in_) == list(X.columns) and model.n_features_in_ == 4
    assert model.classes_.tolist() == [0, 1, 2] and model.n_iter_ == len(model.loss_curve_) <= 5
    assert len(model.validation_loss_curve_) == model.n_iter_ and 1 <= model.best_epoch_ <= model.n_iter_
    assert model.predict_proba(X).shape == (150, 3)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(pd.DataFrame(X.to_numpy()[:, ::-1], columns=X.columns[::-1]))


def test_same_seed_same_model_and_float32():
    X, y = load_iris(return_X_y=True)
    a = MLPClassifier(max_iter=20, random_state=3).fit(X, y).predict_proba(X)
    b = MLPClassifier(max_iter=20, random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = MLPClassifier(max_iter=20, random_state=4).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)
    f32 = MLPClassifier(max_iter=20, random_state=3, dtype="float32").fit(X, y)
    assert f32.network_.parameters()[0].value.dtype == np.float32
    np.testing.assert_allclose(f32.predict_proba(X), a, atol=1e-3)


def test_regressor_standardises_its_target():
    """A target in the millions trains like one near 1: predictions scale exactly with it."""
    X, y = make_regression(120, 4, noise=1.0, random_state=1)
    small = MLPRegressor(learning_rate_init=0.01, batch_size=16, max_iter=40, random_state=0).fit(X, y)
    large = MLPRegressor(learning_rate_init=0.01, batch_size=16, max_iter=40, random_state=0).fit(X, y * 1e6 + 5e6)
    np.testing.assert_allclose(large.predict(X), small.predict(X) * 1e6 + 5e6, rtol=1e-9)
    assert small.score(X, y) > 0.9


def test_divergence_is_one_clear_error_without_numpy_warnings():
    X, y = make_regression(100, 3, random_state=0)
    model = MLPRegressor(solver="sgd", learning_rate_init=1e3, momentum=0.9, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy RuntimeWarning would fail here
        with pytest.raises(TrainingDivergedError, match="diverged") as info:
            model.fit(X, y)
    assert isinstance(info.value, NnlabError)
    # softmax cross-entropy keeps its gradient bounded, so a classifier needs an absurd rate to overflow
    clf = MLPClassifier(solver="sgd", learning_rate_init=1e300, max_iter=30, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingDivergedError):
            clf.fit(*load_iris(return_X_y=True))


def test_a_diverging_candidate_loses_the_search():
    X, y = make_regression(120, 3, noise=1.0, random_state=0)
    grid = GridSearchCV(make_pipeline(StandardScaler(), MLPRegressor(solver="sgd", max_iter=30, random_state=0)),
                        {"mlpregressor__learning_rate_init": [1e3, 0.05]}, cv=3, error_score=-np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's FitFailedWarning for the diverging candidate
        grid.fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert scores[0] == -np.inf and np.isfinite(scores[1])
    assert grid.best_params_["mlpregressor__learning_rate_init"] == 0.05


def test_huge_inputs_are_refused_by_name():
    import pandas as pd

    X = pd.DataFrame({"a": np.linspace(0, 1, 30), "big": np.linspace(1, 2, 30) * 1e200})
    y = np.arange(30) % 2
    with pytest.raises(ValueError, match=r"feature 'big' holds values up to 2e\+200"):
        MLPClassifier(max_iter=2).fit(X, y)


def test_bad_parameters_are_nnlab_errors():
    X, y = load_iris(return_X_y=True)
    for params, fragment in [({"solver": "lbfgs"}, "solver"), ({"alpha": -1.0}, "alpha"),
                             ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"), ({"batch_size": 0}, "batch_size"),
                             ({"activation": "swish"}, "activation"), ({"dtype": "float16"}, "dtype")]:
        with pytest.raises(NnlabError, match=fragment):
            MLPClassifier(max_iter=1, **params).fit(X, y)


def test_alpha_means_what_sklearn_alpha_means():
    """One full-batch SGD step of ours equals scikit-learn's MLPClassifier's step from the same weights.

    That pins the mapping ``lam = alpha / (2 B)``: with ``lam = alpha`` (or any other factor) the
    weights after the step differ (checked below with a deliberately wrong mapping).
    """
    from sklearn.neural_network import MLPClassifier as SkMLP

    import nnlab

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    n, alpha, lr = len(y), 5.0, 0.1
    sk = SkMLP(hidden_layer_sizes=(6,), activation="tanh", solver="sgd", learning_rate_init=lr, momentum=0.0,
               alpha=alpha, batch_size=n, max_iter=1, shuffle=False, random_state=0)
    sk.partial_fit(X, y, classes=[0, 1, 2])
    start = [w.copy() for w in sk.coefs_], [b.copy() for b in sk.intercepts_]
    sk.partial_fit(X, y)  # one more step, from `start`

    def our_step(lam):
        net = nnlab.make_mlp([4, 6, 3], nonlin="tanh")
        for layer, W, b in zip([net.layers[0], net.layers[2]], *start):
            layer.W[...] = W.T
            layer.b[...] = b
        nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=lr), X, y, epochs=1,
                  batch_size=n, penalty=nnlab.L2Penalty(lam))
        return net.layers[0].W.T

    np.testing.assert_allclose(our_step(_penalty_lam(alpha, n)), sk.coefs_[0], rtol=1e-10, atol=1e-12)
    assert not np.allclose(our_step(alpha), sk.coefs_[0], rtol=1e-6)


def test_readme_example_runs(capsys):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## scikit-learn estimators on nnlab's network", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    assert "mlpclassifier__alpha" in capsys.readouterr().out


@pytest.mark.parametrize("constant", [1e-9, 1.0, -3.5, 0.0, 1e300])
def test_a_constant_target_is_predicted_exactly(constant):
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, np.full(40, constant))
    assert np.all(model.predict(X[:10] * 3) == constant)
