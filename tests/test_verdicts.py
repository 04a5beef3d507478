"""The report's comparative words follow a noise rule: a tie input gives the tie wording, a clear gap the verdict."""

import math

import pytest

from nnlab.errors import NnlabValueError
from nnlab.report import context, verdicts
from nnlab.report.format import upto


def test_mean_interval_is_the_student_t_interval():
    mean, low, high = verdicts.mean_interval([1.0, 2.0, 3.0], level=0.95)
    # t_{0.975, 2} = 4.3027; sd = 1; n = 3
    assert mean == 2.0 and math.isclose(high - mean, 4.302653 / math.sqrt(3), rel_tol=1e-6)
    assert math.isclose(mean - low, high - mean)
    with pytest.raises(NnlabValueError):
        verdicts.mean_interval([1.0])


def test_against_says_tie_when_the_interval_holds_the_reference():
    assert verdicts.against(-0.1, 0.2) == "tie"
    assert verdicts.against(0.01, 0.2) == "above"
    assert verdicts.against(-0.3, -0.01) == "below"
    assert verdicts.against(0.97, 0.99, reference=0.98) == "tie"
    assert verdicts.against(0.981, 0.99, reference=0.98) == "above"
    with pytest.raises(NnlabValueError):
        verdicts.against(1.0, 0.0)


def test_the_reviews_digits_gaps_are_a_tie_and_a_consistent_lead_is_not():
    """Per-split gaps 0, +0.56, +0.85, -0.56, +0.56 points (mean +0.28, se 0.25): a tie."""
    ref = [0.97, 0.97, 0.97, 0.97, 0.97]
    tie = verdicts.paired([r + d for r, d in zip(ref, [0, 0.0056, 0.0085, -0.0056, 0.0056])], ref)
    assert tie["verdict"] == "tie" and tie["low"] < 0 < tie["high"]
    assert (tie["higher"], tie["equal"], tie["lower"]) == (3, 1, 1)
    lead = verdicts.paired([r + d for r, d in zip(ref, [0.030, 0.031, 0.029, 0.032, 0.030])], ref)
    assert lead["verdict"] == "above"
    with pytest.raises(ValueError):
        verdicts.paired([1.0, 2.0], [1.0])


def test_trend_calls_a_small_relative_change_a_stall():
    """The review's tanh run, 0.4289 -> 0.4275 (0.33 %), stalls; ReLU's 0.3523 -> 0.1504 falls."""
    assert verdicts.trend(0.4289, 0.4275) == "stalls"
    assert verdicts.trend(0.3523, 0.1504) == "falls"
    assert verdicts.trend(0.1, 0.2) == "rises"
    with pytest.raises(NnlabValueError):
        verdicts.relative_change(0.0, 1.0)


def test_proportion_gap_of_one_image_is_within_noise():
    """H = 32 at 173 of 177 against 174 of 177: one image, within noise; 100 of 177 against 174 is not."""
    assert verdicts.proportion_gap(174 / 177, 177, 173 / 177, 177)["within_noise"]
    assert not verdicts.proportion_gap(174 / 177, 177, 100 / 177, 177)["within_noise"]
    assert verdicts.proportion_gap(1.0, 50, 1.0, 50)["within_noise"]  # no gap at all
    assert not verdicts.proportion_gap(1.0, 50, 0.0, 50)["within_noise"]


def test_best_of_names_a_best_only_when_every_interval_excludes_zero():
    est = {"nnlab": 0.95, "logreg": 0.97, "mlp": 0.94}
    tie = verdicts.best_of(est, {"logreg": (-0.0175, -0.0526, 0.0088), "mlp": (0.01, -0.02, 0.03)}, "nnlab", False)
    assert tie == {"top": "logreg", "shown_best": None, "ties_with_top": True}
    est = {"nnlab": 0.99, "logreg": 0.90}
    clear = verdicts.best_of(est, {"logreg": (0.09, 0.05, 0.12)}, "nnlab", False)
    assert clear["shown_best"] == "nnlab"
    rmse = verdicts.best_of({"nnlab": 1.0, "ridge": 2.0}, {"ridge": (-1.0, -1.5, -0.5)}, "nnlab", True)
    assert rmse["shown_best"] == "nnlab"


def _stage3_results(relu_short, relu_long, tanh_short, tanh_long, adam_tanh_train):
    def run(short, long):
        return {"train_mse_short": short, "truth_mse_short": short, "train_mse_long": long, "truth_mse_long": long,
                "span_error_init": 0.4, "span_error_long": 0.01, "loss_first": 1.0, "bounded_span_error_long": 0.02,
                "span_weight_bound": 10.0}

    m = {"runs": {"relu": run(relu_short, relu_long), "tanh": run(tanh_short, tanh_long)},
         "adam": {"relu": {"train_mse_long": 0.0097, "truth_mse_long": 0.002, "diverged": False,
                           "output_weight_norm": 7.0},
                  "tanh": {"train_mse_long": adam_tanh_train, "truth_mse_long": 0.0003, "diverged": False,
                           "output_weight_norm": 7.0}},
         "noise_mean_square": 0.0092, "sine_variance": 0.5, "line_mse": 0.4238, "kinks_at_zero_span_error": 0.4238}

    def split(bias_sq, variance, mse_per_draw):
        return {"bias_sq": bias_sq, "variance": variance, "mean_mse": bias_sq + variance, "mse_per_draw": mse_per_draw}

    m["variance"] = {"draws": 2, "seeds": [42, 43], "epochs": {"sgd": 1500, "adam": 15000},
                     "sgd": {"relu": split(0.32, 0.001, [0.33, 0.31]), "tanh": split(0.42, 0.0001, [0.425, 0.426])},
                     "adam": {"relu": split(0.02, 0.03, [0.002, 0.1]), "tanh": split(0.0001, 0.0002, [0.0003, 0.0004])}}
    return {"3": {"config": {}, "metrics": m, "figures": {}}}


