"""Stage 7 -- train your own network: a real data set, an honest protocol, baselines.

Default data: scikit-learn's bundled Breast Cancer Wisconsin (Diagnostic) set --
569 tumours, 30 real-valued measurements of cell nuclei from a digitised image,
labelled malignant or benign.  It is real clinical data, ships with scikit-learn
(no download), is small enough to search hyper-parameters by cross-validation in
seconds, and being binary it lets us report ROC-AUC next to accuracy.  Any CSV
works too: ``nnlab run 7 --csv PATH --target COLUMN``.

The network is nnlab's own (:class:`nnlab.estimators.MLPClassifier` /
:class:`~nnlab.estimators.MLPRegressor`); everything around it is scikit-learn's.
Protocol (the test rows are set aside first and touched exactly once):

1. a stratified split fixed by the seed: 20 % test rows; the rest are the non-test rows;
2. a random search (``RandomizedSearchCV``, a fixed seed) over depth, width,
   activation, optimizer, learning rate, L2 and batch size, each candidate scored by
   stratified k-fold cross-validation on the non-test rows, as a ``Pipeline`` whose
   preprocessing (``ColumnTransformer``: imputation, standardisation, one-hot encoding)
   is fitted on each fold's training rows only, and whose network early-stops on an
   inner split of them; the folds run on both cores, one BLAS thread each;
3. the chosen recipe is trained on the non-test rows (80 % training, 20 % validation for
   early stopping) and evaluated once on the test rows, with bootstrap 95 % intervals;
4. baselines through the same preprocessing on the same rows: the trivial predictor, a
   linear model and scikit-learn's MLP.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.data.column_record import column_record, constant_columns, constant_filled, record_csv, record_line
from nnlab.data.preprocess import export_state, make_preprocessor
from nnlab.data.tabular import CSVError, Table, bundled_table, duplicate_split_note, read_csv_table
from nnlab.errors import NnlabRuntimeError
from nnlab.estimators import MLPClassifier, MLPRegressor
from nnlab.metrics import HEADLINE, INTERVAL_LEVEL, classification_scores, paired_difference, regression_scores
from nnlab.stages.common import Result, config_dict

TITLE = "Stage 7 - your own network on a real data set"
#: Share of the rows set aside as the test split, and share of the remaining rows the networks early-stop on.
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2
#: The accuracy a test split must be able to rule out for a model with every test row right.
RULE_OUT_ACCURACY = 0.9


def rows_to_rule_out(accuracy: float, level: float = INTERVAL_LEVEL) -> int:
    """Fewest test rows m for which m right out of m gives an exact (Clopper-Pearson) two-sided ``level``
    interval that excludes ``accuracy``: its lower bound ``((1 - level) / 2) ** (1 / m)`` must exceed it."""
    return math.floor(math.log((1 - level) / 2) / math.log(accuracy)) + 1


#: Fewer test rows than this get a "very small data set" note: with fewer, even every test row right leaves
#: ``RULE_OUT_ACCURACY`` inside the exact interval the stage prints (36 at 95 % and 0.9; a test checks it).
SMALL_TEST_ROWS = rows_to_rule_out(RULE_OUT_ACCURACY)

_WIDTHS = (16, 32, 64, 128)
_COMMON = {"mlp__hidden_layer_sizes": [(w,) * depth for depth in (1, 2) for w in _WIDTHS],
           "mlp__activation": ["relu", "tanh"], "mlp__alpha": [0.0, 0.01, 0.1, 1.0], "mlp__batch_size": [16, 32, 64]}
#: The candidates' grid (``Pipeline`` parameter names); the learning rates depend on the optimizer.
SEARCH_SPACE = [{**_COMMON, "mlp__solver": ["adam"], "mlp__learning_rate_init": [3e-4, 1e-3, 3e-3]},
                {**_COMMON, "mlp__solver": ["sgd"], "mlp__learning_rate_init": [0.01, 0.03, 0.1]}]


@dataclass
class Config:
    """Stage 7 settings.

    Attributes (the less obvious ones):
        impute: how missing numbers are filled from the training rows: ``"mean"`` or ``"median"``.
        categorical: ``"auto"`` one-hot encodes text columns; ``"none"`` makes text an error.
        na_values: cell texts of the CSV that mean missing besides pandas' own (``--na-values``).
        decimal: how the CSV writes numbers, ``"point"`` or ``"comma"`` (``--decimal``); ``None``: from its cells.
        keep_id_columns: keep identifier-like columns (see :mod:`nnlab.data.tabular`).
        max_categories: a text column with more distinct values is dropped (or, kept, capped).
        n_jobs: processes for the search and the bootstrap intervals (one BLAS thread each).
        search_rows: the search cross-validates on at most this many non-test rows (a
            stratified sample, fixed by the seed); the chosen recipe is trained on all of them.
    """

    dataset: str = "breast_cancer"  # with csv set, the CSV's file name (recorded so in metrics.json)
    csv: str | None = None
    na_values: tuple = ()
    decimal: str | None = None
    target: str | None = None
    task: str | None = None
    impute: str = "mean"
    categorical: str = "auto"
    keep_id_columns: bool = False
    max_categories: int = 50
    seed: int = 42
    folds: int = 5
    candidates: int = 12
    max_epochs: int = 300
    patience: int = 20
    n_boot: int = 1000
    n_jobs: int = 2
    search_rows: int = 20000
    baselines: bool = True
    save: str | None = None
    load: str | None = None

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "folds": 3, "candidates": 3, "max_epochs": 40, "patience": 5,
                         "n_boot": 100, "search_rows": 5000})


def load_table(c: Config) -> Table:
    """The configured data: a CSV when ``c.csv`` is set, else a bundled set."""
    if c.csv:
        if not c.target:
            raise CSVError("--csv needs --target COLUMN")
        return read_csv_table(c.csv, c.target, task=c.task, keep_id_columns=c.keep_id_columns,
                              max_categories=c.max_categories, categorical=c.categorical, na_values=c.na_values,
                              decimal=c.decimal)
    table = bundled_table(c.dataset)
    if c.task and c.task != table.task:
        raise CSVError(f"dataset {c.dataset} is a {table.task} task, not {c.task}")
    return table


def strata(table: Table) -> np.ndarray:
    """Labels to stratify on: the classes, or quintiles of a regression target.

    A small regression table gets fewer bins, as many as the test split has rows (each bin needs a test row
    and two rows in all), or one.
    """
    if table.task == "classification":
        return table.y
    n = len(table.y)
    bins = min(5, int(np.ceil(n * TEST_FRACTION)), n // 2)
    if bins < 2:
        return np.zeros(n, dtype=int)
    edges = np.quantile(table.y, np.linspace(0, 1, bins + 1)[1:-1])
    labels = np.searchsorted(edges, table.y)
    return labels if np.bincount(labels).min() >= 2 else np.zeros(n, dtype=int)


def check_class_sizes(table: Table, folds: int) -> None:
    """Every class needs ``folds + 2`` rows: one or more for the test split, ``folds`` for the folds, and one spare."""
    if table.task != "classification":
        return
    labels, counts = np.unique(table.y, return_counts=True)
    if counts.max() == 1 and table.task_reason != "as asked (--task)":  # (asked for: each class is too small)
        raise CSVError(f"target '{table.target}' holds a different value on every row, like an identifier or a date "
                       f"(e.g. '{table.classes[0]}'): it cannot be learned as classes; choose another --target, or "
                       "--task regression if it is a quantity")
    need = folds + 2
    small = counts < need
    if small.any():
        names = dict(zip(labels.tolist(), table.classes))
        pairs = list(zip(labels[small].tolist(), counts[small]))
        shown = ", ".join(f"'{names[v]}' has {k}" for v, k in pairs[:5]) + (", ..." if len(pairs) > 5 else "")
        raise CSVError(f"{int(small.sum())} of {len(labels)} classes are too small: {shown} row(s); a 20 % test "
                       f"split and {folds}-fold cross-validation need at least {need} rows of every class")


def split_rows(table: Table, seed: int):
    """Non-test and test row indices (``TEST_FRACTION`` of the rows for the test), stratified, fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(table.y))
    pool, test = train_test_split(rows, test_size=TEST_FRACTION, random_state=seed, stratify=strata(table))
    return np.sort(pool), np.sort(test)


