"""``nnlab run cnn`` in quick mode: the protocol's bookkeeping, the measurements, reproducibility, the report."""

import json

import numpy as np
import pytest

import nnlab
from nnlab.cli import main
from nnlab.data.augment import shift_images
from nnlab.selection import inner_split, outer_split
from nnlab.stages import cnn


@pytest.fixture(scope="module")
def stage(quick_runs):
    runs, out = quick_runs
    return runs["cnn"].result, out / "stagecnn"


def test_every_split_keeps_its_test_rows_out_of_the_choice(stage):
    result, _ = stage
    config = cnn.Config(**result.config)
    for name, m in result.metrics.items():
        X, y = cnn._data(name, config)
        assert m["n_images"] == len(y)
        for family in ("cnn_splits", "mlp_splits"):
            for split in m[family]:
                train, test = outer_split(y, split["seed"])
                fit, val = inner_split(y, train, split["seed"])
                assert (split["train_rows"], split["test_rows"]) == (len(train), len(test))
                assert (split["fit_rows"], split["validation_rows"]) == (len(fit), len(val))
                assert not set(fit) & set(test) and not set(val) & set(test)
                assert len(split["selection"]) == len(m["cnn_candidates" if family == "cnn_splits" else
                                                        "mlp_candidates"])


def test_the_table_holds_every_model_and_measurement(stage):
    result, folder = stage
    for name, m in result.metrics.items():
        assert set(m["table"]) == {cnn.CNN_KEY, cnn.MLP_KEY}
        assert [c["chosen"] for c in m["cnn_candidates"]] == [sum(s["chosen"] == i for s in m["cnn_splits"])
                                                             for i in range(len(m["cnn_candidates"]))]
        assert (m["size"]["first"], m["size"]["second"]) == (0, 1)  # differ in channels alone
        assert (m["augmentation"]["first"], m["augmentation"]["second"]) == (1, 2)  # differ in the shift alone
        for row in m["table"].values():
            assert 0.2 < row["accuracy"]["mean"] <= 1.0  # quick mode: far above chance (0.1), not yet trained
            assert set(row["shifted"]) == {str(k) for k in cnn.SHIFTS[name]}
            assert all(p > 0 for p in row["parameters"]) and all(c > 0 for c in row["multiply_adds"])
        cm = np.array(m["confusion"])
        tests = [s["test_rows"] for s in m["cnn_splits"]]
        assert cm.sum() == sum(tests)
        accs = m["table"][cnn.CNN_KEY]["accuracy"]["values"]
        assert np.trace(cm) == round(sum(a * t for a, t in zip(accs, tests)))
        weights = np.array(m["first_layer"])
        spec = cnn.CNNSpec(**{**m["cnn_candidate_specs"][m["cnn_splits"][0]["chosen"]],
                              "channels": tuple(m["cnn_candidate_specs"][m["cnn_splits"][0]["chosen"]]["channels"])})
        assert weights.shape == (spec.channels[0], 1, spec.kernel_size, spec.kernel_size)
        for key in ("filters", "confusion", "shifted"):
            assert (folder / result.figures[f"{name}_{key}"]).read_bytes()[:4] == b"\x89PNG"


def test_parameter_counts_are_the_models(stage):
    result, _ = stage
    m = result.metrics["mnist"]
    spec = m["cnn_candidate_specs"][m["cnn_splits"][0]["chosen"]]
    net = nnlab.make_cnn(28, tuple(spec["channels"]), spec["kernel_size"])
    assert m["table"][cnn.CNN_KEY]["parameters"][0] == sum(p.value.size for p in net.parameters())


def test_training_multiply_adds_count_every_product():
    """A 2-4 CNN on 8x8 images and a 64-5-10 MLP, counted by hand."""
    spec = cnn.CNNSpec(channels=(2, 4), kernel_size=3, epochs=3)
    conv1, conv2, linear = 8 * 8 * 2 * 9, 4 * 4 * 4 * 2 * 9, 4 * 2 * 2 * 10
    per_image = 2 * (conv1 + conv2 + linear) + (conv2 + linear)
    assert cnn.training_multiply_adds(spec, 8, 10) == per_image * 10 * 3
    mlp = nnlab.classify.ClassifierSpec(hidden=(5,), epochs=2)
    assert cnn.training_multiply_adds(mlp, 8, 7) == (2 * (64 * 5 + 5 * 10) + 5 * 10) * 7 * 2


def test_shift_images_moves_every_pixel_and_fills_zeros():
    X = np.arange(1, 17, dtype=float).reshape(1, 16)
    down_right = shift_images(X, 4, 1, 2).reshape(4, 4)
    np.testing.assert_array_equal(down_right[1:, 2:], X.reshape(4, 4)[:3, :2])
    assert np.all(down_right[0] == 0) and np.all(down_right[:, :2] == 0)
    back = shift_images(shift_images(X, 4, -1, 0), 4, 1, 0).reshape(4, 4)
    np.testing.assert_array_equal(back[1:], X.reshape(4, 4)[1:])
    assert shift_images(X.reshape(1, 1, 4, 4), 4, 0, 1).shape == (1, 1, 4, 4)


