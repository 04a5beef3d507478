"""Ablation: what each component beyond the handout buys, measured one addition at a time.

On the 8x8 digits (pixels / 16) and the 5,000 MNIST images (pixels / 255), starting from
the handout's Stage 5 recipe (one hidden layer of 64 ReLU units, plain SGD at lr 0.01,
batch 128), each row adds one thing to the row above it: Adam, width, AdamW's decay,
dropout, batch normalisation, random shifts, a second hidden layer, a cosine schedule,
longer training.

Every row is evaluated on the same 5 seeded splits, with nested, leak-free selection of
whatever the row tunes (the protocol of the accuracy study): in each split, the row's
candidates are trained on 70 % of all rows and scored on 10 %; the winner (highest
validation accuracy, then lowest validation loss, then the earlier candidate) is retrained
on those 80 % and tested once on the remaining 20 %.  A value chosen in a row is kept by
the rows below it, split by split.  A row's change is judged against the row above on the
same splits: the mean paired difference, its standard error, and a paired t test.

Cost: ``metrics.json`` records a deterministic measure of each row's work (multiply-adds
of the weight products, ``3 x rows x epochs x weights`` per training); measured times vary
from run to run, so they are kept out of it.  ``python -m nnlab.stages.ablation_timing``
runs the full study, measures every training's CPU time and the wall time, and writes them
to ``docs/ablation_times.json``, which the report quotes beside the rows.

The trainings of every split run side by side over ``jobs`` processes (one BLAS thread
each); a row's selection waits only for the choice of the row above, so the final
trainings of one row run together with the selections of the next.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nnlab import plots
from nnlab.classify import ClassifierSpec, train_classifier
from nnlab.losses import SoftmaxCrossEntropyLoss
from nnlab.parallel import run_calls
from nnlab.selection import choose, inner_split, outer_split, summarise
from nnlab.stages.common import Result, config_dict
from nnlab.stages.stage5 import load_images
from nnlab.train import predict

TITLE = "Ablation - what each component buys"
#: Its own work fills every core: the runner runs it by itself, with all the workers.
RUN_ALONE = True
#: Mean test accuracy the best recipe must reach.
GOALS = {"digits": 0.985, "mnist": 0.975}
#: Confidence level of the paired t test that judges each row's change.
LEVEL = 0.95
SIDES = {"digits": 8, "mnist": 28}
CLASSES = 10


@dataclass(frozen=True)
class Row:
    """One addition: its key, what it changes, and what it tunes (``{field: candidates}``, per dataset or for both)."""

    key: str
    label: str
    change: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    epochs_factor: int = 1

    def candidates(self, spec: ClassifierSpec, dataset: str) -> list[ClassifierSpec]:
        """The specs this row tries on top of ``spec`` (one when it tunes nothing)."""
        spec = replace(spec, **self.change, epochs=spec.epochs * self.epochs_factor)
        options = [spec]
        for name, values in self.grid.items():
            values = values[dataset] if isinstance(values, dict) else values
            options = [replace(s, **{name: v}) for s in options for v in values]
        return options

    def tuned(self, dataset: str) -> list[str]:
        """The fields this row chooses by validation on ``dataset`` (those with more than one candidate)."""
        return [k for k, v in self.grid.items() if len(v[dataset] if isinstance(v, dict) else v) > 1]


ROWS = (
    Row("handout", "the handout's recipe"),
    Row("adam", "Adam instead of plain SGD", {"optimizer": "adam", "lr": 1e-3}),
    Row("width", "a wider hidden layer", {"hidden": (256,)}),
    Row("adamw", "AdamW's decoupled weight decay", {"optimizer": "adamw"}, {"weight_decay": (0.05, 0.5)}),
    Row("dropout", "dropout after each hidden activation", grid={"dropout": (0.1, 0.3)}),
    Row("batchnorm", "batch normalisation before each activation", {"norm": "batch"}),
    Row("shift", "random shifts of every training batch", grid={"shift": {"digits": (1,), "mnist": (1, 2)}}),
    Row("depth", "a second hidden layer", {"hidden": (256, 256)}),
    Row("cosine", "a cosine learning-rate schedule", {"schedule": "cosine"}),
    Row("longer", "longer training", epochs_factor=3),
)
#: Weight products per row and epoch: the forward one and the two of the backward pass (dW and dx).
WORK_PASSES = 3


@dataclass
class Config:
    """Ablation settings: the seeds (one split each), the datasets and the epoch budget of the first rows."""

    seeds: tuple = (0, 1, 2, 3, 4)
    datasets: tuple = ("digits", "mnist")
    digits_epochs: int = 50
    mnist_epochs: int = 30
    mnist_dir: str | None = None
    mnist_limit: int | None = None

    def quick(self) -> Config:
        """A seconds-long version for tests (two splits, 600 MNIST images, a few epochs)."""
        return Config(**{**config_dict(self), "seeds": (0, 1), "digits_epochs": 3, "mnist_epochs": 2,
                         "mnist_limit": 600})


def base_spec(dataset: str, c: Config) -> ClassifierSpec:
    """The handout's Stage 5 recipe for ``dataset`` (Xavier initialisation, as the handout's MLP; float32)."""
    epochs = c.digits_epochs if dataset == "digits" else c.mnist_epochs
    return ClassifierSpec(hidden=(64,), nonlin="relu", optimizer="sgd", lr=0.01, batch=128, epochs=epochs,
                          dtype="float32", init="xavier", side=SIDES[dataset])


@functools.lru_cache(maxsize=4)
def dataset_arrays(dataset: str, limit=None, mnist_dir=None):
    """``(X, y, scale)``: pixels divided by ``scale`` into [0, 1] (float32), labels; loaded once per process."""
    X, y, _, scale = load_images(dataset, mnist_dir, limit if dataset == "mnist" else None)
    return (X / scale).astype(np.float32), y, scale


def rows_of(y, seed: int, part: str):
    """``(fit_rows, eval_rows)`` of split ``seed`` (:mod:`nnlab.selection`'s nested split).

    ``"select"``: the inner fitting and validation rows, both inside the split's training
    rows; ``"test"``: the training rows and the test rows.
    """
    train, test = outer_split(y, seed)
    return inner_split(y, train, seed) if part == "select" else (train, test)


def weight_count(spec: ClassifierSpec, n_features: int) -> int:
    """Number of weights (not biases or normalisation parameters) of ``spec``'s network."""
    widths = [n_features, *spec.hidden, CLASSES]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def train_and_score(dataset: str, spec: ClassifierSpec, seed: int, part: str, limit=None, mnist_dir=None) -> dict:
    """Train ``spec`` on split ``seed``'s fit rows (seeded by ``seed``); accuracy and loss on its evaluation rows.

    Also returns the training's multiply-adds (deterministic) and CPU seconds (measured, for the times file).
    """
    X, y, _ = dataset_arrays(dataset, limit, mnist_dir)
    fit_rows, eval_rows = rows_of(y, seed, part)
    start = time.process_time()
    model, _ = train_classifier(spec, X[fit_rows], y[fit_rows], CLASSES, np.random.default_rng(seed))
    seconds = time.process_time() - start
    logits = predict(model, X[eval_rows])
    loss, _ = SoftmaxCrossEntropyLoss()(logits, y[eval_rows])
    return {"accuracy": float(np.mean(logits.argmax(axis=1) == y[eval_rows])), "loss": float(loss),
            "work": WORK_PASSES * len(fit_rows) * spec.epochs * weight_count(spec, X.shape[1]), "seconds": seconds}


def run_tasks(tasks: list, jobs: int) -> list:
    """``[train_and_score(*args) for args in tasks]`` over ``jobs`` processes, the largest trainings started first.

    Every task seeds its own generator and uses one BLAS thread, so the results do not depend on ``jobs``.
    """
    order = sorted(range(len(tasks)), key=lambda i: -_expected_work(tasks[i]))
    done = run_calls([(train_and_score, tasks[i]) for i in order], jobs)
    results = [None] * len(tasks)
    for i, r in zip(order, done):
        results[i] = r
    return results


def _expected_work(task) -> int:
    """A training's multiply-adds, roughly (whole dataset, no mode): to start the largest first."""
    dataset, spec = task[0], task[1]
    features, images = (64, 1797) if dataset == "digits" else (784, 5000)
    return images * spec.epochs * weight_count(spec, features)


def paired_change(now, before) -> dict:
    """Mean paired difference ``now - before`` over the splits, its standard error, t, and the verdict at ``LEVEL``."""
    from scipy import stats

    d = np.asarray(now, dtype=float) - np.asarray(before, dtype=float)
    d[np.abs(d) < 1e-12] = 0.0  # equal accuracies computed in different orders differ by rounding alone
    n = d.size
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    # The same difference on every split (or one split) leaves no spread to judge it against: ``t`` is then
    # None, and a difference that is not 0 counts as beyond the noise.
    constant = se <= 1e-12 * max(1.0, abs(float(d.mean())))
    t = None if constant else float(d.mean() / se)
    critical = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) if n > 1 else None
    beyond = bool(d.any()) if constant else bool(abs(t) > critical)
    return {"mean": float(d.mean()), "se": 0.0 if constant else se, "t": t, "t_critical": critical, "level": LEVEL,
            "splits": int(n), "wins": int(np.sum(d > 0)), "losses": int(np.sum(d < 0)), "beyond_noise": beyond}