def test_stage3_context_flags_the_plateau_the_flip_and_adams_noise_fit():
    ctx = context.stage3(_stage3_results(0.35, 0.15, 0.4289, 0.4275, adam_tanh_train=0.00897))
    assert ctx["stalled"] == ["tanh"] and ctx["still_descending"] == ["ReLU"]
    assert ctx["better_long"] == "ReLU" and ctx["better_adam"] == "tanh"
    assert ctx["as_line"] == ["tanh"]
    assert ctx["below_noise"] == ["tanh with Adam"]
    calm = context.stage3(_stage3_results(0.35, 0.15, 0.40, 0.30, adam_tanh_train=0.0095))
    assert calm["stalled"] == [] and calm["below_noise"] == [] and calm["as_line"] == []


def test_upto_rounds_a_bound_up():
    assert upto(1.049e-05) == "1.1e-05" and upto(1.0e-05) == "1.0e-05" and upto(-0.0021) == "2.1e-03"
    assert upto(8.93e-16) == "9.0e-16" and upto(0) == "0"


def test_stage3_capacity_verdict_follows_the_bounded_fit_per_activation():
    res = _stage3_results(0.35, 0.15, 0.4289, 0.4275, adam_tanh_train=0.00897)
    runs = res["3"]["metrics"]["runs"]
    runs["relu"]["bounded_span_error_long"] = 0.04  # far below its run's 0.15: the output layer is short
    runs["tanh"]["bounded_span_error_long"] = 0.40  # not below its run's 0.4275: the hidden units hold it back
    cap = context.stage3(res)["capacity"]
    assert cap["relu"]["output_layer_short"] and not cap["tanh"]["output_layer_short"]
    assert cap["tanh"]["adam_far_better"] and cap["tanh"]["adam_within_bound"]
    assert cap["tanh"]["unbounded_far_better"]
    runs["tanh"]["bounded_span_error_long"] = 0.1  # now an output layer of bounded size could do far better
    assert context.stage3(res)["capacity"]["tanh"]["output_layer_short"]
    res["3"]["metrics"]["adam"]["tanh"]["truth_mse_long"] = 0.3  # Adam no longer far better than 0.4275
    assert not context.stage3(res)["capacity"]["tanh"]["adam_far_better"]


def test_paired_t_on_hand_made_fold_losses():
    """Fold gaps 0.01, 0.03, -0.01, 0.02, 0: mean 0.01, sd sqrt(2.5e-4), se 0.0070711, t 1.4142 < t_{0.975,4}."""
    winner = [0.1, 0.2, 0.3, 0.4, 0.5]
    other = [w + d for w, d in zip(winner, [0.01, 0.03, -0.01, 0.02, 0.0])]
    cmp = verdicts.paired_t(other, winner, level=0.95)
    assert math.isclose(cmp["mean"], 0.01, abs_tol=1e-15)
    assert math.isclose(cmp["se"], math.sqrt(2.5e-4 / 5), rel_tol=1e-12)
    assert math.isclose(cmp["t"], math.sqrt(2), rel_tol=1e-12)
    assert math.isclose(cmp["t_critical"], 2.776445, rel_tol=1e-6) and cmp["verdict"] == "tie"
    # the same as the interval rule: the interval holds 0 exactly when |t| <= t_critical
    assert verdicts.paired(other, winner, level=0.95)["verdict"] == "tie"
    lead = verdicts.paired_t([w + d for w, d in zip(winner, [0.05, 0.06, 0.05, 0.06, 0.05])], winner)
    assert lead["verdict"] == "above" and math.isclose(lead["t"], 0.054 / math.sqrt(3e-5 / 5), rel_tol=1e-9)
    assert verdicts.paired_t(winner, [w + 0.02 for w in winner])["verdict"] == "below"  # se 0, mean -0.02
    assert verdicts.paired_t(winner, winner)["verdict"] == "tie"
    with pytest.raises(NnlabValueError):
        verdicts.paired_t([1.0], [1.0])


def test_accuracy_interval_is_clipped_at_one_and_says_so():
    """The ablation's 99.15 % over 5 splits has a t interval reaching past 100 %: the report's end is 100 %."""
    values = [1.0, 0.9972, 0.9972, 0.9833, 0.98]
    mean, t_low, t_high = verdicts.mean_interval(values)
    assert t_high > 1
    clipped = verdicts.accuracy_interval(values)
    assert clipped["high"] == 1.0 and clipped["t_high"] == t_high and clipped["clipped"]
    assert clipped["low"] == t_low and clipped["mean"] == mean
    inside = verdicts.accuracy_interval([0.90, 0.91, 0.92])
    assert not inside["clipped"] and inside["high"] == inside["t_high"] < 1
    assert verdicts.accuracy_interval([0.0, 0.01, 0.0])["low"] == 0.0
