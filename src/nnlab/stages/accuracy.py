"""Stage 5's accuracy study: nnlab's best classifier against scikit-learn, over 5 seeded splits.

For each dataset (8x8 digits, 5,000 MNIST images), pixels scaled to [0, 1], and for
each of 5 seeds (the nested protocol of :mod:`nnlab.selection`):

1. **Choose** nnlab's recipe among a few candidates inside the split's 80 % training
   rows only: each candidate is trained on 70 % of all rows and scored on the other
   10 %; the split's 20 % test rows are not looked at.
2. **Evaluate** the chosen recipe, retrained on the 80 %, once on the 20 % test rows,
   next to scikit-learn's ``MLPClassifier()`` (defaults) and ``LogisticRegression``
   trained on the identical rows.  Reported: mean, standard deviation, min and max
   test accuracy over the splits, and which recipe each split chose.
3. **Control**: where the chosen recipe shifts its images, the same recipe without the
   shift is also trained on the 80 % and tested, so that a lead over scikit-learn (which
   trains on unshifted images) splits into what the augmentation adds and what the rest does.

The trainings share out over ``jobs`` processes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.classify import ClassifierSpec, train_classifier
from nnlab.losses import SoftmaxCrossEntropyLoss
from nnlab.parallel import run_calls
from nnlab.selection import outer_split, split_task, summarise, summarise_splits
from nnlab.stages.common import Result, config_dict
from nnlab.stages.stage5 import load_images
from nnlab.train import predict

TITLE = "Stage 5 - accuracy study against scikit-learn"
#: Its own work fills every core: the runner runs it by itself, with all the workers.
RUN_ALONE = True

CANDIDATES = {
    "digits": [
        ClassifierSpec(hidden=(256,), optimizer="adam", lr=1e-3, l2=1e-4, batch=32, epochs=100, dtype="float32"),
        ClassifierSpec(hidden=(256,), optimizer="adam", lr=1e-3, l2=1e-4, batch=32, epochs=100, dtype="float32",
                       shift=1, side=8),
        ClassifierSpec(hidden=(128, 128), optimizer="adam", lr=1e-3, l2=1e-4, batch=32, epochs=100,
                       dtype="float32"),
    ],
    "mnist": [
        ClassifierSpec(hidden=(256,), optimizer="adam", lr=1e-3, l2=1e-4, batch=64, epochs=40, dtype="float32"),
        ClassifierSpec(hidden=(256,), optimizer="adam", lr=1e-3, l2=1e-4, batch=64, epochs=40, dtype="float32",
                       shift=1, side=28),
        ClassifierSpec(hidden=(128,), optimizer="adam", lr=1e-3, l2=1e-4, batch=64, epochs=40, dtype="float32",
                       shift=1, side=28),
    ],
}
#: Test accuracy (mean over seeds) that nnlab's chosen recipe must reach.
TARGETS = {"digits": 0.980, "mnist": 0.950}


@dataclass
class Config:
    """Accuracy-study settings."""

    seeds: tuple = (0, 1, 2, 3, 4)
    datasets: tuple = ("digits", "mnist")
    mnist_dir: str | None = None
    mnist_limit: int | None = None
    epochs_scale: float = 1.0
    baselines: bool = True

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "seeds": (0, 1), "mnist_limit": 600, "epochs_scale": 0.1})


def _scaled(spec: ClassifierSpec, factor: float) -> ClassifierSpec:
    return replace(spec, epochs=max(1, round(spec.epochs * factor)))


def fit_and_score(spec: ClassifierSpec, X, y, fit_rows, eval_rows, seed) -> dict:
    """Train ``spec`` on ``X[fit_rows]`` (seeded by ``seed``); accuracy and cross-entropy on ``X[eval_rows]``."""
    model, _ = train_classifier(spec, X[fit_rows], y[fit_rows], 10, np.random.default_rng(seed))
    logits = predict(model, X[eval_rows].astype(spec.dtype))
    loss, _ = SoftmaxCrossEntropyLoss()(logits, y[eval_rows])
    return {"accuracy": float(np.mean(logits.argmax(axis=1) == y[eval_rows])), "loss": float(loss)}


def baselines(X, y, train_rows, test_rows, seed) -> dict:
    """Test accuracy of scikit-learn's ``MLPClassifier()`` (defaults) and ``LogisticRegression`` on one split.

    Returns ``{"scores": model -> accuracy, "mlp_iterations": {"n_iter", "max_iter", "at_cap"},
    "not_converged": [models that warned]}``.  The defaults include ``max_iter=200``; a run that stops
    there has not met its tolerance, which the report must say, so the warning is recorded, not dropped.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X_tr, y_tr, X_te, y_te = X[train_rows], y[train_rows], X[test_rows], y[test_rows]
    models = {"sklearn MLPClassifier": MLPClassifier(random_state=seed),
              "sklearn LogisticRegression": LogisticRegression(max_iter=2000)}
    not_converged = []
    for name, model in models.items():
        with warnings.catch_warnings(record=True) as caught:  # recorded for the report, not printed by workers
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(X_tr, y_tr)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            not_converged.append(name)
    mlp = models["sklearn MLPClassifier"]
    return {"scores": {name: float(model.score(X_te, y_te)) for name, model in models.items()},
            "mlp_iterations": {"n_iter": int(mlp.n_iter_), "max_iter": int(mlp.max_iter),
                               "at_cap": bool(mlp.n_iter_ >= mlp.max_iter)},
            "not_converged": not_converged}