def _tasks(c: Config, dataset: str, spec: ClassifierSpec, seed: int, part: str):
    return (dataset, spec, seed, part, c.mnist_limit, c.mnist_dir)


def study(c: Config, jobs: int) -> dict:
    """Every row on every split of every dataset.

    Returns ``{"records": {dataset: {row key: record}}, "seconds": {dataset: {row key: CPU seconds}}}``.
    """
    splits = [(d, s) for d in c.datasets for s in c.seeds]
    current = {(d, s): base_spec(d, c) for d, s in splits}
    records = {d: {row.key: {"chosen": [], "selection": [], "test": [None] * len(c.seeds), "work": 0}
                   for row in ROWS} for d in c.datasets}
    seconds = {d: {row.key: {"final": [], "total": 0.0} for row in ROWS} for d in c.datasets}
    finals = []  # (dataset, seed index, row key, spec): tests waiting to run with the next batch

    def flush(selections):
        """Run the waiting tests with ``selections``; returns the selections' scores."""
        tasks = [_tasks(c, d, spec, c.seeds[i], "test") for d, i, _, spec in finals]
        tasks += [_tasks(c, d, spec, seed, "select") for d, seed, spec in selections]
        done = run_tasks(tasks, jobs)
        for (d, i, key, _), r in zip(finals, done):
            records[d][key]["test"][i] = r["accuracy"]
            records[d][key]["work"] += r["work"]
            seconds[d][key]["final"].append(r["seconds"])
            seconds[d][key]["total"] += r["seconds"]
        finals.clear()
        return done[len(tasks) - len(selections):]

    for row in ROWS:
        current_before = dict(current)
        options = {split: row.candidates(current[split], split[0]) for split in splits}
        selections = [(d, s, spec) for (d, s), specs in options.items() if len(specs) > 1 for spec in specs]
        scores = iter(flush(selections) if selections else [])
        for (d, s), specs in options.items():
            i = c.seeds.index(s)
            rec = records[d][row.key]
            if len(specs) > 1:
                got = [next(scores) for _ in specs]
                winner = choose(got)
                rec["selection"].append([{"accuracy": g["accuracy"], "loss": g["loss"]} for g in got])
                rec["work"] += sum(g["work"] for g in got)
                seconds[d][row.key]["total"] += sum(g["seconds"] for g in got)
            else:
                winner = 0
            current[(d, s)] = specs[winner]
            rec["chosen"].append({k: getattr(specs[winner], k) for k in row.tuned(d)})
            if i == 0:
                rec["recipe_first_split"] = specs[winner].describe()
                rec["epochs"] = specs[winner].epochs
                rec["changes"] = _changes(current_before[(d, s)], specs[winner], row.tuned(d))
                rec["candidates"] = len(specs)
                rec["tuned"] = {k: list(v[d] if isinstance(v, dict) else v) for k, v in row.grid.items()
                                if k in row.tuned(d)}
            finals.append((d, i, row.key, specs[winner]))
    flush([])
    return {"records": records, "seconds": seconds}


