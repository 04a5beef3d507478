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


def nested_evaluation(candidates, X, y, seeds, fit_and_score, jobs: int = 1, extra_calls=()) -> dict:
    """Run the nested protocol for every seed; return per-split choices and test scores and their summary.

    Args:
        candidates: the recipes to choose from (anything ``fit_and_score`` accepts).
        X, y: all rows.
        seeds: one outer split per seed.
        fit_and_score: see the module docstring.
        jobs: worker processes for the trainings.
        extra_calls: ``(fn, args)`` pairs of independent work to share the first round of
            processes with (e.g. baselines); their results come back as ``extra``.
    Returns:
        ``{"splits": [...], "test_accuracy": summary, "extra": [...]}``; each split holds its
        seed, row counts, every candidate's validation scores, the chosen index, whether it
        won a tie, and its test scores.
    """
    extra_calls = list(extra_calls)
    splits = []
    for seed in seeds:
        train, test = outer_split(y, seed)
        fit, val = inner_split(y, train, seed)
        splits.append({"seed": seed, "rows": (train, test, fit, val)})
    select_calls = [(fit_and_score, (cand, X, y, s["rows"][2], s["rows"][3], s["seed"]))
                    for s in splits for cand in candidates]
    first = run_calls(extra_calls + select_calls, jobs)
    extra, scores = first[: len(extra_calls)], first[len(extra_calls):]
    for k, s in enumerate(splits):
        s["selection"] = scores[k * len(candidates): (k + 1) * len(candidates)]
        s["chosen"] = choose(s["selection"])
        best = s["selection"][s["chosen"]]
        s["tied_with"] = [i for i, sc in enumerate(s["selection"])
                          if i != s["chosen"] and sc["accuracy"] == best["accuracy"]]
    finals = run_calls([(fit_and_score, (candidates[s["chosen"]], X, y, s["rows"][0], s["rows"][1], s["seed"]))
                        for s in splits], jobs)
    for s, final in zip(splits, finals):
        train, test, fit, val = s.pop("rows")
        s.update(test_scores=final, train_rows=len(train), test_rows=len(test), fit_rows=len(fit),
                 validation_rows=len(val))
    return {"splits": splits, "test_accuracy": summarise([s["test_scores"]["accuracy"] for s in splits]),
            "extra": extra}