def make_pipeline(table: Table, c: Config, **mlp_params):
    """Preprocessing + nnlab's network, as one scikit-learn ``Pipeline`` (early stopping on)."""
    from sklearn.pipeline import Pipeline

    kind = MLPClassifier if table.task == "classification" else MLPRegressor
    mlp = kind(max_iter=c.max_epochs, early_stopping=True, validation_fraction=VALIDATION_FRACTION,
               n_iter_no_change=c.patience, random_state=c.seed, **mlp_params)
    return Pipeline([("prep", make_preprocessor(table.numeric, table.categorical, table.prescale, c.impute,
                                                c.max_categories)), ("mlp", mlp)])


def score_text(headline: str, value: float, low: float, high: float) -> str:
    """A test score and its interval for the summary: accuracy to 4 decimals; an RMSE (in the target's own units,
    which may be 1e-12 or 1e12) to 4 significant digits, so that neither reads as 0.0000 nor as 14 digits."""
    spec = ".4f" if headline == "accuracy" else ".4g"
    return f"{value:{spec}} [{low:{spec}}, {high:{spec}}]"


def describe(params: dict) -> str:
    """One line naming a candidate's choices, for tables."""
    p = {k.removeprefix("mlp__"): v for k, v in params.items()}
    opt = f"Adam(lr={p['learning_rate_init']:g})" if p["solver"] == "adam" else \
        f"SGD(lr={p['learning_rate_init']:g}, m={MLPClassifier().momentum:g})"
    text = f"{'-'.join(map(str, p['hidden_layer_sizes']))} {p['activation']}, {opt}, batch {p['batch_size']}"
    return text + (f", alpha {p['alpha']:g}" if p["alpha"] else "")