def _changes(before: ClassifierSpec, after: ClassifierSpec, tuned: list[str]) -> list[dict]:
    """The fields a row changed, with their old and new values (a tuned field's new value: chosen per split)."""
    return [{"field": k, "before": getattr(before, k), "after": None if k in tuned else getattr(after, k)}
            for k in before.as_dict() if getattr(before, k) != getattr(after, k) or k in tuned]


def _dataset_metrics(dataset: str, c: Config, records: dict) -> dict:
    rows, previous = [], None
    for row in ROWS:
        rec = records[row.key]
        acc = summarise(rec["test"])
        entry = {"key": row.key, "label": row.label, "changes": rec["changes"],
                 "recipe_first_split": rec["recipe_first_split"],
                 "test_accuracy": acc, "tuned": rec["tuned"], "chosen": rec["chosen"], "selection": rec["selection"],
                 "candidates": rec["candidates"], "epochs": rec["epochs"], "work_gmac": rec["work"] / 1e9,
                 "change": None if previous is None else paired_change(rec["test"], previous)}
        rows.append(entry)
        previous = rec["test"]
    best = max(range(len(rows)), key=lambda i: (rows[i]["test_accuracy"]["mean"], -i))
    best_mean = rows[best]["test_accuracy"]["mean"]
    _, y, scale = dataset_arrays(dataset, c.mnist_limit, c.mnist_dir)
    (fit_rows, val_rows), (train_rows, test_rows) = rows_of(y, c.seeds[0], "select"), rows_of(y, c.seeds[0], "test")
    sizes = {"fit": len(fit_rows), "validation": len(val_rows), "train": len(train_rows), "test": len(test_rows)}
    return {"n_images": len(y), "pixel_scale": scale, "splits": len(c.seeds), "split_rows": sizes,
            "base": base_spec(dataset, c).as_dict(), "base_recipe": base_spec(dataset, c).describe(), "rows": rows,
            "best": rows[best]["key"], "best_mean": best_mean, "goal": GOALS[dataset],
            "meets_goal": bool(best_mean >= GOALS[dataset]),
            "shortfall": max(0.0, GOALS[dataset] - best_mean), "margin": best_mean - GOALS[dataset],
            "work_passes": WORK_PASSES,
            "first_vs_best": paired_change(records[rows[best]["key"]]["test"], records[ROWS[0].key]["test"])}


