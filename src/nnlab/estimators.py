"""scikit-learn estimators whose network, backward pass, loss and optimizer are nnlab's own.

:class:`MLPClassifier` and :class:`MLPRegressor` follow scikit-learn's estimator API
(``fit`` / ``predict`` / ``predict_proba`` / ``score``, ``get_params`` / ``set_params``,
fitted attributes ending in ``_``) so that they work inside ``Pipeline``,
``cross_val_score`` and ``GridSearchCV``, and they pass
``sklearn.utils.estimator_checks``.  Underneath, the network is
:func:`nnlab.models.make_mlp`, trained by :func:`nnlab.train.fit` with nnlab's
:class:`~nnlab.optim.SGD` / :class:`~nnlab.optim.Adam`, :class:`~nnlab.losses.L2Penalty`
and :class:`~nnlab.losses.SoftmaxCrossEntropyLoss` / :class:`~nnlab.losses.MSELoss`.

Example:
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from nnlab.estimators import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), random_state=0))
    >>> model.fit(X, y).score(X, y) > 0.9
    True
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nnlab._checks import NonFiniteError
from nnlab.errors import NnlabRuntimeError, NnlabValueError
from nnlab.functional import softmax
from nnlab.losses import L2Penalty, MSELoss, SoftmaxCrossEntropyLoss
from nnlab.models import NONLINEARITIES, make_mlp
from nnlab.optim import SGD, Adam
from nnlab.train import EarlyStopping, fit, predict

#: Inputs beyond this magnitude make the first layer's products overflow float64 soon after.
MAX_ABS_INPUT = 1e150


class TrainingDivergedError(NnlabRuntimeError):
    """A fit whose loss or parameters became non-finite: the recipe (usually the learning rate) is at fault."""


def _penalty_lam(alpha: float, batch_size: int) -> float:
    """The handout's ``lam`` that equals scikit-learn's ``alpha`` on batches of ``batch_size`` rows.

    scikit-learn's MLP adds ``alpha / (2 B) * sum ||W||^2`` to the mean loss of a batch of
    ``B`` rows; the handout's L2 adds ``lam * sum ||W||^2``; so ``lam = alpha / (2 B)``.
    """
    return alpha / (2.0 * batch_size)


class _MLPBase(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks and the training call.

    Parameters (scikit-learn's names and meanings where scikit-learn has them):
        hidden_layer_sizes: widths of the hidden layers, e.g. ``(64,)`` or ``(32, 32)``.
        activation: ``"relu"`` or ``"tanh"`` between layers.
        solver: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        alpha: L2 strength in scikit-learn's convention: a batch of ``B`` rows adds
            ``alpha / (2 B) * sum ||W||^2`` (weights only, never biases) to its mean loss,
            so the handout's ``lam = alpha / (2 B)``.  For classification the objective is
            then exactly scikit-learn's ``MLPClassifier``'s; scikit-learn's regression loss is
            half the squared error, so there the same ``alpha`` weighs twice as much as here.
            (Every full batch of an epoch uses ``B = batch_size``; a smaller last batch gets
            the same ``lam``.)
        batch_size: rows per step; ``"auto"`` is ``min(200, n_samples)``.
        learning_rate_init: the optimizer's learning rate.
        momentum: SGD momentum (ignored by Adam).
        max_iter: epochs.  Without early stopping every epoch runs.
        early_stopping: hold out ``validation_fraction`` of the rows (stratified for a
            classifier), stop when the validation loss has not improved by ``tol`` for
            ``n_iter_no_change`` epochs, and keep the best epoch's weights.
        validation_fraction: share of rows held out for early stopping.
        n_iter_no_change: early-stopping patience in epochs.
        tol: smallest improvement of the validation loss that counts.
        random_state: seed (``int``), ``RandomState`` or ``None``: initial weights, shuffling
            and the early-stopping split.
        dtype: ``"float64"`` or ``"float32"`` for the network's arithmetic.

    Fitted attributes: ``n_features_in_``, ``feature_names_in_`` (when fitted on a DataFrame
    with text column names), ``network_`` (the trained :class:`~nnlab.layers.Sequential`),
    ``loss_curve_`` (mean training loss of every epoch, penalty included), ``n_iter_``
    (epochs run), and with early stopping ``validation_loss_curve_``, ``best_epoch_``
    (1-based) and ``n_validation_rows_``.
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", solver="adam", alpha=1e-4, batch_size="auto",
                 learning_rate_init=1e-3, momentum=0.9, max_iter=200, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, random_state=None, dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.dtype = dtype

    # ---- checks --------------------------------------------------------------------------------------------
    def _where(self, method: str) -> str:
        return f"{type(self).__name__}.{method}"

    def _np_dtype(self):
        if self.dtype not in ("float64", "float32"):
            raise NnlabValueError(f"{self._where('fit')}: dtype must be 'float64' or 'float32', got {self.dtype!r}")
        return np.dtype(self.dtype)

    def _hidden(self) -> tuple:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise NnlabValueError(f"{self._where('fit')}: hidden_layer_sizes must be positive integers, "
                                  f"got {self.hidden_layer_sizes!r}")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> None:
        where = self._where("fit")
        if self.activation not in NONLINEARITIES:
            raise NnlabValueError(f"{where}: activation must be one of {sorted(NONLINEARITIES)}, "
                                  f"got {self.activation!r}")
        if self.solver not in ("adam", "sgd"):
            raise NnlabValueError(f"{where}: solver must be 'adam' or 'sgd', got {self.solver!r}")
        checks = [("alpha", self.alpha, 0.0, True), ("learning_rate_init", self.learning_rate_init, 0.0, False),
                  ("tol", self.tol, 0.0, True)]
        for name, value, low, allow_low in checks:
            ok = isinstance(value, numbers.Real) and np.isfinite(value) and (value >= low if allow_low else value > low)
            if not ok:
                raise NnlabValueError(f"{where}: {name} must be a finite number {'>=' if allow_low else '>'} {low:g}, "
                                      f"got {value!r}")
        if not (isinstance(self.momentum, numbers.Real) and 0 <= self.momentum < 1):
            raise NnlabValueError(f"{where}: momentum must lie in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.validation_fraction, numbers.Real) and 0 < self.validation_fraction < 1):
            raise NnlabValueError(f"{where}: validation_fraction must lie in (0, 1), got {self.validation_fraction!r}")
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise NnlabValueError(f"{where}: {name} must be a positive integer, got {value!r}")
        if self.batch_size != "auto" and (not isinstance(self.batch_size, numbers.Integral)
                                          or isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise NnlabValueError(f"{where}: batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")

    def _check_magnitude(self, X) -> None:
        """Refuse inputs so large that the first layer would overflow: name the column."""
        if X.size == 0:
            return
        peak = np.max(np.abs(X), axis=0).astype(np.float64)
        if np.any(peak > MAX_ABS_INPUT):
            j = int(np.argmax(peak))
            names = getattr(self, "feature_names_in_", None)
            column = f"'{names[j]}'" if names is not None else str(j)
            raise NnlabValueError(f"{self._where('fit')}: feature {column} holds values up to {peak[j]:.3g} in "
                                  f"magnitude (at most {MAX_ABS_INPUT:g} can be trained on); standardise the features "
                                  f"first, e.g. with sklearn.preprocessing.StandardScaler")

    # ---- training --------------------------------------------------------------------------------------------
    def _train(self, X, T, n_out: int, loss_factory, stratify=None):
        """Build ``make_mlp([d, *hidden, n_out])`` and train it on ``(X, T)``; sets the fitted attributes."""
        self._check_params()
        dtype = self._np_dtype()
        hidden = self._hidden()
        self._check_magnitude(X)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        rng = np.random.default_rng(seed)
        X = np.asarray(X, dtype=dtype)
        X_val = T_val = None
        if self.early_stopping:
            X, X_val, T, T_val = self._validation_split(X, T, seed, stratify)
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        network = make_mlp([X.shape[1], *hidden, n_out], nonlin=self.activation, dtype=dtype, rng=rng)
        params = network.parameters()
        optimizer = (Adam(params, lr=self.learning_rate_init) if self.solver == "adam"
                     else SGD(params, lr=self.learning_rate_init, momentum=self.momentum))
        penalty = L2Penalty(_penalty_lam(self.alpha, batch)) if self.alpha else None
        evaluate = stopper = None
        if X_val is not None:
            val_loss = loss_factory()

            def evaluate(_epoch):
                with np.errstate(over="ignore", invalid="ignore"):
                    try:
                        value = val_loss(predict(network, X_val), T_val)[0]
                    except NonFiniteError:  # an overflowing network is a diverging one: it cannot be the best
                        value = float("inf")
                return {"val_loss": value}

            stopper = EarlyStopping(patience=int(self.n_iter_no_change), min_delta=float(self.tol))
        history = fit(network, loss_factory(), optimizer, X, T, epochs=int(self.max_iter), batch_size=batch, rng=rng,
                      penalty=penalty, evaluate=evaluate, early_stopping=stopper, name=self._where("fit"))
        if history.diverged or (stopper is not None and history.best_epoch is None):
            raise TrainingDivergedError(history.message or f"{self._where('fit')}: the validation loss was never "
                                        "finite; lower learning_rate_init")
        self.network_ = network
        self.loss_curve_ = list(history.epoch_loss)
        self.n_iter_ = history.epochs_run
        if stopper is not None:
            self.validation_loss_curve_ = list(history.metrics["val_loss"])
            self.best_epoch_ = history.best_epoch + 1
            self.n_validation_rows_ = int(X_val.shape[0])
        return self

    def _validation_split(self, X, T, seed, stratify):
        n = X.shape[0]
        if n < 2:
            raise NnlabValueError(f"{self._where('fit')}: early_stopping needs at least 2 rows, got {n} sample(s)")
        if stratify is not None:
            counts = np.unique(stratify, return_counts=True)[1]
            n_val = int(np.ceil(self.validation_fraction * n))
            # a class of one row, or fewer held-out rows than classes, cannot be stratified: split at random
            if counts.min() < 2 or n_val < len(counts) or n - n_val < len(counts):
                stratify = None
        return train_test_split(X, T, test_size=self.validation_fraction, random_state=seed, stratify=stratify)

    def _outputs(self, X):
        """The network's raw outputs for checked, validated ``X``."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=self.network_.parameters()[0].value.dtype)
        return predict(self.network_, X)


