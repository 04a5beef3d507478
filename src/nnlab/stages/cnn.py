"""What a convolution buys: a small CNN beside the accuracy study's best MLP, on the same splits.

For each dataset (8x8 digits, 5,000 MNIST images; pixels scaled to [0, 1]) and each of 5
seeds, the nested protocol of :mod:`nnlab.selection`:

1. **CNN**: inside the split's training rows, each candidate -- two sizes of
   :func:`nnlab.make_cnn` trained on randomly shifted images, and the larger one without
   the shifts -- is trained on the fit rows and scored on the validation rows; the winner is
   retrained on all training rows and tested once on the split's test rows.  The candidates'
   validation scores measure what size and augmentation buy, on rows the test never sees.
2. **MLP**: the accuracy study's MLP candidates go through the same protocol on the same rows.
3. **Measured beside them, never used to choose**: every model's accuracy on its evaluation
   images shifted by a few pixels; the confusion matrix over the test rows of all splits; the
   first layer's filters (first seed); parameter counts; and the multiply-adds of one training
   run, a deterministic cost (measured seconds vary with the machine's load, so they live in
   ``docs/benchmarks.md``, written by ``nnlab bench --cnn``, never in ``metrics.json``).

All trainings share out over ``jobs`` processes, one task per seed and model family.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.classify import train_classifier
from nnlab.conv import make_cnn
from nnlab.data.augment import Shift, shift_images
from nnlab.losses import SoftmaxCrossEntropyLoss
from nnlab.metrics import confusion_matrix
from nnlab.optim import Adam
from nnlab.parallel import run_calls
from nnlab.selection import split_task, summarise
from nnlab.stages.accuracy import CANDIDATES as MLP_CANDIDATES  # "the best MLP": the accuracy study's own recipes
from nnlab.stages.common import Result, config_dict
from nnlab.stages.stage5 import load_images
from nnlab.train import fit, predict

TITLE = "What a convolution buys - a small CNN against the best MLP"
#: Its own work fills every core: the runner runs it by itself, with all the workers.
RUN_ALONE = True
#: Mean test accuracy the CNN should reach on MNIST-5k (issue 15).
TARGETS = {"mnist": 0.985}
#: The rows of each dataset's model table (``metrics.json`` sorts keys, so the report reads them by name).
CNN_KEY = "CNN (candidate chosen per split)"
MLP_KEY = "MLP (accuracy study's recipe chosen per split)"
#: Test-image translations measured, in pixels (each in four directions: up, down, left, right).
SHIFTS = {"digits": (1, 2), "mnist": (1, 2, 3)}


@dataclass(frozen=True)
class CNNSpec:
    """Every choice of a CNN training run.

    Attributes:
        channels: output channels of the two convolutions (:func:`nnlab.make_cnn`).
        kernel_size: size of both convolutions' kernels.
        shift: random-translation augmentation of the training batches, in pixels (0 = off).
        lr: Adam's step size for the first ``decay_after`` epochs; a tenth of it afterwards.
        batch: minibatch size.
        epochs: epochs in all.
        decay_after: epoch after which the step size drops tenfold.
        dtype: ``"float32"`` (speed) or ``"float64"``.
    """

    channels: tuple = (16, 32)
    kernel_size: int = 3
    shift: int = 2
    lr: float = 2e-3
    batch: int = 64
    epochs: int = 12
    decay_after: int = 9
    dtype: str = "float32"

    def describe(self) -> str:
        """One line naming the choices, for tables."""
        aug = f"shift ±{self.shift}px" if self.shift else "no augmentation"
        k = self.kernel_size
        return (f"CNN {self.channels[0]}-{self.channels[1]} ({k}x{k}), Adam(lr={self.lr:g}, /10 after epoch "
                f"{self.decay_after}), batch {self.batch}, {self.epochs} epochs, {aug}, {self.dtype}")

    def as_dict(self) -> dict:
        """Plain dict (for metrics.json)."""
        return asdict(self)


#: The CNN candidates per dataset: two sizes with augmentation, and the larger without it.
CNN_CANDIDATES = {
    "digits": [CNNSpec(channels=(8, 16), shift=1, batch=32, epochs=30, decay_after=24),
               CNNSpec(channels=(16, 32), shift=1, batch=32, epochs=30, decay_after=24),
               CNNSpec(channels=(16, 32), shift=0, batch=32, epochs=30, decay_after=24)],
    "mnist": [CNNSpec(channels=(8, 16)), CNNSpec(channels=(16, 32)), CNNSpec(channels=(16, 32), shift=0)],
}


@dataclass
class Config:
    """Settings of the CNN study."""

    seeds: tuple = (0, 1, 2, 3, 4)
    datasets: tuple = ("digits", "mnist")
    mnist_dir: str | None = None
    mnist_limit: int | None = None
    epochs_scale: float = 1.0

    def quick(self) -> Config:
        """A seconds-long version for tests."""
        return Config(**{**config_dict(self), "seeds": (0, 1), "mnist_limit": 400, "epochs_scale": 0.05})


def _side(X) -> int:
    return int(round(np.sqrt(X.shape[1])))


def _scaled(spec, factor: float):
    """``spec`` with its epochs (and the CNN's decay epoch) scaled by ``factor``, at least one each."""
    epochs = max(1, round(spec.epochs * factor))
    if isinstance(spec, CNNSpec):
        return replace(spec, epochs=epochs, decay_after=min(epochs, max(1, round(spec.decay_after * factor))))
    return replace(spec, epochs=epochs)


def train_cnn(spec: CNNSpec, X, y, seed: int):
    """Train :func:`nnlab.make_cnn` on the flattened square images ``X`` (n, side*side) and labels ``y``.

    ``fit`` runs twice on one Adam optimizer (its moments carry over): ``decay_after`` epochs
    at ``lr``, then the rest at ``lr / 10``.  Returns the model.
    """
    side = _side(X)
    rng = np.random.default_rng(seed)
    model = make_cnn(side, spec.channels, spec.kernel_size, dtype=np.dtype(spec.dtype), rng=rng)
    images = np.asarray(X, dtype=spec.dtype).reshape(-1, 1, side, side)
    optimizer = Adam(model.parameters(), lr=spec.lr)
    augment = Shift(side, spec.shift) if spec.shift else None
    for epochs, lr in ((spec.decay_after, spec.lr), (spec.epochs - spec.decay_after, spec.lr / 10)):
        if epochs > 0:
            optimizer.lr = lr
            fit(model, SoftmaxCrossEntropyLoss(), optimizer, images, y, epochs=epochs, batch_size=spec.batch, rng=rng,
                augment=augment, name="cnn")
    return model


def _inputs(spec, X):
    """``X`` as the model takes it: (n, 1, side, side) images for a CNN, flat rows for an MLP."""
    X = np.asarray(X, dtype=spec.dtype)
    return X.reshape(-1, 1, _side(X), _side(X)) if isinstance(spec, CNNSpec) else X


def _train(spec, X, y, seed):
    if isinstance(spec, CNNSpec):
        return train_cnn(spec, X, y, seed)
    return train_classifier(spec, X, y, 10, np.random.default_rng(seed))[0]


def fit_and_score(spec, X, y, fit_rows, eval_rows, seed) -> dict:
    """Train ``spec`` (a CNN or an MLP recipe) on ``X[fit_rows]``; measure it on ``X[eval_rows]``.

    Returns accuracy and cross-entropy (what selection reads), the confusion matrix, the
    accuracy on the rows shifted by each of :data:`SHIFTS` pixels (mean over the four
    directions), the parameter count, the first layer's weights and the training's
    multiply-adds.
    """
    model = _train(spec, X[fit_rows], y[fit_rows], seed)
    X_eval, y_eval = X[eval_rows], y[eval_rows]
    logits = predict(model, _inputs(spec, X_eval))
    loss, _ = SoftmaxCrossEntropyLoss()(logits, y_eval)
    side = _side(X)
    shifted = {}
    for k in SHIFTS["mnist" if side == 28 else "digits"]:
        accs = [np.mean(predict(model, _inputs(spec, shift_images(X_eval, side, dy, dx))).argmax(1) == y_eval)
                for dy, dx in ((k, 0), (-k, 0), (0, k), (0, -k))]
        shifted[str(k)] = float(np.mean(accs))
    params = model.parameters()
    return {"accuracy": float(np.mean(logits.argmax(1) == y_eval)), "loss": float(loss),
            "confusion": confusion_matrix(y_eval, logits.argmax(1), 10).tolist(), "shifted": shifted,
            "parameters": int(sum(p.value.size for p in params)), "first_layer": params[0].value.tolist(),
            "multiply_adds": training_multiply_adds(spec, side, len(fit_rows))}


def training_multiply_adds(spec, side: int, rows: int) -> int:
    """Multiply-adds of one training run: every epoch's forward pass, weight gradients, and input gradients above
    the first layer (the products of the convolutions and linear layers; pooling, activations and the update are
    not counted).  A deterministic measure of cost."""
    if isinstance(spec, CNNSpec):
        (c1, c2), k = spec.channels, spec.kernel_size
        layers = [side * side * c1 * k * k, (side // 2) ** 2 * c2 * c1 * k * k, c2 * (side // 4) ** 2 * 10]
    else:
        widths = [side * side, *spec.hidden, 10]
        layers = [a * b for a, b in zip(widths[:-1], widths[1:])]
    per_image = 2 * sum(layers) + sum(layers[1:])  # forward + dW everywhere, dx above the first layer
    return int(per_image * rows * spec.epochs)


def _slim(record: dict) -> dict:
    """A score record without the bulky parts (kept only where the report uses them)."""
    return {k: v for k, v in record.items() if k not in ("confusion", "first_layer")}


def nested_split(candidates, X, y, seed: int) -> dict:
    """One seed of the nested protocol (:func:`nnlab.selection.split_task`), the candidates' records slimmed."""
    result = split_task(candidates, X, y, seed, fit_and_score)
    result["selection"] = [_slim(s) for s in result["selection"]]
    return result


def _pairs(specs, field: str) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of candidates that differ in ``field`` alone."""
    dicts = [s.as_dict() for s in specs]
    return [(i, j) for i in range(len(dicts)) for j in range(i + 1, len(dicts))
            if {k for k in dicts[i] if dicts[i][k] != dicts[j][k]} == {field}]


def _paired(a, b) -> dict:
    """Summary of the split-by-split differences ``a - b``, with how often each side is higher."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return {**summarise(diff), "higher": int(np.sum(diff > 0)), "equal": int(np.sum(diff == 0)),
            "lower": int(np.sum(diff < 0))}


def _candidate_table(specs, splits) -> list[dict]:
    """Every CNN candidate's validation scores over the splits, its size, cost and how often it won."""
    rows = []
    for i, spec in enumerate(specs):
        scores = [sp["selection"][i] for sp in splits]
        rows.append({"recipe": spec.describe(), "accuracy": summarise([sc["accuracy"] for sc in scores]),
                     "shifted": {k: summarise([sc["shifted"][k] for sc in scores]) for k in scores[0]["shifted"]},
                     "parameters": scores[0]["parameters"], "multiply_adds": scores[0]["multiply_adds"],
                     "chosen": sum(sp["chosen"] == i for sp in splits)})
    return rows


def _comparison(specs, splits, field: str) -> dict | None:
    """What changing ``field`` alone does on the validation rows: paired over the splits (first such pair)."""
    pairs = _pairs(specs, field)
    if not pairs:
        return None
    i, j = pairs[0]
    largest = list(splits[0]["selection"][i]["shifted"])[-1]
    first, second = ([sp["selection"][k] for sp in splits] for k in (i, j))
    return {"first": i, "second": j, "shift": largest,
            "accuracy": _paired([s["accuracy"] for s in first], [s["accuracy"] for s in second]),
            "shifted": _paired([s["shifted"][largest] for s in first], [s["shifted"][largest] for s in second])}


def _data(name: str, c: Config):
    X, y, _, scale = load_images(name, c.mnist_dir, c.mnist_limit if name == "mnist" else None)
    return X / scale, y


def _candidates(name: str, c: Config):
    return ([_scaled(s, c.epochs_scale) for s in CNN_CANDIDATES[name]],
            [_scaled(s, c.epochs_scale) for s in MLP_CANDIDATES[name]])


def study_metrics(name: str, c: Config, n_images: int, cnn: list, mlp: list) -> dict:
    """One dataset's metrics from its CNN and MLP splits (in seed order)."""
    cnn_specs, mlp_specs = _candidates(name, c)
    table = {}
    for label, splits, specs in ((CNN_KEY, cnn, cnn_specs), (MLP_KEY, mlp, mlp_specs)):
        scores = [s["test_scores"] for s in splits]
        table[label] = {
            "accuracy": summarise([sc["accuracy"] for sc in scores]),
            "shifted": {k: summarise([sc["shifted"][k] for sc in scores]) for k in scores[0]["shifted"]},
            "parameters": [sc["parameters"] for sc in scores],
            "multiply_adds": [sc["multiply_adds"] for sc in scores],
            "recipes": [specs[s["chosen"]].describe() for s in splits],
        }
    cnn_mean = table[CNN_KEY]["accuracy"]["mean"]
    target = TARGETS.get(name)
    return {
        "n_images": n_images, "cnn_candidates": _candidate_table(cnn_specs, cnn),
        "cnn_candidate_specs": [s.as_dict() for s in cnn_specs], "mlp_candidates": [s.describe() for s in mlp_specs],
        "size": _comparison(cnn_specs, cnn, "channels"), "augmentation": _comparison(cnn_specs, cnn, "shift"),
        "cnn_splits": [{**s, "test_scores": _slim(s["test_scores"])} for s in cnn],
        "mlp_splits": [{**s, "test_scores": _slim(s["test_scores"])} for s in mlp], "table": table,
        "confusion": np.sum([s["test_scores"]["confusion"] for s in cnn], axis=0).tolist(),
        "first_layer": cnn[0]["test_scores"]["first_layer"], "first_layer_seed": cnn[0]["seed"],
        "cnn_minus_mlp": _paired([s["test_scores"]["accuracy"] for s in cnn],
                                 [s["test_scores"]["accuracy"] for s in mlp]),
        "target": target, "meets_target": None if target is None else bool(cnn_mean >= target),
        "target_gap": None if target is None else float(target - cnn_mean),
    }


def _by_shift(row: dict) -> list[float]:
    """Mean accuracy unshifted, then at each measured shift."""
    return [row["accuracy"]["mean"], *(s["mean"] for s in row["shifted"].values())]


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run the study on every dataset; draw the filters, confusion matrix and translation curves; return the Result."""
    out_dir = Path(out_dir)
    data = {name: _data(name, config) for name in config.datasets}
    calls, keys = [], []
    # the longest tasks first (the CNN on the largest images), so that the pool does not end on one of them
    for name in sorted(config.datasets, key=lambda n: -data[n][0].size):
        cnn_specs, mlp_specs = _candidates(name, config)
        for family, specs in (("cnn", cnn_specs), ("mlp", mlp_specs)):
            for seed in config.seeds:
                calls.append((nested_split, (specs, *data[name], seed)))
                keys.append((name, family))
    done = run_calls(calls, jobs)
    grouped = {}
    for key, result in zip(keys, done):
        grouped.setdefault(key, []).append(result)
    metrics, summary, figs = {}, [], {}
    for name in config.datasets:
        m = study_metrics(name, config, len(data[name][1]), grouped[(name, "cnn")], grouped[(name, "mlp")])
        metrics[name] = m
        for label, row in m["table"].items():
            acc = row["accuracy"]
            summary.append((f"{name}: {label}", f"{acc['mean']:.4f} ± {acc['std']:.4f}, "
                                                f"{row['parameters'][0]:,} parameters (seed {config.seeds[0]})"))
        side = _side(data[name][0])
        figs[f"{name}_filters"] = plots.filters(
            out_dir / f"cnn_{name}_filters.png", np.asarray(m["first_layer"]),
            f"{name}: first-layer filters of the CNN (seed {m['first_layer_seed']})").name
        figs[f"{name}_confusion"] = plots.confusion(
            out_dir / f"cnn_{name}_confusion.png", m["confusion"],
            f"{name}: CNN, test rows of all {len(config.seeds)} splits").name
        shifts = [0, *map(int, m["table"][CNN_KEY]["shifted"])]
        curves = {f"{label}, test rows": (shifts, _by_shift(row)) for label, row in m["table"].items()}
        for i, row in enumerate(m["cnn_candidates"], 1):
            curves[f"CNN candidate {i}, validation rows"] = (shifts, _by_shift(row), {"ls": "--"})
        figs[f"{name}_shifted"] = plots.curves(
            out_dir / f"cnn_{name}_shifted.png", curves, f"{name} ({side}x{side}): images shifted by k pixels",
            xlabel="shift k (pixels; mean of up, down, left, right)", ylabel="mean accuracy over the splits").name
    return Result("cnn", TITLE, config_dict(config), metrics, figs, summary)

