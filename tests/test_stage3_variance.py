"""Stage 3's bias/variance split: the decomposition itself, the stage's draws, and the sentences they write."""

import json

import numpy as np
import pytest

from nnlab.errors import NnlabValueError
from nnlab.report import context, format, sections
from nnlab.stages import stage3
from nnlab.stages.bias_variance import bias_variance

GRID = np.linspace(-1, 1, 101)
SINE = np.sin(2 * np.pi * GRID)


def test_constant_offsets_give_the_known_bias_and_variance():
    # draws at sine + 1, + 2, + 3: the mean fit is off by 2 everywhere, the draws spread by 1 about it
    split = bias_variance(SINE + np.array([[1.0], [2.0], [3.0]]), SINE)
    assert split["bias_sq"] == pytest.approx(4.0, rel=1e-12)
    assert split["variance"] == pytest.approx(2 / 3, rel=1e-12)
    assert split["mse_per_draw"] == pytest.approx([1.0, 4.0, 9.0], rel=1e-12)


def test_offsets_that_cancel_are_all_variance_and_a_shared_offset_is_all_bias():
    wave = np.cos(3 * GRID)
    spread = bias_variance(np.stack([SINE + wave, SINE - wave]), SINE)
    assert spread["bias_sq"] == pytest.approx(0.0, abs=1e-15)
    assert spread["variance"] == pytest.approx(np.mean(wave**2), rel=1e-12)
    shared = bias_variance(np.stack([SINE + wave, SINE + wave]), SINE)
    assert shared["bias_sq"] == pytest.approx(np.mean(wave**2), rel=1e-12)
    assert shared["variance"] == pytest.approx(0.0, abs=1e-15)


def test_squared_bias_plus_variance_is_the_mean_error_of_the_draws():
    rng = np.random.default_rng(0)
    predictions = SINE + rng.normal(0.3, 0.5, size=(5, GRID.size)) * np.linspace(0.2, 2.0, GRID.size)
    split = bias_variance(predictions, SINE)
    assert split["bias_sq"] + split["variance"] == pytest.approx(split["mean_mse"], rel=1e-12)
    assert split["mean_mse"] == pytest.approx(np.mean([np.mean((p - SINE) ** 2) for p in predictions]), rel=1e-12)


@pytest.mark.parametrize("predictions, truth", [(SINE, SINE), (np.zeros((0, 101)), SINE), (np.zeros((3, 5)), SINE)])
def test_shapes_that_do_not_fit_are_refused(predictions, truth):
    with pytest.raises(NnlabValueError, match=r"bias_variance: expected predictions of shape \(K >= 1, m\)"):
        bias_variance(predictions, truth)


@pytest.mark.parametrize("draws", [1, 0, 2.0, True])
def test_the_stage_refuses_fewer_than_two_draws(tmp_path, draws):
    config = stage3.Config().quick()
    config.variance_draws = draws
    with pytest.raises(NnlabValueError, match="variance_draws must be an integer of at least 2"):
        stage3.run(config, tmp_path)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Stage 3 in quick mode, in one process."""
    return stage3.run(stage3.Config().quick(), tmp_path_factory.mktemp("stage3"), jobs=1)


def test_the_stage_splits_every_run_over_its_seeded_draws(quick):
    c, m = quick.config, quick.metrics
    v = m["variance"]
    assert v["draws"] == c["variance_draws"] == 2
    assert v["seeds"] == [c["seed"] + k for k in range(v["draws"])]
    assert v["epochs"] == {"sgd": c["epochs"], "adam": c["long_epochs"]}
    for opt in ("sgd", "adam"):
        for nonlin in c["nonlins"]:
            split = v[opt][nonlin]
            assert split["bias_sq"] + split["variance"] == pytest.approx(split["mean_mse"], rel=1e-12)
            assert len(split["mse_per_draw"]) == v["draws"]
            assert split["variance"] > 0  # the draws differ: new noise and new weights reach the fit
    # draw 1 is the stage's own run: its error is the one the stage reports
    for nonlin in c["nonlins"]:
        assert v["sgd"][nonlin]["mse_per_draw"][0] == pytest.approx(m["runs"][nonlin]["truth_mse_short"], rel=1e-12)
        assert v["adam"][nonlin]["mse_per_draw"][0] == pytest.approx(m["adam"][nonlin]["truth_mse_long"], rel=1e-12)


def test_a_draw_with_the_stage_seed_repeats_the_stages_own_recipe(quick):
    """The draws train exactly as the stage does: the stage's seed gives back its reported error, bit for bit."""
    c = stage3.Config().quick()
    grid = np.linspace(-1, 1, c.grid_points).reshape(-1, 1)
    clean = np.sin(2 * np.pi * grid).ravel()
    drawn = stage3._draw_prediction(c, "relu", "sgd", c.seed, c.epochs, grid)
    assert not drawn["diverged"]
    assert float(np.mean((drawn["grid"] - clean) ** 2)) == quick.metrics["runs"]["relu"]["truth_mse_short"]


