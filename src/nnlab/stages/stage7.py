"""Stage 7 -- train your own network: a real data set, an honest protocol, baselines.

Default data: scikit-learn's bundled Breast Cancer Wisconsin (Diagnostic) set --
569 tumours, 30 real-valued measurements of cell nuclei from a digitised image,
labelled malignant or benign.  It is real clinical data, ships with scikit-learn
(no download), is small enough to search hyper-parameters by cross-validation in
seconds, and being binary it lets us report ROC-AUC next to accuracy.  Any CSV
works too: ``nnlab run 7 --csv PATH --target COLUMN``.

Protocol (the test rows are set aside first and touched exactly once):

1. stratified split fixed by the seed: 20 % test; the rest 80 / 20 into training
   and validation;
2. hyper-parameter search (depth, width, activation, optimizer, learning rate, L2,
   batch size) by stratified k-fold cross-validation on the non-test rows, each fold
   standardised with its own training rows' statistics and early-stopped on an
   inner split of them;
3. the chosen recipe is trained on the training rows, early-stopped on validation loss,
   and evaluated once on the test rows, with bootstrap 95 % intervals;
4. baselines on the identical rows: the trivial predictor, a linear model and
   scikit-learn's MLP.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import metrics as scores
from nnlab import plots
from nnlab.classify import ClassifierSpec, predict_proba, train_classifier
from nnlab.data import stratified_kfold, stratified_split
from nnlab.data.tabular import CSVError, Table, load_bundled, read_csv_table
from nnlab.losses import SoftmaxCrossEntropyLoss
from nnlab.stages.common import Result, config_dict
from nnlab.train import predict

TITLE = "Stage 7 - your own network on a real data set"

SEARCH_SPACE = {
    "depth": (1, 2),
    "width": (16, 32, 64, 128),
    "nonlin": ("relu", "tanh"),
    "optimizer": ("adam", "sgd"),
    "lr": {"adam": (3e-4, 1e-3, 3e-3), "sgd": (0.01, 0.03, 0.1)},
    "l2": (0.0, 1e-4, 1e-3, 1e-2),
    "batch": (16, 32, 64),
}


@dataclass
class Config:
    """Stage 7 settings."""

    dataset: str = "breast_cancer"
    csv: str | None = None
    target: str | None = None
    task: str | None = None
    impute: str | None = None
    categorical: str | None = None
    seed: int = 42
    folds: int = 5
    candidates: int = 12
    max_epochs: int = 300
    patience: int = 20
    n_boot: int = 1000
    baselines: bool = True
    save: str | None = None
    load: str | None = None

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "folds": 3, "candidates": 3, "max_epochs": 40, "patience": 5,
                         "n_boot": 100})


def load_table(c: Config) -> Table:
    """The configured data: a CSV when ``c.csv`` is set, else a bundled set."""
    if c.csv:
        if not c.target:
            raise CSVError("--csv needs --target COLUMN")
        return read_csv_table(c.csv, c.target, task=c.task, impute=c.impute, categorical=c.categorical)
    table = load_bundled(c.dataset)
    if c.task and c.task != table.task:
        raise CSVError(f"dataset {c.dataset} is a {table.task} task, not {c.task}")
    return table


def strata(table: Table) -> np.ndarray:
    """Labels to stratify on: the classes, or quintiles of a regression target."""
    if table.task == "classification":
        return table.y
    edges = np.quantile(table.y, [0.2, 0.4, 0.6, 0.8])
    return np.searchsorted(edges, table.y)


def split_rows(table: Table, seed: int):
    """Train / validation / test row indices (64 / 16 / 20 %), stratified, fixed by ``seed``."""
    s = strata(table)
    pool, test = stratified_split(s, (0.8, 0.2), np.random.default_rng(seed))
    tr, va = stratified_split(s[pool], (0.8, 0.2), np.random.default_rng(seed + 1))
    return pool[tr], pool[va], test


class Preprocessor:
    """Mean imputation and standardisation, fitted on training rows only."""

    def __init__(self, X):
        self.mean = np.nanmean(X, axis=0)
        self.mean = np.where(np.isfinite(self.mean), self.mean, 0.0)
        filled = np.where(np.isnan(X), self.mean, X)
        self.std = filled.std(axis=0)
        self.std[self.std == 0] = 1.0

    @classmethod
    def from_saved(cls, saved: dict) -> Preprocessor:
        """Rebuild from the ``{"mean": [...], "std": [...]}`` record stored in a checkpoint."""
        pre = cls.__new__(cls)
        pre.mean = np.asarray(saved["mean"], dtype=np.float64)
        pre.std = np.asarray(saved["std"], dtype=np.float64)
        return pre

    def __call__(self, X):
        """Impute NaNs with the training means, then standardise."""
        return (np.where(np.isnan(X), self.mean, X) - self.mean) / self.std


def sample_candidates(n: int, rng, max_epochs: int, patience: int):
    """``n`` distinct random recipes from :data:`SEARCH_SPACE`."""
    seen, out = set(), []
    while len(out) < n and len(seen) < 5000:
        opt = rng.choice(SEARCH_SPACE["optimizer"])
        spec = ClassifierSpec(
            hidden=(int(rng.choice(SEARCH_SPACE["width"])),) * int(rng.choice(SEARCH_SPACE["depth"])),
            nonlin=str(rng.choice(SEARCH_SPACE["nonlin"])), optimizer=str(opt),
            lr=float(rng.choice(SEARCH_SPACE["lr"][opt])), momentum=0.9 if opt == "sgd" else 0.0,
            l2=float(rng.choice(SEARCH_SPACE["l2"])), batch=int(rng.choice(SEARCH_SPACE["batch"])),
            epochs=max_epochs, patience=patience)
        key = spec.describe()
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def _fit(spec, table: Table, X_tr, y_tr, X_va, y_va, seed, name):
    n_out = len(table.classes) if table.task == "classification" else 1
    return train_classifier(spec, X_tr, y_tr, n_out, np.random.default_rng(seed), X_va, y_va, name=name,
                            task=table.task)


def _scale_target(table: Table, y_train):
    if table.task == "classification":
        return 0.0, 1.0
    return float(np.mean(y_train)), float(np.std(y_train) or 1.0)


def cross_validate(spec, table: Table, rows, folds, seed):
    """Mean validation loss of ``spec`` over stratified k folds of ``rows`` (never the test rows)."""
    s = strata(table)[rows]
    fold_losses = []
    for f, (tr_pos, va_pos) in enumerate(stratified_kfold(s, folds, np.random.default_rng(seed))):
        tr, va = rows[tr_pos], rows[va_pos]
        inner, stop = stratified_split(strata(table)[tr], (0.9, 0.1), np.random.default_rng(seed + f))
        if len(stop) == 0:  # too few rows to hold some back: train the full budget without early stopping
            inner = np.arange(len(tr))
        pre = Preprocessor(table.X[tr[inner]])
        mu, sd = _scale_target(table, table.y[tr[inner]])
        y = table.y if table.task == "classification" else (table.y - mu) / sd
        X_stop, y_stop = (pre(table.X[tr[stop]]), y[tr[stop]]) if len(stop) else (None, None)
        model, hist = _fit(spec, table, pre(table.X[tr[inner]]), y[tr[inner]], X_stop, y_stop, seed + f,
                           name=f"cv fold {f + 1}")
        if hist.diverged:  # a recipe that blows up loses the search; it is not an error of the data
            fold_losses.append(float("inf"))
            continue
        out = predict(model, pre(table.X[va]).astype(model.dtype))
        if table.task == "classification":
            fold_losses.append(SoftmaxCrossEntropyLoss()(out, table.y[va])[0])
        else:
            fold_losses.append(float(np.mean((out.ravel() - y[va]) ** 2)))
    return float(np.mean(fold_losses)), fold_losses


def _search(table: Table, rows, c: Config):
    """Cross-validate every candidate on ``rows``; return the ranked results and the best spec."""
    candidates = sample_candidates(c.candidates, np.random.default_rng(c.seed), c.max_epochs, c.patience)
    results = []
    for spec in candidates:
        mean, per_fold = cross_validate(spec, table, rows, c.folds, c.seed)
        results.append({"recipe": spec.describe(), "cv_loss": mean, "cv_loss_folds": per_fold, "spec": spec})
    results.sort(key=lambda r: r["cv_loss"])
    return results, results[0]["spec"]


def _classification_report(table, y_true, pred, proba, rng, n_boot):
    k = len(table.classes)
    out = {"accuracy": scores.bootstrap_ci(scores.accuracy_score, y_true, pred, rng, n_boot),
           "macro_f1": scores.bootstrap_ci(lambda a, b: scores.macro_f1(a, b, k), y_true, pred, rng, n_boot)}
    if k == 2 and proba is not None:
        out["roc_auc"] = scores.bootstrap_ci(scores.roc_auc, y_true, proba[:, 1], rng, n_boot)
    return out


def _regression_report(y_true, pred, rng, n_boot):
    return {"rmse": scores.bootstrap_ci(scores.rmse, y_true, pred, rng, n_boot),
            "mae": scores.bootstrap_ci(scores.mae, y_true, pred, rng, n_boot),
            "r2": scores.bootstrap_ci(scores.r2, y_true, pred, rng, n_boot)}


def _baselines(table, X_tr, y_tr, X_te, y_te, c: Config):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if table.task == "classification":
        models = {"majority class": DummyClassifier(strategy="most_frequent"),
                  "LogisticRegression": LogisticRegression(max_iter=5000),
                  "sklearn MLPClassifier": MLPClassifier(random_state=c.seed, max_iter=1000)}
    else:
        models = {"mean": DummyRegressor(), "Ridge": Ridge(),
                  "sklearn MLPRegressor": MLPRegressor(random_state=c.seed, max_iter=2000)}
    reports = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_tr, y_tr)
        rng = np.random.default_rng(c.seed)
        if table.task == "classification":
            proba = model.predict_proba(X_te) if hasattr(model, "predict_proba") else None
            reports[name] = _classification_report(table, y_te, model.predict(X_te), proba, rng, c.n_boot)
        else:
            reports[name] = _regression_report(y_te, model.predict(X_te), rng, c.n_boot)
    return reports


def checkpoint_extra(table: Table, pre: Preprocessor, mu: float, sd: float, c: Config) -> dict:
    """What ``nnlab predict`` needs besides the weights: features, classes, preprocessing."""
    return {"stage": "7", "task": table.task, "target": table.target, "feature_names": list(table.feature_names),
            "classes": list(table.classes), "preprocess": {"mean": pre.mean.tolist(), "std": pre.std.tolist()},
            "target_scale": {"mean": mu, "std": sd}, "impute": c.impute, "source": table.source}


def _evaluate_loaded(c: Config, table: Table, te, out_dir) -> Result:
    """``--load``: evaluate a saved Stage 7 model on this split's test rows (no search, no training)."""
    from nnlab.checkpoint import CheckpointError, load_checkpoint

    model, extra = load_checkpoint(c.load)
    if extra.get("stage") != "7" or extra.get("feature_names") != list(table.feature_names):
        raise CheckpointError(f"{c.load} was not trained by Stage 7 on these features")
    pre = Preprocessor.from_saved(extra["preprocess"])
    X_te = pre(table.X[te]).astype(model.dtype)
    rng = np.random.default_rng(c.seed)
    if table.task == "classification":
        proba = predict_proba(model, X_te)
        report = _classification_report(table, table.y[te], proba.argmax(1), proba, rng, c.n_boot)
        headline = "accuracy"
    else:
        ts = extra["target_scale"]
        report = _regression_report(table.y[te], predict(model, X_te).ravel() * ts["std"] + ts["mean"], rng, c.n_boot)
        headline = "rmse"
    p, lo, hi = report[headline]
    return Result("7", TITLE, config_dict(c), {"loaded": c.load, "table": {"loaded model": report},
                                               "headline": headline, "test_rows": len(te)},
                  {}, [("loaded model", c.load), (f"test {headline}", f"{p:.4f} [{lo:.4f}, {hi:.4f}]")])


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 7; write its figures into ``out_dir``; return its :class:`Result`."""
    c = config
    out_dir = Path(out_dir)
    table = load_table(c)
    n = len(table.y)
    tr, va, te = split_rows(table, c.seed)
    pool = np.sort(np.concatenate([tr, va]))
    if len(pool) < c.folds or len(tr) < 2 or len(va) < 1 or len(te) < 1:
        raise CSVError(f"{n} rows are too few for a test split and {c.folds}-fold cross-validation")
    if table.task == "classification" and len(np.unique(table.y[tr])) < 2:
        raise CSVError("the training rows hold a single class; the data set needs more rows of each class")

    pre = Preprocessor(table.X[tr])
    mu, sd = _scale_target(table, table.y[tr])
    if c.load:
        return _evaluate_loaded(c, table, te, out_dir)
    search, best = _search(table, pool, c)

    y_fit = table.y if table.task == "classification" else (table.y - mu) / sd
    model, hist = _fit(best, table, pre(table.X[tr]), y_fit[tr], pre(table.X[va]), y_fit[va], c.seed, "final model")
    if c.save:
        model.save(c.save, extra=checkpoint_extra(table, pre, mu, sd, c))
    X_te = pre(table.X[te]).astype(model.dtype)
    rng = np.random.default_rng(c.seed)
    figs = {}
    if table.task == "classification":
        proba = predict_proba(model, X_te)
        pred = proba.argmax(axis=1)
        report = _classification_report(table, table.y[te], pred, proba, rng, c.n_boot)
        cm = scores.confusion_matrix(table.y[te], pred, len(table.classes))
        figs["confusion"] = plots.confusion(out_dir / "stage7_confusion.png", cm,
                                            f"Stage 7: test confusion matrix (n={len(te)})", labels=table.classes)
    else:
        pred = predict(model, X_te).ravel() * sd + mu
        report = _regression_report(table.y[te], pred, rng, c.n_boot)
        cm = None
        figs["pred_vs_true"] = plots.fit(out_dir / "stage7_pred_vs_true.png", table.y[te], pred, {},
                                         "Stage 7: test predictions", xlabel="true", ylabel="predicted")
    table_rows = {"nnlab MLP (chosen by CV)": report}
    if c.baselines:
        table_rows.update(_baselines(table, pre(table.X[tr]), table.y[tr], X_te, table.y[te], c))

    figs["learning_curves"] = plots.curves(
        out_dir / "stage7_learning_curves.png",
        {"training loss (epoch mean)": hist.epoch_loss, "validation loss": hist.metrics["val_loss"]},
        f"Stage 7: learning curves of the chosen recipe (best epoch {(hist.best_epoch or 0) + 1})", logy=True)
    figs["search"] = plots.dots(out_dir / "stage7_search.png",
                                {f"#{i + 1}": r["cv_loss_folds"] for i, r in enumerate(search)},
                                f"Stage 7: {c.folds}-fold CV loss of each candidate (ranked)", ylabel="CV loss")
    headline = "accuracy" if table.task == "classification" else "rmse"
    metrics = {
        "data": {"source": table.source, "description": table.description, "rows": n,
                 "features": len(table.feature_names), "feature_names": table.feature_names, "task": table.task,
                 "classes": table.classes, "class_counts": np.bincount(table.y).tolist()
                 if table.task == "classification" else None},
        "split": {"train": len(tr), "validation": len(va), "test": len(te), "seed": c.seed},
        "search": [{k: v for k, v in r.items() if k != "spec"} for r in search],
        "chosen": best.describe(), "chosen_spec": best.as_dict(),
        "final_training": {"epochs_run": hist.epochs_run, "best_epoch": (hist.best_epoch or 0) + 1,
                           "stopped_early": hist.epochs_run < best.epochs},
        "table": table_rows, "confusion": cm, "headline": headline,
    }
    summary = [("data", f"{table.source}: {n} rows, {len(table.feature_names)} features, {table.task}"),
               ("split train / val / test", f"{len(tr)} / {len(va)} / {len(te)}"),
               ("chosen by CV", best.describe())]
    for name, rep in table_rows.items():
        p, lo, hi = rep[headline]
        summary.append((f"{name}: test {headline}", f"{p:.4f} [{lo:.4f}, {hi:.4f}]"))
    return Result("7", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary)
