"""Every stage in quick mode: it runs, writes its figures, and the science holds."""

import json

import numpy as np
import pytest

from nnlab.stages import STAGES, accuracy


@pytest.fixture(scope="module")
def results(quick_runs):
    runs, out = quick_runs
    return {sid: (runs[sid].result, out / f"stage{sid}") for sid in ("1", "2", "3", "4", "5", "accuracy")}


@pytest.mark.parametrize("sid", ["1", "2", "3", "4", "5", "accuracy"])
def test_stage_writes_every_figure_it_names(results, sid):
    result, folder = results[sid]
    assert result.figures
    for name in result.figures.values():
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    json.dumps(result.to_json())  # JSON-ready
    assert not result.diverged


def test_stage1_learns_the_line_and_finds_the_stability_edge(results):
    m = results["1"][0].metrics
    assert abs(m["w"] - 2.5) < 0.1 and abs(m["b"] + 0.7) < 0.1
    assert m["loss_final"] < m["loss_first"] / 50
    assert abs(m["lr_critical_measured"] / m["lr_critical_theory"] - 1) < 0.01
    assert m["near_zero"]["b_progress"] > 0.99 and m["near_zero"]["w_progress"] < 0.05
    assert m["sweep"]["0.8"]["diverged"] and not m["sweep"]["0.05"]["diverged"]


def test_stage1_noise_floor_is_the_drawn_noise_minus_what_the_line_absorbs(results):
    n = results["1"][0].metrics["noise"]
    assert n["noise_mean_square"] - n["absorbed_by_line"] == pytest.approx(n["mse_ols"], rel=1e-12)
    assert 0 < n["absorbed_by_line"] < n["noise_mean_square"]


def test_stage2_gradients_and_collapse(results):
    m = results["2"][0].metrics
    assert m["finite_difference"]["max_error"] < 1e-7
    assert m["finite_difference"]["planted_slip_error"] > 0.1  # the slip is visible at this scale
    assert m["collapse_max_abs_gap"] < 1e-12
    assert m["loss_final"] < m["loss_first"] / 10
    assert abs(m["w_collapsed"] - m["w_ols"]) < 0.1


def test_stage3_longer_training_fits_better_and_capacity_is_measured(results):
    m = results["3"][0].metrics
    runs = m["runs"]
    for r in runs.values():
        assert r["train_mse_long"] <= r["train_mse_short"] <= r["loss_first"]
        assert 0 <= r["span_error_long"] <= m["sine_variance"]
    assert set(runs) == set(m["adam"]) == {"relu", "tanh"}
    # with zero initial biases every ReLU kink is at x = 0: the initial units draw no more than a line
    assert runs["relu"]["span_error_init"] == pytest.approx(m["line_mse"], rel=1e-6)
    assert m["random_kinks_span_error"] < m["line_mse"] / 10


def test_stage3_bounded_capacity_is_no_better_than_the_unbounded_and_keeps_its_bound(results):
    result = results["3"][0]
    for r in result.metrics["runs"].values():
        multiple = result.config["capacity_norm_multiple"]
        assert r["span_weight_bound"] == pytest.approx(multiple * r["output_weight_norm"])
        for when in ("init", "long"):
            assert r[f"bounded_span_error_{when}"] >= r[f"span_error_{when}"] * (1 - 1e-9)
            assert r[f"bounded_span_weight_norm_{when}"] <= r["span_weight_bound"] * (1 + 1e-9)
            assert r[f"span_condition_{when}"] >= 1
    tanh = result.metrics["runs"]["tanh"]
    # the seeded tanh units are nearly collinear: the unbounded fit needs weights far beyond any trained layer's
    assert tanh["span_weight_norm_init"] > 1e3 * tanh["span_weight_bound"]
    assert tanh["span_condition_init"] > 1e12


def test_stages_3_to_5_record_the_handouts_mini_checks(results):
    assert results["3"][0].metrics["relu_mini_check"]["max_abs_error"] == 0
    l2 = results["4"][0].metrics["l2_mini_check"]
    assert l2["max_abs_error"] <= 1e-15 < l2["max_abs_expected"]
    assert results["5"][0].metrics["ce_mini_check"]["loss"] == 0.0


def test_stage4_ridge_match_and_hand_predictions(results):
    m = results["4"][0].metrics
    assert m["converged"]["gap_to_closed_form"] < 1e-6
    for p in m["predictions"].values():
        assert abs(p["model"] - p["by_hand"]) < 1e-3
    norms = [s["weight_norm"] for s in m["sweep"].values()]
    assert norms[2] > norms[3] > norms[4]  # lambda 0.1 > 1 > 10: shrinkage
    cf = [s["closed_form_norm"] for s in m["sweep"].values()]
    assert all(a >= b for a, b in zip(cf, cf[1:]))
    spread = [s["leave_one_out"]["weight_spread"] for s in m["sweep"].values()]
    assert spread[0] > spread[-1]
    r2 = m["sweep"]["10"]["closed_form_r2"]
    assert 0 < r2 < 1 and r2 == pytest.approx(1 - m["sweep"]["10"]["closed_form_fit_mse"] / m["mean_predictor_mse"])


def test_stage4_leave_one_out_refits_without_the_row():
    from nnlab.stages.stage4 import leave_one_out, ridge_closed_form

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 2)), rng.normal(size=6)
    loo = leave_one_out(X, y, 0.1)
    w, _ = ridge_closed_form(X[1:], y[1:], 0.1)
    np.testing.assert_allclose(loo["weights"][0], w)