def test_the_split_is_the_same_with_one_or_two_processes(quick, tmp_path):
    again = stage3.run(stage3.Config().quick(), tmp_path, jobs=2)
    assert json.dumps(again.to_json()["metrics"], sort_keys=True) == json.dumps(quick.to_json()["metrics"],
                                                                                sort_keys=True)


def _render(metrics_json: dict) -> str:
    return sections.render_section("stage3", context.stage3({"3": metrics_json}), "f", "3", metrics_json["figures"])


def test_the_variance_sentences_are_written_from_the_metrics(quick):
    res = json.loads(json.dumps(quick.to_json()))
    v = res["metrics"]["variance"]
    # Adam's tanh: variance three times the squared bias; its ReLU closer to the sine in every draw but the first
    v["adam"]["tanh"].update(bias_sq=0.01, variance=0.03, mean_mse=0.04, mse_per_draw=[0.001, 0.07])
    v["adam"]["relu"].update(bias_sq=0.05, variance=0.04, mean_mse=0.09, mse_per_draw=[0.1, 0.02])
    text = _render(res)
    assert "not measured here" not in text
    body = text[text.index("**Variance.**"):text.index("Whose is the bias")]
    adam = body[body.index("With Adam ("):]
    # K = 2: corrected bias = max(bias_sq - variance, 0), corrected variance = 2 * variance
    flat = " ".join(adam.split())
    assert ("tanh's error is 25.00% squared bias, 0.00% after the correction described below (variance dominates; "
            "its draws' errors against the sine, from low to high: 0.001, 0.07)") in flat
    assert ("ReLU's error is 55.56% squared bias, 11.11% after the correction described below (variance dominates; "
            "its draws' errors against the sine, from low to high: 0.02, 0.1)") in flat
    # the first draw chose tanh; the one other draw does not repeat it
    assert "tanh, the closer to the sine in draw 1, is the closer again in 0 of the 1 other draw." in flat
    assert "at least 2 times the other's" in " ".join(body.split())
    assert f"(seeds {v['seeds'][0]}, {v['seeds'][1]};" in " ".join(body.split())
    for opt in ("sgd", "adam"):
        for split in v[opt].values():
            assert f"| {format.g(split['bias_sq'])} | {format.g(split['variance'])} |" in body
    handout = " ".join(body[body.index("With the handout's step ("):body.index("With Adam (")].split())
    for name, split in zip(("ReLU", "tanh"), (v["sgd"]["relu"], v["sgd"]["tanh"])):
        share = format.pct(split["bias_sq"] / split["mean_mse"])
        assert f"{name}'s error is {share} squared bias" in handout


def test_dominance_is_judged_on_the_split_corrected_for_the_number_of_draws():
    """Squared bias 0.2 and variance 0.1 from K = 5 draws is two to one raw, but corrected (0.2 - 0.1/4 = 0.175
    against 0.1 * 5/4 = 0.125) neither part is twice the other; 0.3 against 0.1 is (0.275 against 0.125)."""
    def part(bias_sq, variance, errors):
        return {"bias_sq": bias_sq, "variance": variance, "mean_mse": bias_sq + variance, "mse_per_draw": errors}

    v = {"draws": 5, "epochs": {"sgd": 10, "adam": 20},
         "sgd": {"relu": part(0.2, 0.1, [1, 1, 3, 1, 3]), "tanh": part(0.3, 0.1, [2, 2, 2, 2, 2])},
         "adam": {"relu": part(0.01, 0.1, [1, 1, 1, 1, 1]), "tanh": part(0.1, 0.01, [2, 2, 2, 2, 2])}}
    split = context._variance_split({"variance": v}, {"relu": "ReLU", "tanh": "tanh"})
    sgd, adam = split["sgd"], split["adam"]
    assert sgd["dominant"] == {"relu": "neither part dominates", "tanh": "bias dominates"}
    assert sgd["corrected_share"]["relu"] == pytest.approx(0.175 / 0.3)
    assert sgd["bias_share"]["relu"] == pytest.approx(2 / 3)
    assert adam["dominant"] == {"relu": "variance dominates", "tanh": "bias dominates"}
    assert adam["corrected_share"]["relu"] == 0.0  # 0.01 - 0.1/4 < 0: no bias left to claim
    # ReLU is closer in the first draw and again in draws 2 and 4 (ties are not "closer")
    assert (sgd["closer"], sgd["holds"]) == ("ReLU", 2)
    assert [row[-1] for row in sgd["rows"]] == [3, 2]  # the table counts every draw, the first included
