"""Leak-free selection: no test row of any split reaches its selection; the tie rule; the accuracy study uses it."""

import numpy as np
import pytest

from nnlab import selection
from nnlab.stages import accuracy


def _labels(n=200, classes=4):
    return np.arange(n) % classes


def _assert_leak_free(calls, y, seeds, finals_expected=None):
    """Each recorded training call is a split's final (train -> test rows) or never touches its test rows.

    ``finals_expected``: seed -> number of train -> test fits (1, or 2 with a control); 1 by default.
    """
    finals_expected = finals_expected or {seed: 1 for seed in seeds}
    finals = {seed: 0 for seed in seeds}
    selections = {seed: 0 for seed in seeds}
    for fit_rows, eval_rows, seed in calls:
        train, test = selection.outer_split(y, seed)
        if np.array_equal(eval_rows, test):
            assert np.array_equal(fit_rows, train), f"seed {seed}: the final model trained on other rows"
            finals[seed] += 1
        else:
            used = np.union1d(fit_rows, eval_rows)
            assert np.intersect1d(used, test).size == 0, f"seed {seed}: test rows reached the selection"
            selections[seed] += 1
    assert finals == finals_expected and all(v > 0 for v in selections.values())


def _cheap_score(candidate, X, y, fit_rows, eval_rows, seed):
    """A stand-in for training: scores that depend on the candidate and the rows, nothing more."""
    rng = np.random.default_rng([candidate, seed, len(fit_rows)])
    return {"accuracy": float(rng.integers(0, 4)) / 4, "loss": float(rng.random())}


def test_nested_protocol_keeps_test_rows_out_of_selection(monkeypatch):
    calls = []

    def spy(candidate, X, y, fit_rows, eval_rows, seed):
        calls.append((np.array(fit_rows), np.array(eval_rows), seed))
        return _cheap_score(candidate, X, y, fit_rows, eval_rows, seed)

    y = _labels()
    X = np.zeros((len(y), 1))
    seeds = (0, 1, 2, 3, 4)
    out = selection.nested_evaluation([0, 1, 2], X, y, seeds, spy)
    assert len(calls) == len(seeds) * 3 + len(seeds)
    _assert_leak_free(calls, y, seeds)
    assert [s["seed"] for s in out["splits"]] == list(seeds)


def test_the_leak_check_catches_the_old_protocol():
    """Choosing on seed 0's validation rows and testing on seeds 1-4 puts selection rows into later test sets."""
    y = _labels()
    seeds = (0, 1, 2, 3, 4)
    train0, _ = selection.outer_split(y, 0)
    fit0, val0 = selection.inner_split(y, train0, 0)
    calls = [(fit0, val0, seed) for seed in seeds]  # one selection, reused for every split
    calls += [(*selection.outer_split(y, seed), seed) for seed in seeds]
    with pytest.raises(AssertionError, match="test rows reached the selection"):
        _assert_leak_free(calls, y, seeds)


def test_accuracy_study_selection_never_sees_test_rows(monkeypatch):
    calls = []
    real = accuracy.fit_and_score

    def spy(spec, X, y, fit_rows, eval_rows, seed):
        calls.append((np.array(fit_rows), np.array(eval_rows), seed))
        return real(spec, X, y, fit_rows, eval_rows, seed)

    monkeypatch.setattr(accuracy, "fit_and_score", spy)
    config = accuracy.Config().quick()
    config = type(config)(**{**config.__dict__, "datasets": ("digits",), "baselines": False, "epochs_scale": 0.02})
    out = accuracy.study("digits", config, jobs=1)
    y = accuracy.load_images("digits")[1]
    shifted = {sp["seed"]: bool(out["candidate_specs"][sp["chosen"]]["shift"]) for sp in out["splits"]}
    _assert_leak_free(calls, y, config.seeds, {seed: 1 + shifted[seed] for seed in config.seeds})


def _double(candidate):
    """A control for the tests: candidate 1's variant is 11; the others have none."""
    return 11 if candidate == 1 else None


def test_the_control_trains_only_when_the_winner_has_a_variant():
    calls = []

    def scored(candidate, X, y, fit_rows, eval_rows, seed):
        calls.append(candidate)
        return {"accuracy": {0: 0.5, 1: 0.9, 11: 0.7}.get(candidate, 0.1), "loss": 0.0}

    y = _labels()
    out = selection.split_task([0, 1], np.zeros((len(y), 1)), y, 0, scored, _double)
    assert out["chosen"] == 1 and calls == [0, 1, 1, 11] and out["control_scores"]["accuracy"] == 0.7
    calls.clear()
    out = selection.split_task([0, 2], np.zeros((len(y), 1)), y, 0, scored, _double)
    assert calls == [0, 2, 0] and out["control_scores"] is out["test_scores"]


def test_tie_rule_accuracy_then_loss_then_order():
    assert selection.choose([{"accuracy": 0.9, "loss": 0.3}, {"accuracy": 0.95, "loss": 0.5}]) == 1
    assert selection.choose([{"accuracy": 0.9, "loss": 0.3}, {"accuracy": 0.9, "loss": 0.2}]) == 1
    assert selection.choose([{"accuracy": 0.9, "loss": 0.2}, {"accuracy": 0.9, "loss": 0.2}]) == 0


def test_ties_are_recorded():
    def tied(candidate, X, y, fit_rows, eval_rows, seed):
        return {"accuracy": 0.5, "loss": 1.0 - 0.1 * candidate}

    y = _labels()
    out = selection.nested_evaluation([0, 1, 2], np.zeros((len(y), 1)), y, (0,), tied)
    assert out["splits"][0]["chosen"] == 2 and out["splits"][0]["tied_with"] == [0, 1]


def test_test_rows_are_counted_from_the_split():
    y = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])  # the digits' class sizes
    train, test = selection.outer_split(y, 0)
    assert len(test) != round(0.2 * len(y))  # stratified flooring: 355 rows, not 359
    out = selection.nested_evaluation([0], np.zeros((len(y), 1)), y, (0,), _cheap_score)
    assert out["splits"][0]["test_rows"] == len(test)