def test_stage5_accuracy_well_above_chance(results):
    m = results["5"][0].metrics
    assert m["handout"]["final_acc_on_training_data"] > 0.9
    assert m["held_out"]["test_acc"] > 0.8
    cm = np.array(m["held_out"]["confusion"])
    assert cm.sum() == m["held_out"]["split_sizes"]["test"]
    assert m["mnist"]["test_acc"] > 0.15  # 4 quick epochs on 1,000 images: above chance (0.1)
    assert m["digits_same_recipe"]["epochs"] == m["mnist"]["epochs"]


def test_most_confused_reports_every_tie():
    from nnlab.stages.stage5 import most_confused

    cm = np.array([[5, 2, 0], [2, 5, 1], [0, 2, 5]])
    assert most_confused(cm) == {"count": 2, "pairs": [[0, 1], [1, 0], [2, 1]]}


def test_accuracy_study_quick_has_every_column(results):
    m = results["accuracy"][0].metrics
    for study in m.values():
        shifted = [bool(study["candidate_specs"][sp["chosen"]]["shift"]) for sp in study["splits"]]
        control = {accuracy.CONTROL} if any(shifted) else set()
        assert set(study["table"]) == {"nnlab (recipe chosen per split)", "sklearn MLPClassifier",
                                       "sklearn LogisticRegression"} | control
        assert study["shifted_splits"] == sum(shifted)
        for split, shifts in zip(study["splits"], shifted):
            if not shifts:  # the control is the chosen recipe itself where it does not shift
                assert split["control_scores"] == split["test_scores"]
        assert study["table"]["nnlab (recipe chosen per split)"]["mean"] > 0.5
        for split in study["splits"]:
            assert len(split["selection"]) == len(study["candidates"])
            assert split["fit_rows"] + split["validation_rows"] == split["train_rows"]
            assert split["train_rows"] + split["test_rows"] == study["n_images"]
        assert study["test_rows"] == sorted({s["test_rows"] for s in study["splits"]})
        fits = study["sklearn_mlp_fits"]
        assert [f["seed"] for f in fits] == [sp["seed"] for sp in study["splits"]]
        for f in fits:
            assert 1 <= f["n_iter"] <= f["max_iter"] == 200 and f["at_cap"] == (f["n_iter"] == f["max_iter"])


def test_sklearns_mlp_stopping_at_its_cap_is_recorded_not_hidden(monkeypatch):
    """A cap of 3 iterations: recorded as 3 of 3, at the cap, with scikit-learn's ConvergenceWarning kept."""
    import sklearn.neural_network

    class Capped(sklearn.neural_network.MLPClassifier):
        def __init__(self, random_state=None):
            super().__init__(random_state=random_state, max_iter=3)

    class Loose(sklearn.neural_network.MLPClassifier):  # tol 1: after the first epoch none improves by it: 1 + 11
        def __init__(self, random_state=None):
            super().__init__(random_state=random_state, tol=1.0)

    X, y = accuracy.load_images("digits")[:2]
    train, test = np.arange(0, 300), np.arange(300, 400)
    monkeypatch.setattr(sklearn.neural_network, "MLPClassifier", Loose)
    free = accuracy.baselines(X / 16, y, train, test, 0)
    assert free["mlp_iterations"] == {"n_iter": 12, "max_iter": 200, "at_cap": False}
    assert "sklearn MLPClassifier" not in free["not_converged"]
    monkeypatch.setattr(sklearn.neural_network, "MLPClassifier", Capped)
    capped = accuracy.baselines(X / 16, y, train, test, 0)
    assert capped["mlp_iterations"] == {"n_iter": 3, "max_iter": 3, "at_cap": True}
    assert "sklearn MLPClassifier" in capped["not_converged"]
    assert set(capped["scores"]) == {"sklearn MLPClassifier", "sklearn LogisticRegression"}


def _render_accuracy(metrics):
    from nnlab.report import context, sections

    results = {"accuracy": metrics}
    text = sections.render_section("accuracy", context.accuracy(results), "docs/figures", "accuracy",
                                   metrics["figures"])
    return " ".join(text.split())


def test_the_report_says_in_how_many_splits_sklearns_mlp_stopped_at_its_cap(results):
    metrics = json.loads(json.dumps(results["accuracy"][0].to_json()))
    for study in metrics["metrics"].values():
        for i, f in enumerate(study["sklearn_mlp_fits"]):
            f.update(n_iter=200 if i == 0 else 150, max_iter=200, at_cap=i == 0)
    n = len(metrics["metrics"]["digits"]["splits"])
    text = _render_accuracy(metrics)
    assert (f"scikit-learn's defaults, which stopped at the 200-iteration cap without converging in 1 of {n} "
            "splits") in text
    assert "converged before" not in text
    for study in metrics["metrics"].values():
        for f in study["sklearn_mlp_fits"]:
            f.update(n_iter=150, at_cap=False)
    text = _render_accuracy(metrics)
    assert f"it converged before its 200-iteration cap in all {n} splits" in text and "without converging" not in text


def test_stage_modules_share_one_interface():
    for module in STAGES.values():
        assert callable(module.run) and hasattr(module, "Config") and hasattr(module, "TITLE")


def test_metrics_are_byte_identical_with_one_and_two_workers(quick_runs, tmp_path):
    """The stages that share out their own work, and the stages side by side, give the same bytes as one process."""
    from nnlab.stages.runner import run_stages

    _, sequential = quick_runs
    ids = ("1", "2", "3", "5", "accuracy")  # each fans out, or runs side by side with the others
    run_stages({sid: STAGES[sid].Config().quick() for sid in ids}, tmp_path, jobs=2)
    for sid in ids:
        a = (sequential / f"stage{sid}" / "metrics.json").read_bytes()
        b = (tmp_path / f"stage{sid}" / "metrics.json").read_bytes()
        assert a == b, f"stage {sid}: metrics.json differs between 1 and 2 workers"