class MLPClassifier(ClassifierMixin, _MLPBase):
    """A multi-layer perceptron classifier: softmax cross-entropy on ``len(classes_)`` logits.

    Parameters: see :class:`_MLPBase` (scikit-learn's names: ``hidden_layer_sizes``,
    ``activation``, ``solver``, ``alpha``, ``batch_size``, ``learning_rate_init``,
    ``max_iter``, ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``,
    ``random_state``, plus ``dtype``).

    Fitted attributes: ``classes_`` (sorted labels), and those listed in :class:`_MLPBase`.

    Shape:
        fit: X (n, d), y (n,) labels of any type; predict_proba: (m, d) -> (m, n_classes).
    """

    def fit(self, X, y):
        """Train on ``X`` (n, d) and labels ``y`` (n,); returns ``self``.

        Raises:
            TrainingDivergedError: when the loss becomes non-finite (lower the learning rate).
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise NnlabValueError(f"MLPClassifier.fit: y holds one class ('{self.classes_[0]}'); classification "
                                  "needs at least two")
        return self._train(X, labels.astype(np.int64), len(self.classes_), SoftmaxCrossEntropyLoss, stratify=labels)

    def predict_proba(self, X):
        """Class probabilities, (m, n_classes), columns in the order of ``classes_``: ``softmax(logits)``."""
        return softmax(self._outputs(X)).astype(np.float64)

    def predict(self, X):
        """The most probable class of every row, (m,)."""
        scores = self._outputs(X)
        return self.classes_[np.argmax(scores, axis=1)]


class MLPRegressor(RegressorMixin, _MLPBase):
    """A multi-layer perceptron regressor: MSE on one output, the target standardised internally.

    The network learns ``(y - y_mean_) / y_scale_``; ``predict`` undoes it.  So the
    learning rate does not depend on the target's units (a target in the hundreds trains
    like one near 1).

    Fitted attributes: ``y_mean_``, ``y_scale_``, and those listed in :class:`_MLPBase`.

    Shape:
        fit: X (n, d), y (n,); predict: (m, d) -> (m,).
    """

    def fit(self, X, y):
        """Train on ``X`` (n, d) and a numeric target ``y`` (n,); returns ``self``.

        Raises:
            TrainingDivergedError: when the loss becomes non-finite (lower the learning rate).
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self.y_mean_, self.y_scale_ = _mean_and_scale(y)
        # a constant target: y_scale_ = 0 makes predict return the constant exactly, whatever the network learned
        target = ((y - self.y_mean_) / (self.y_scale_ or 1.0)).reshape(-1, 1)
        return self._train(X, target.astype(self._np_dtype()), 1, MSELoss)

    def predict(self, X):
        """Predicted targets, (m,): ``network(X) * y_scale_ + y_mean_``."""
        return self._outputs(X).ravel().astype(np.float64) * self.y_scale_ + self.y_mean_


def _mean_and_scale(y) -> tuple[float, float]:
    """Mean and standard deviation of ``y`` without overflow (0.0 for a constant ``y``).

    The values are divided by their largest magnitude first, so ``y`` near 1e300 works too.
    """
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak == 0.0:
        return 0.0, 0.0
    if np.all(y == y[0]):  # exactly the constant (a mean of rounded quotients could miss it by an ulp)
        return float(y[0]), 0.0
    unit = y / peak
    mean = float(np.mean(unit)) * peak
    scale = float(np.std(unit)) * peak
    return mean, scale
