"""Every stage in quick mode: it runs, writes its figures, and the science holds."""

import json

import numpy as np
import pytest

from nnlab.stages import STAGES


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("stages")
    done = {}
    for sid in ("1", "2", "3", "4", "5"):
        module = STAGES[sid]
        folder = out / sid
        folder.mkdir()
        done[sid] = (module.run(module.Config().quick(), folder), folder)
    return done


@pytest.mark.parametrize("sid", ["1", "2", "3", "4", "5"])
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


def test_stage2_gradients_and_collapse(results):
    m = results["2"][0].metrics
    assert m["finite_difference"]["max_error"] < 1e-7
    assert m["collapse_max_abs_gap"] < 1e-12
    assert m["loss_final"] < m["loss_first"] / 10
    assert abs(m["w_collapsed"] - m["w_ols"]) < 0.1


def test_stage3_longer_training_fits_better(results):
    runs = results["3"][0].metrics["runs"]
    for r in runs.values():
        assert r["train_mse_long"] <= r["train_mse_short"] <= r["loss_first"]
    assert set(runs) == {"relu", "tanh"}


def test_stage4_ridge_match_and_hand_predictions(results):
    m = results["4"][0].metrics
    assert m["converged"]["gap_to_closed_form"] < 1e-6
    for p in m["predictions"].values():
        assert abs(p["model"] - p["by_hand"]) < 1e-3
    norms = [s["weight_norm"] for s in m["sweep"].values()]
    assert norms[2] > norms[3] > norms[4]  # lambda 0.1 > 1 > 10: shrinkage
    cf = [np.linalg.norm(s["closed_form_W"]) for s in m["sweep"].values()]
    assert all(a >= b for a, b in zip(cf, cf[1:]))


def test_stage5_accuracy_well_above_chance(results):
    m = results["5"][0].metrics
    assert m["handout"]["final_acc_on_training_data"] > 0.9
    assert m["held_out"]["test_acc"] > 0.8
    cm = np.array(m["held_out"]["confusion"])
    assert cm.sum() == m["held_out"]["split_sizes"]["test"]
    assert m["mnist"]["test_acc"] > 0.15  # 4 quick epochs on 1,000 images: above chance (0.1)


def test_accuracy_study_quick_has_every_column(tmp_path):
    module = STAGES["accuracy"]
    config = module.Config().quick()
    config = type(config)(**{**config.__dict__, "datasets": ("digits",)})
    result = module.run(config, tmp_path)
    table = result.metrics["digits"]["table"]
    assert set(table) == {"nnlab (chosen recipe)", "sklearn MLPClassifier", "sklearn LogisticRegression"}
    assert table["nnlab (chosen recipe)"]["mean"] > 0.5
    assert len(result.metrics["digits"]["selection"]) == 3
