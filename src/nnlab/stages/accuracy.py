"""Stage 5's accuracy study: nnlab's best classifier against scikit-learn, over 5 seeded splits.

For each dataset (8x8 digits, 5,000 MNIST images), pixels scaled to [0, 1]:

1. **Choose** nnlab's configuration on *validation* data only: a few candidate
   recipes are trained on the training part of seed 0's split (70 %) and scored
   on its validation part (10 %); the test part is not looked at.
2. **Evaluate** the chosen recipe on 5 stratified 80 / 20 splits (seeds 0-4),
   trained on the 80 % and tested once on the 20 %, next to scikit-learn's
   ``MLPClassifier()`` (defaults) and ``LogisticRegression`` on the identical
   splits.  Reported: mean, standard deviation, min and max test accuracy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.classify import ClassifierSpec, train_classifier
from nnlab.data import stratified_split
from nnlab.stages.common import Result, config_dict
from nnlab.stages.stage5 import load_images, three_way_split
from nnlab.train import accuracy

TITLE = "Stage 5 - accuracy study against scikit-learn"

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


def _baselines(X_tr, y_tr, X_te, y_te, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(random_state=seed).fit(X_tr, y_tr)
        logreg = LogisticRegression(max_iter=2000).fit(X_tr, y_tr)
    return {"sklearn MLPClassifier": float(mlp.score(X_te, y_te)),
            "sklearn LogisticRegression": float(logreg.score(X_te, y_te))}


def _stats(values):
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "min": float(v.min()),
            "max": float(v.max()), "values": v}


def study(name: str, c: Config, progress=False):
    """Choose on validation, then evaluate over seeds; returns the dataset's metrics."""
    X, y, _, scale = load_images(name, c.mnist_dir, c.mnist_limit if name == "mnist" else None)
    X = X / scale
    candidates = [_scaled(s, c.epochs_scale) for s in CANDIDATES[name]]
    tr, va, _ = three_way_split(y, c.seeds[0])
    selection = []
    for spec in candidates:
        model, _ = train_classifier(spec, X[tr], y[tr], 10, np.random.default_rng(c.seeds[0]), progress=progress,
                                    name=f"{name}: choosing")
        selection.append({"recipe": spec.describe(), "val_acc": accuracy(model, X[va].astype(spec.dtype), y[va])})
    best = candidates[int(np.argmax([s["val_acc"] for s in selection]))]

    scores: dict[str, list[float]] = {"nnlab (chosen recipe)": []}
    for seed in c.seeds:
        train, test = stratified_split(y, (0.8, 0.2), np.random.default_rng(seed))
        model, _ = train_classifier(best, X[train], y[train], 10, np.random.default_rng(seed), progress=progress,
                                    name=f"{name}: seed {seed}")
        scores["nnlab (chosen recipe)"].append(accuracy(model, X[test].astype(best.dtype), y[test]))
        if c.baselines:
            for key, acc in _baselines(X[train], y[train], X[test], y[test], seed).items():
                scores.setdefault(key, []).append(acc)
    table = {k: _stats(v) for k, v in scores.items()}
    nn = table["nnlab (chosen recipe)"]["mean"]
    ref = table.get("sklearn MLPClassifier", {}).get("mean")
    return {
        "n_images": len(y), "test_size": int(round(0.2 * len(y))), "selection": selection,
        "chosen": best.describe(), "chosen_spec": best.as_dict(), "table": table, "target": TARGETS[name],
        "meets_target": bool(nn >= TARGETS[name]), "beats_mlpclassifier": None if ref is None else bool(nn > ref),
    }


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run the study on every dataset; write a comparison figure; return the :class:`Result`."""
    out_dir = Path(out_dir)
    metrics, summary, figs = {}, [], {}
    for name in config.datasets:
        m = study(name, config, progress)
        metrics[name] = m
        for model, s in m["table"].items():
            summary.append((f"{name}: {model}", f"{s['mean']:.4f} ± {s['std']:.4f} (min {s['min']:.4f})"))
        fig_path = plots.dots(out_dir / f"accuracy_{name}.png",
                              {k.replace("sklearn ", "").replace(" (chosen recipe)", ""): s["values"]
                               for k, s in m["table"].items()},
                              f"{name}: test accuracy on {len(config.seeds)} seeded 80/20 splits",
                              ylabel="test accuracy", target=(m["target"], f"target {m['target']:.3f}"))
        figs[name] = fig_path.name
    return Result("accuracy", TITLE, config_dict(config), metrics, figs, summary)