def run(config: Config, out_dir: Path, progress: bool = False, jobs: int = 1) -> Result:
    """Run the ablation over ``jobs`` processes; draw one figure per dataset.

    The measured CPU times go to ``times.json`` in ``out_dir``, not into the result: the
    result (``metrics.json``) is the same whatever ``jobs`` and however busy the machine.
    """
    out_dir = Path(out_dir)
    found = study(config, jobs)
    metrics, figures, summary = {}, {}, []
    for d in config.datasets:
        m = _dataset_metrics(d, config, found["records"][d])
        metrics[d] = m
        figures[d] = plots.dots(out_dir / f"ablation_{d}.png",
                                {r["key"]: r["test_accuracy"]["values"] for r in m["rows"]},
                                f"{d}: test accuracy of each row on {len(config.seeds)} splits",
                                ylabel="test accuracy", target=(m["goal"], f"goal {m['goal']:.3f}")).name
        for r in m["rows"]:
            a = r["test_accuracy"]
            summary.append((f"{d}: + {r['key']}", f"{a['mean']:.4f} ± {a['std']:.4f}"))
    (out_dir / "times.json").write_text(json.dumps(found["seconds"], indent=2, sort_keys=True) + "\n")
    return Result("ablation", TITLE, config_dict(config), metrics, figures, summary)