def _search_rows(table: Table, rows, c: Config):
    """The rows the search uses: all non-test rows, or a stratified sample of ``c.search_rows`` of them."""
    from sklearn.model_selection import train_test_split

    if len(rows) <= c.search_rows:
        return rows
    sample, _ = train_test_split(rows, train_size=c.search_rows, random_state=c.seed, stratify=strata(table)[rows])
    return np.sort(sample)


def search(table: Table, rows, c: Config, n_jobs: int | None = None):
    """Cross-validate ``c.candidates`` random recipes on ``rows`` (never the test rows); ranked, best first.

    A candidate whose training diverges on a fold scores ``-inf`` there (the worst), so it loses
    the search instead of stopping it.  Runs on ``n_jobs`` processes (default ``c.n_jobs``), one
    BLAS thread each; the scores equal a sequential run's.
    """
    from joblib import parallel_config
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold
    from threadpoolctl import threadpool_limits

    classify = table.task == "classification"
    folds = (StratifiedKFold if classify else KFold)(c.folds, shuffle=True, random_state=c.seed)
    searcher = RandomizedSearchCV(make_pipeline(table, c), SEARCH_SPACE, n_iter=c.candidates, cv=folds,
                                  scoring="neg_log_loss" if classify else "neg_mean_squared_error", refit=False,
                                  random_state=c.seed, n_jobs=c.n_jobs if n_jobs is None else n_jobs,
                                  error_score=-np.inf)
    with threadpool_limits(1), parallel_config(backend="loky", inner_max_num_threads=1), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitFailedWarning)
        try:
            searcher.fit(table.X.iloc[rows], table.y[rows])
        except ValueError as exc:
            if "fits failed" not in str(exc):
                raise
            raise NnlabRuntimeError(f"Stage 7: every candidate diverged on every fold ({_last_line(str(exc))})") \
                from None
    failed = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)]
    for text in failed:
        if "TrainingDivergedError" not in text:  # a failure that is not divergence is a bug: show it
            raise NnlabRuntimeError(f"Stage 7: a candidate failed in cross-validation: {_last_line(text)}")
    cv = searcher.cv_results_
    results = []
    for i, params in enumerate(cv["params"]):
        per_fold = [-float(cv[f"split{f}_test_score"][i]) for f in range(c.folds)]
        results.append({"recipe": describe(params), "cv_loss": -float(cv["mean_test_score"][i]),
                        "cv_loss_folds": per_fold, "diverged_folds": int(np.sum(np.isinf(per_fold))),
                        "hidden_layer_sizes": list(params["mlp__hidden_layer_sizes"]),
                        "params": {k.removeprefix("mlp__"): v for k, v in params.items()}})
    results.sort(key=lambda r: r["cv_loss"])  # stable: ties keep the sampler's order
    return results


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else text


