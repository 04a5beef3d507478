"""Leak-free model selection over seeded splits: mean and spread of the test score of a chosen recipe.

The protocol (nested selection), for each seed:

1. an outer stratified split of all rows into *training* and *test* rows;
2. inside the outer training rows only, an inner stratified split into *fit* and
   *validation* rows; every candidate is trained on the fit rows and scored on the
   validation rows;
3. the winner is retrained on all outer training rows and scored once on the outer
   test rows.

A split's test rows never reach its selection, so each test score is an honest
estimate even though the recipe is chosen anew per split (and may differ between
splits).  The tie rule: the highest validation accuracy wins; among equals, the lowest
validation loss; among those, the earlier candidate.

The training itself is the caller's: ``fit_and_score(candidate, X, y, fit_rows,
eval_rows, seed)`` trains ``candidate`` on ``X[fit_rows]`` and returns
``{"accuracy": ..., "loss": ...}`` measured on ``X[eval_rows]``.  It must be a
module-level function: the work is shared out over ``jobs`` processes.
"""

from __future__ import annotations

import numpy as np

from nnlab.data import stratified_split
from nnlab.parallel import run_calls

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.125  # of the outer training rows: 70 / 10 / 20 % of all rows


def outer_split(y, seed: int, test_fraction: float = TEST_FRACTION):
    """Stratified ``(train_rows, test_rows)`` of all of ``y``'s rows, fixed by ``seed``."""
    return tuple(stratified_split(y, (1 - test_fraction, test_fraction), np.random.default_rng(seed)))


def inner_split(y, train_rows, seed: int, validation_fraction: float = VALIDATION_FRACTION):
    """Stratified ``(fit_rows, validation_rows)`` drawn from ``train_rows`` only (indices into ``y``)."""
    fit, val = stratified_split(y[train_rows], (1 - validation_fraction, validation_fraction),
                                np.random.default_rng(seed + 1))
    return train_rows[fit], train_rows[val]


def choose(scores) -> int:
    """Index of the winning candidate under the tie rule (accuracy, then loss, then list order)."""
    return min(range(len(scores)), key=lambda i: (-scores[i]["accuracy"], scores[i]["loss"], i))


def summarise(values) -> dict:
    """Mean, sample standard deviation, min, max and the values themselves."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "min": float(v.min()),
            "max": float(v.max()), "values": v}


def split_task(candidates, X, y, seed: int, fit_and_score, control=None) -> dict:
    """One seed of the protocol: choose inside the outer training rows, then test the winner once.

    Returns the seed, the row counts, every candidate's validation scores, the chosen index,
    the candidates it tied with on validation accuracy, and its test scores.  With ``control``
    (a module-level function: candidate -> a variant of it, or ``None`` for "the same"), the
    winner's variant is also trained on the outer training rows and tested, chosen or not, as
    ``control_scores`` (the winner's own test scores when the variant is the same).
    """
    train, test = outer_split(y, seed)
    fit, val = inner_split(y, train, seed)
    scores = [fit_and_score(cand, X, y, fit, val, seed) for cand in candidates]
    chosen = choose(scores)
    tied = [i for i, sc in enumerate(scores) if i != chosen and sc["accuracy"] == scores[chosen]["accuracy"]]
    final = fit_and_score(candidates[chosen], X, y, train, test, seed)
    out = {"seed": seed, "train_rows": len(train), "test_rows": len(test), "fit_rows": len(fit),
           "validation_rows": len(val), "selection": scores, "chosen": chosen, "tied_with": tied,
           "test_scores": final}
    if control is not None:
        variant = control(candidates[chosen])
        out["control_scores"] = final if variant is None else fit_and_score(variant, X, y, train, test, seed)
    return out


def nested_evaluation(candidates, X, y, seeds, fit_and_score, jobs: int = 1) -> dict:
    """Run the nested protocol for every seed (one :func:`split_task` each, over ``jobs`` processes).

    Args:
        candidates: the recipes to choose from (anything ``fit_and_score`` accepts).
        X, y: all rows.
        seeds: one outer split per seed.
        fit_and_score: see the module docstring.
        jobs: worker processes.
    Returns:
        ``{"splits": [split_task results], "test_accuracy": summary of the test accuracies}``.
    """
    splits = run_calls([(split_task, (candidates, X, y, seed, fit_and_score)) for seed in seeds], jobs)
    return summarise_splits(splits)


def summarise_splits(splits) -> dict:
    """The splits of :func:`split_task` and the summary of their test accuracies."""
    return {"splits": list(splits), "test_accuracy": summarise([s["test_scores"]["accuracy"] for s in splits])}