def _data(name: str, c: Config):
    X, y, _, scale = load_images(name, c.mnist_dir, c.mnist_limit if name == "mnist" else None)
    return X / scale, y


def study_calls(name: str, c: Config, X, y) -> list:
    """The independent trainings of one dataset: one nested-selection task and one baseline task per seed."""
    candidates = [_scaled(s, c.epochs_scale) for s in CANDIDATES[name]]
    calls = [(split_task, (candidates, X, y, seed, fit_and_score, unshifted)) for seed in c.seeds]
    if c.baselines:
        calls += [(baselines, (X, y, *outer_split(y, seed), seed)) for seed in c.seeds]
    return calls


def unshifted(spec: ClassifierSpec) -> ClassifierSpec | None:
    """The chosen recipe without its shift augmentation (``None`` when it has none): the study's control.

    Trained and tested on every split where the chosen recipe shifts, it separates what the
    augmentation adds from what the rest of the recipe does (scikit-learn trains on unshifted images).
    """
    return replace(spec, shift=0) if spec.shift else None


#: The accuracy table's row for the control (see :func:`unshifted`).
CONTROL = "nnlab chosen recipe without the shift (control)"


def study_metrics(name: str, c: Config, n_images: int, done: list) -> dict:
    """One dataset's metrics from the results of its :func:`study_calls` (in the same order)."""
    candidates = [_scaled(s, c.epochs_scale) for s in CANDIDATES[name]]
    nested = summarise_splits(done[: len(c.seeds)])
    scores = {"nnlab (recipe chosen per split)": nested["test_accuracy"]["values"]}
    if any(candidates[sp["chosen"]].shift for sp in nested["splits"]):
        scores[CONTROL] = [sp["control_scores"]["accuracy"] for sp in nested["splits"]]
    for per_seed in done[len(c.seeds):]:
        for key, acc in per_seed["scores"].items():
            scores.setdefault(key, []).append(acc)
    table = {k: summarise(v) for k, v in scores.items()}
    baseline_fits = [{"seed": seed, **per_seed["mlp_iterations"], "not_converged": per_seed["not_converged"]}
                     for seed, per_seed in zip(c.seeds, done[len(c.seeds):])]
    return {
        "n_images": n_images, "candidates": [s.describe() for s in candidates],
        "candidate_specs": [s.as_dict() for s in candidates], "splits": nested["splits"],
        "test_rows": sorted({s["test_rows"] for s in nested["splits"]}), "table": table, "target": TARGETS[name],
        "shifted_splits": sum(bool(candidates[sp["chosen"]].shift) for sp in nested["splits"]),
        "sklearn_mlp_fits": baseline_fits,
    }


def study(name: str, c: Config, jobs: int = 1) -> dict:
    """Nested selection and evaluation over the seeds for one dataset; returns its metrics."""
    X, y = _data(name, c)
    return study_metrics(name, c, len(y), run_calls(study_calls(name, c, X, y), jobs))


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run the study on every dataset; write a comparison figure; return the :class:`Result`."""
    out_dir = Path(out_dir)
    data = {name: _data(name, config) for name in config.datasets}
    # Every dataset's trainings go into one pool, so that no worker waits at a boundary between
    # datasets; the largest dataset's go first, so that the pool does not end on one long task.
    calls = {name: study_calls(name, config, *data[name]) for name in config.datasets}
    first = sorted(config.datasets, key=lambda name: -data[name][0].size)
    done = iter(run_calls([call for name in first for call in calls[name]], jobs))
    results = {name: [next(done) for _ in calls[name]] for name in first}
    metrics, summary, figs = {}, [], {}
    for name in config.datasets:
        m = study_metrics(name, config, len(data[name][1]), results[name])
        metrics[name] = m
        for model, s in m["table"].items():
            summary.append((f"{name}: {model}", f"{s['mean']:.4f} ± {s['std']:.4f} (min {s['min']:.4f})"))
        fig_path = plots.dots(out_dir / f"accuracy_{name}.png",
                              {k.replace("sklearn ", "").replace(" (recipe chosen per split)", ""): s["values"]
                               for k, s in m["table"].items()},
                              f"{name}: test accuracy on {len(config.seeds)} seeded 80/20 splits",
                              ylabel="test accuracy", target=(m["target"], f"target {m['target']:.3f}"))
        figs[name] = fig_path.name
    return Result("accuracy", TITLE, config_dict(config), metrics, figs, summary)