def test_two_runs_give_byte_identical_metrics(quick_runs, tmp_path, capsys):
    """The command (its default workers) repeats the shared quick run (one process) byte for byte."""
    _, earlier = quick_runs
    assert main(["run", "cnn", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert (tmp_path / "stagecnn" / "metrics.json").read_bytes() == (earlier / "stagecnn" / "metrics.json").read_bytes()
    text = json.loads((tmp_path / "stagecnn" / "metrics.json").read_text())
    assert "seconds" not in json.dumps(text)  # no wall times: they would differ between runs


def test_the_report_section_renders_every_number(stage, quick_runs):
    from nnlab.report import context, sections

    _, out = quick_runs
    results = {"cnn": json.loads((out / "stagecnn" / "metrics.json").read_text())}
    text = sections.render_section("cnn", context.cnn(results), "docs/figures", "cnn", results["cnn"]["figures"])
    assert "None" not in text and "nan" not in text and "{{" not in text
    m = results["cnn"]["metrics"]["mnist"]
    assert ("misses the goal" in text) == (not m["meets_target"])
    assert f"{100 * m['table'][cnn.CNN_KEY]['accuracy']['mean']:.2f}%" in text


def _render_cnn(results):
    from nnlab.report import context, sections

    return " ".join(sections.render_section("cnn", context.cnn(results), "docs/figures", "cnn",
                                            results["cnn"]["figures"]).split())


def test_cnn_against_mlp_is_a_tie_inside_the_noise_and_above_outside_it(quick_runs):
    """The verdict is the paired interval's: noisy differences around 0 give the tie wording."""
    _, out = quick_runs
    results = {"cnn": json.loads((out / "stagecnn" / "metrics.json").read_text())}
    for s in results["cnn"]["metrics"].values():
        cnn_values = s["table"][cnn.CNN_KEY]["accuracy"]["values"]
        s["table"][cnn.MLP_KEY]["accuracy"]["values"] = [v + (0.01 if i % 2 else -0.01)
                                                         for i, v in enumerate(cnn_values)]
    text = _render_cnn(results)
    assert "the two cannot be told apart on these splits" in text and "is above the MLP" not in text
    for s in results["cnn"]["metrics"].values():
        s["table"][cnn.MLP_KEY]["accuracy"]["values"] = [v - 0.05 - 0.001 * i for i, v in
                                                         enumerate(s["table"][cnn.CNN_KEY]["accuracy"]["values"])]
    text = _render_cnn(results)
    assert "the CNN is above the MLP on these splits" in text and "cannot be told apart on these splits" not in text
    assert "A stronger MLP recipe may exist in the Ablation section" in text  # no ablation results given


def test_a_candidate_difference_inside_the_noise_is_not_called_lower():
    from nnlab.report import context

    noisy = {"first": 0, "second": 1, "shift": "2",
             "accuracy": {"values": [-0.02, 0.01, -0.03, 0.02, -0.01]},
             "shifted": {"values": [0.20, 0.25, 0.22, 0.24, 0.21]}}
    effect = context._effect(noisy, [{"parameters": 1}, {"parameters": 2}])
    assert effect["acc"]["verdict"] == "tie" and effect["shift_p"]["verdict"] == "above"
    noisy["accuracy"]["values"] = [-0.02, -0.021, -0.019, -0.022, -0.02]
    assert context._effect(noisy, [{}, {}])["acc"]["verdict"] == "below"


def test_every_most_frequent_confusion_is_listed():
    from nnlab.report import context

    cm = np.diag([50, 50, 50])
    cm[0, 2], cm[1, 2], cm[2, 0] = 8, 8, 3
    assert context.most_confused(cm) == {"cells": [(0, 2), (1, 2)], "count": 8}
    cm[1, 2] = 7
    assert context.most_confused(cm) == {"cells": [(0, 2)], "count": 8}


def test_the_unaugmented_comparison_names_the_recipes_not_the_convolution(quick_runs):
    """Both without augmentation, the CNN candidate and the MLP candidate still differ in pooling and recipe."""
    from nnlab.report import context, sections

    _, out = quick_runs
    results = {"cnn": json.loads((out / "stagecnn" / "metrics.json").read_text())}

    def render(verdict):
        ctx = context.cnn(results)
        for st in ctx["studies"].values():
            st["both_unaugmented"] = {"cnn": 3, "mlp": 1, "mean": -0.09, "low": -0.13, "high": -0.05,
                                      "verdict": verdict}
        return " ".join(sections.render_section("cnn", ctx, "docs/figures", "cnn", results["cnn"]["figures"]).split())

    below = render("below")
    assert ("Both without augmentation, the CNN candidate 3 minus the MLP candidate 1, drop on validation images "
            "moved by") in below
    assert ("so the unaugmented CNN (convolutions and max pooling, under its own training recipe) loses less to the "
            "shift than the unaugmented MLP; this does not separate the convolution from the pooling or the "
            "recipes.") in below
    assert "convolution itself" not in below and "Like for like" not in below
    assert "loses more to the shift than the unaugmented MLP" in render("above")
    tie = render("tie")
    assert "the two cannot be told apart." in tie and "does not separate" not in tie


def test_the_cnn_mean_sentence_has_a_verb_with_and_without_a_target(quick_runs):
    _, out = quick_runs
    results = {"cnn": json.loads((out / "stagecnn" / "metrics.json").read_text())}
    names = list(results["cnn"]["metrics"])
    with_target = [n for n in names if results["cnn"]["metrics"][n]["target"] is not None]
    assert with_target  # mnist has the study's goal
    for name in names:
        results["cnn"]["metrics"][name]["target"] = None
    text = _render_cnn(results)
    assert text.count("The CNN's mean is ") == len(names) and "The CNN's mean, " not in text
    fresh = _render_cnn({"cnn": json.loads((out / "stagecnn" / "metrics.json").read_text())})
    assert fresh.count("The CNN's mean, ") == len(with_target)
    assert fresh.count("The CNN's mean is ") == len(names) - len(with_target)