def baselines(table: Table, X_fit, y_fit, c: Config) -> dict:
    """The trivial predictor, a linear model and scikit-learn's MLP, fitted through the same preprocessing.

    scikit-learn's MLP gets our epoch budget and early stopping on the same validation fraction
    with the same patience (it watches its validation score, ours the validation loss), and for
    regression the same standardised target as ours (``TransformedTargetRegressor``).
    """
    from sklearn.base import clone
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    budget = {"random_state": c.seed, "max_iter": c.max_epochs, "early_stopping": True,
              "validation_fraction": VALIDATION_FRACTION, "n_iter_no_change": c.patience}
    if table.task == "classification":
        models = {"majority class": DummyClassifier(strategy="most_frequent"),
                  "LogisticRegression": LogisticRegression(max_iter=5000),
                  "sklearn MLPClassifier": SkMLPClassifier(**budget)}
    else:
        models = {"mean": DummyRegressor(), "Ridge": Ridge(),
                  "sklearn MLPRegressor": TransformedTargetRegressor(SkMLPRegressor(**budget),
                                                                     transformer=StandardScaler())}
    prep = make_pipeline(table, c).named_steps["prep"]
    fitted = {}
    for name, model in models.items():
        fitted[name] = Pipeline([("prep", clone(prep)), ("model", model)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted[name].fit(X_fit, y_fit)
    return fitted


def _predictions(table: Table, model, X_te):
    """``(predictions, class probabilities or None, classes or None)`` of a fitted model on the test rows."""
    if table.task == "classification":
        proba = model.predict_proba(X_te) if hasattr(model, "predict_proba") else None
        return model.predict(X_te), proba, model.classes_
    return model.predict(X_te), None, None


def _score(task, y_te, pred, proba, classes, n_boot, seed) -> dict:
    """One model's test metrics with bootstrap intervals."""
    if task == "classification":
        return classification_scores(y_te, pred, proba, classes, n_boot, seed)
    return regression_scores(y_te, pred, n_boot, seed)


def score_models(table: Table, models: dict, X_te, y_te, c: Config) -> tuple[dict, dict]:
    """Test metrics of every fitted model, and the first model's headline difference from each other one.

    Returns ``(scores, differences)``: ``scores[name]`` holds each metric's ``(estimate, low,
    high)``; ``differences[name]`` the paired bootstrap interval of the first model's headline
    metric minus that model's.  The bootstraps run on ``c.n_jobs`` processes (they dominate the time).
    """
    from joblib import Parallel, delayed

    preds = {name: _predictions(table, model, X_te) for name, model in models.items()}
    jobs = [delayed(_score)(table.task, y_te, *preds[name], c.n_boot, c.seed) for name in models]
    first, *others = models
    _, metric = HEADLINE[table.task]
    jobs += [delayed(paired_difference)(metric, y_te, preds[first][0], preds[name][0], c.n_boot, c.seed)
             for name in others]
    out = Parallel(n_jobs=c.n_jobs)(jobs)
    return dict(zip(models, out[: len(models)])), dict(zip(others, out[len(models):]))


def checkpoint_extra(table: Table, pipe, c: Config, X_fit=None) -> dict:
    """What ``nnlab predict`` needs besides the weights: the input columns, the fitted preprocessing, the classes.

    ``X_fit``, the rows ``pipe`` was fitted on, adds each numeric column's training min and max, with which
    predict flags rows far outside the training range (without it none is recorded and nothing is flagged).
    """
    mlp = pipe.named_steps["mlp"]
    state = export_state(pipe.named_steps["prep"], X_fit)
    if table.decimal_comma:  # how the CSV's cells were read, so that predict reads new files the same way
        state["decimal_comma"] = list(table.decimal_comma)
    if table.na_values:
        state["na_values"] = list(table.na_values)
    if table.decimal:
        state["decimal"] = table.decimal
    extra = {"stage": "7", "task": table.task, "target": table.target, "features_used": table.features_used,
             "preprocess": state, "source": table.source}
    if table.task == "classification":
        extra["classes"] = list(table.classes)
        extra["labels"] = mlp.classes_.tolist()
    else:
        extra["target_scale"] = {"mean": float(mlp.y_mean_), "std": float(mlp.y_scale_)}
    return extra


def degenerate_intervals(scores: dict, test_rows: int) -> list:
    """Every ``(model, metric)`` whose bootstrap interval collapsed to one value (every resample scored the same).

    Returns a list of ``{"model", "metric", "value"}``; an accuracy also gets ``exact_interval``, the exact
    (Clopper-Pearson) binomial interval of ``round(accuracy * test_rows)`` right out of ``test_rows``, which
    does not collapse when every test row is right (or every one wrong).
    """
    from scipy.stats import binomtest

    out = []
    for model, report in scores.items():
        for metric, (estimate, low, high) in report.items():
            if low != high:  # (NaN bounds compare unequal: an undefined interval is not a collapsed one)
                continue
            entry = {"model": model, "metric": metric, "value": float(low)}
            if metric == "accuracy":
                ci = binomtest(int(round(estimate * test_rows)), test_rows).proportion_ci(INTERVAL_LEVEL, "exact")
                entry["exact_interval"] = [float(ci.low), float(ci.high)]
            out.append(entry)
    return out


def collapse_reason(hit: list, test_rows: int) -> str:
    """What made the collapsed intervals ``hit`` (entries of :func:`degenerate_intervals`) collapse, in words:
    an accuracy of 1 (or 0) means every test row was right (or wrong), which collapses the bootstrap at any
    number of test rows; one phrase when all entries share it, else one per model."""
    def why(d):
        if d["metric"] == "accuracy" and d["value"] in (0.0, 1.0):
            return f"every one of the {test_rows} test rows was {'right' if d['value'] else 'wrong'}"
        return f"every resample of the {test_rows} test rows scored {d['value']:.4g}"

    reasons = {d["model"]: why(d) for d in hit}
    if len(set(reasons.values())) == 1:
        return next(iter(reasons.values()))
    return "; ".join(f"{model}: {reason}" for model, reason in reasons.items())


def degenerate_note(degenerate: list, headline: str, test_rows: int) -> str | None:
    """One line about the collapsed intervals of the headline metric, or None when there is none."""
    hit = [d for d in degenerate if d["metric"] == headline]
    if not hit:
        return None
    exact = "; ".join(f"{d['model']} [{d['exact_interval'][0]:.4f}, {d['exact_interval'][1]:.4f}]"
                      for d in hit if "exact_interval" in d)
    return (f"the bootstrap interval of test {headline} collapses to one value for "
            f"{', '.join(d['model'] for d in hit)}: {collapse_reason(hit, test_rows)}, so every resample scores "
            "the same; that is not certainty" + (f": the exact (Clopper-Pearson) {INTERVAL_LEVEL:.0%} interval "
                                                 f"is {exact}" if exact else ""))


def small_data_note(n: int, test_rows: int, search_rows: int, c: Config, task: str) -> str | None:
    """One line when the test split has fewer than ``SMALL_TEST_ROWS`` rows, or None; ``task`` says what one
    test row weighs in the headline score."""
    if test_rows >= SMALL_TEST_ROWS:
        return None
    if task == "classification":
        why = (f", below which even every test row right leaves {RULE_OUT_ACCURACY:.0%} accuracy inside the exact "
               f"{INTERVAL_LEVEL:.0%} interval")
        weight = f"one test row moves the test accuracy by 1/{test_rows}"
    else:
        why, weight = "", f"one test row is 1/{test_rows} of the mean squared error whose root is the test RMSE"
    note = (f"very small data set: {n} rows leave {test_rows} test rows (fewer than {SMALL_TEST_ROWS}{why}), so "
            f"{weight} and the intervals are coarse")
    fold_rows = int(search_rows * (c.folds - 1) / c.folds * (1 - VALIDATION_FRACTION))
    biggest = max(b for grid in SEARCH_SPACE for b in grid["mlp__batch_size"])
    if biggest > fold_rows:
        note += (f"; the search's batch sizes (up to {biggest}) exceed the about {fold_rows} rows each fold's "
                 "network trains on, where a batch is all of them")
    return note


def _evaluate_loaded(c: Config, table: Table, te) -> Result:
    """``--load``: evaluate a saved Stage 7 model on this split's test rows (no search, no training)."""
    from nnlab.checkpoint import CheckpointError
    from nnlab.predict import SavedModel

    saved = SavedModel.load(c.load)
    if saved.extra.get("stage") != "7" or saved.extra.get("features_used") != table.features_used:
        raise CheckpointError(f"{c.load} was not trained by Stage 7 on these features")
    saved = saved.reading(c.decimal, where="run 7 --load")  # (the decision nnlab predict makes, refusals included)
    numeric = (saved.state.get("numeric") or {}).get("columns", [])
    model_comma = {n for n in saved.state.get("decimal_comma") or [] if n in numeric}
    differ = sorted(model_comma.symmetric_difference(n for n in table.decimal_comma if n in numeric))
    if differ:
        name = differ[0]
        training, here = ("comma", "point") if name in model_comma else ("point", "comma")
        raise CSVError(f"run 7 --load: column '{name}' was read here with a decimal {here}, but the model's "
                       f"training read it with a decimal {training}; give --decimal {training}")
    X_te = table.X.iloc[te]
    if table.task == "classification":
        proba, _ = saved.predict_proba(X_te)
        labels = np.asarray(saved.extra["labels"], dtype=table.y.dtype)
        report = classification_scores(table.y[te], labels[proba.argmax(1)], proba, labels, c.n_boot, c.seed)
        headline = "accuracy"
    else:
        values, _ = saved.predict_values(X_te)
        report = regression_scores(table.y[te], values, c.n_boot, c.seed)
        headline = "rmse"
    p, lo, hi = report[headline]
    return Result("7", TITLE, config_dict(c), {"loaded": c.load, "table": {"loaded model": report},
                                               "headline": headline, "test_rows": len(te)},
                  {}, [("loaded model", c.load), (f"test {headline}", score_text(headline, p, lo, hi))])


def _figures(out_dir: Path, table: Table, mlp, search_results, cm, y_te, pred, c: Config) -> dict:
    figs = {}
    if cm is not None:
        figs["confusion"] = plots.confusion(out_dir / "stage7_confusion.png", cm,
                                            f"Stage 7: test confusion matrix (n={len(y_te)})", labels=table.classes)
    else:
        figs["pred_vs_true"] = plots.fit(out_dir / "stage7_pred_vs_true.png", y_te, pred, {},
                                         "Stage 7: test predictions", xlabel="true", ylabel="predicted")
    figs["learning_curves"] = plots.curves(
        out_dir / "stage7_learning_curves.png",
        {"training loss incl. L2 penalty (epoch mean)": mlp.loss_curve_, "validation loss": mlp.validation_loss_curve_},
        f"Stage 7: learning curves of the chosen recipe (best epoch {mlp.best_epoch_})", logy=True)
    figs["search"] = plots.dots(out_dir / "stage7_search.png",
                                {f"#{i + 1}": [v if np.isfinite(v) else np.nan for v in r["cv_loss_folds"]]
                                 for i, r in enumerate(search_results)},
                                f"Stage 7: {c.folds}-fold CV loss of each candidate (ranked)", ylabel="CV loss")
    return figs


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 7; write its figures into ``out_dir``; return its :class:`Result`."""
    from sklearn.metrics import confusion_matrix

    c = config
    if c.csv:  # the record names the data that ran, not the bundled default the CSV replaced
        c = dataclasses.replace(c, dataset=Path(c.csv).name)
    out_dir = Path(out_dir)
    table = load_table(c)
    n = len(table.y)
    if n < 2 * c.folds:
        raise CSVError(f"{n} rows are too few for a test split and {c.folds}-fold cross-validation "
                       f"(at least {2 * c.folds})")
    check_class_sizes(table, c.folds)
    pool, te = split_rows(table, c.seed)
    if c.load:
        return _evaluate_loaded(c, table, te)
    search_rows = _search_rows(table, pool, c)
    results = search(table, search_rows, c)
    best = results[0]
    if not np.isfinite(best["cv_loss"]):
        raise NnlabRuntimeError("Stage 7: every candidate diverged on at least one fold; lower the learning rates")
    final = make_pipeline(table, c, **best["params"])
    X_pool, y_pool, X_te, y_te = table.X.iloc[pool], table.y[pool], table.X.iloc[te], table.y[te]
    final.fit(X_pool, y_pool)
    mlp = final.named_steps["mlp"]
    pred = final.predict(X_te)
    cm = confusion_matrix(y_te, pred, labels=mlp.classes_) if table.task == "classification" else None
    models = {"nnlab MLP (chosen by CV)": final}
    if c.baselines:
        models.update(baselines(table, X_pool, y_pool, c))
    table_rows, differences = score_models(table, models, X_te, y_te, c)
    _, metric = HEADLINE[table.task]
    # training results next to the test results: each model scored on the non-test rows it was fitted on
    train_scores = {name: float(metric(y_pool, model.predict(X_pool))) for name, model in models.items()}
    record = column_record(table, final.named_steps["prep"], X_pool)
    (out_dir / "columns.csv").write_text(record_csv(record))
    degenerate = degenerate_intervals(table_rows, len(te))
    figs = _figures(out_dir, table, mlp, results, cm, y_te, pred, c)
    headline, _ = HEADLINE[table.task]
    counts = np.unique(table.y, return_counts=True)[1].tolist() if table.task == "classification" else None
    metrics = {
        "data": {"source": table.source, "description": table.description, "rows": n,
                 "features": len(table.features_used), "feature_names": table.features_used, "task": table.task,
                 "task_reason": table.task_reason, "classes": table.classes, "class_counts": counts,
                 "rows_dropped_missing_target": table.rows_dropped, "inputs_after_preprocessing":
                 int(final.named_steps["prep"].transform(X_te.iloc[:1]).shape[1])},
        "features_used": table.features_used, "columns_dropped": table.columns_dropped,
        "column_treatment": record, "degenerate_intervals": degenerate,
        "split": {"train": len(pool) - mlp.n_validation_rows_, "validation": mlp.n_validation_rows_,
                  "test": len(te), "seed": c.seed},
        "search_rows": len(search_rows),
        "search": [{k: v for k, v in r.items() if k != "params"} for r in results],
        "chosen": best["recipe"], "chosen_params": best["params"],
        "final_training": {"epochs_run": mlp.n_iter_, "best_epoch": mlp.best_epoch_,
                           "stopped_early": mlp.n_iter_ < c.max_epochs},
        "table": table_rows, "differences": differences, "confusion": cm, "headline": headline,
        "train_scores": train_scores, "interval_level": INTERVAL_LEVEL,
        "protocol": {"test_fraction": TEST_FRACTION, "validation_fraction": VALIDATION_FRACTION,
                     "impute": c.impute, "sgd_momentum": mlp.get_params()["momentum"],
                     "search_space": [{k.removeprefix("mlp__"): v for k, v in grid.items()} for grid in SEARCH_SPACE]},
    }
    width = len(table.features_used)
    summary = [("data", f"{table.source}: {n} rows, {width} feature column{'s' * (width != 1)}"),
               ("task", f"{table.task}: {table.task_reason}"),
               ("columns", record_line(record)),
               ("split train / val / test", f"{metrics['split']['train']} / {mlp.n_validation_rows_} / {len(te)}"),
               ("chosen by CV", best["recipe"])]
    collapsed = {d["model"]: d for d in degenerate if d["metric"] == headline}
    for name, rep in table_rows.items():
        p, lo, hi = rep[headline]
        text = score_text(headline, p, lo, hi)
        if name in collapsed:
            exact = collapsed[name].get("exact_interval")
            text += " degenerate" + (f"; exact [{exact[0]:.4f}, {exact[1]:.4f}]" if exact else "")
        summary.append((f"{name}: test {headline}", text))
    messages = list(table.notes) + [line for line in (duplicate_split_note(table, pool, te),) if line]
    constant, filled = constant_columns(record), constant_filled(record)
    blanks = (f" (the blanks of {', '.join(repr(n) for n in filled)} are filled with that value, and no missing "
              "indicator is added)" if filled else "")
    if constant and len(constant) == len(table.features_used):
        messages.append(f"every feature column holds one value on every row{blanks}: there is nothing to learn, so "
                        "no model can beat the trivial predictor")
    elif constant:
        messages.append(f"column(s) {', '.join(repr(n) for n in constant)} hold one value on every row{blanks}: "
                        "kept, but they tell the model nothing")
    messages += [line for line in (small_data_note(n, len(te), len(search_rows), c, table.task),
                             degenerate_note(degenerate, headline, len(te))) if line]
    diverged = sum(r["diverged_folds"] for r in results)
    if diverged:
        messages.append(f"{diverged} candidate fold fit(s) diverged and scored worst")
    full = Config()
    if c.baselines and (c.max_epochs, c.patience) < (full.max_epochs, full.patience):
        messages.append(f"scikit-learn's MLP had this run's short budget ({c.max_epochs} epochs, patience "
                        f"{c.patience}; a full run gives {full.max_epochs} and {full.patience}): its score here "
                        "may understate it")
    result = Result("7", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                    messages=messages)
    if c.save:  # written by the runner once the stage has finished, never from an unfinished run
        result.checkpoints = [(mlp.network_, c.save, checkpoint_extra(table, final, c, X_pool))]
    return result
