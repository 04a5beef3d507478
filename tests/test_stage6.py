"""Stage 6: Keras, nnlab and the closed form agree; without TensorFlow, a clear exit 2."""

import builtins

import pytest

from nnlab.cli import main

tf = pytest.importorskip("tensorflow")

from nnlab.stages import stage6  # noqa: E402


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return stage6.run(stage6.Config().quick(), tmp_path_factory.mktemp("s6"))


def test_three_way_agreement_at_every_lambda(result):
    m = result.metrics
    assert m["all_agree"]
    for s in m["sweep"].values():
        assert s["max_abs_disagreement"] <= m["tolerance"] == 1e-3


def test_nnlab_twin_follows_keras_step_for_step(result):
    assert result.metrics["nnlab_twin"]["max_abs_gap_to_keras"] < 1e-3
    assert result.metrics["compiled_loop_vs_fit"] < 1e-3


def test_shrinkage_with_lambda(result):
    norms = [s["weight_norm"] for s in result.metrics["sweep"].values()]
    assert norms[1] > norms[3] > norms[4]


def test_predictions_by_model_and_by_hand_agree(result):
    for p in result.metrics["predictions"].values():
        assert abs(p["model"] - p["closed_form"]) < 0.05  # float32 model against float64 hand arithmetic


def test_agreement_check_can_fail(tmp_path):
    """Stopped far short of convergence, Keras cannot match the closed form: the check must say so."""
    config = stage6.Config(epochs=5, converge_steps=20, lams=(0.01,))
    assert not stage6.run(config, tmp_path).metrics["all_agree"]


def test_without_tensorflow_run_6_says_how_to_install(monkeypatch, tmp_path, capsys):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("No module named 'tensorflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    code = main(["run", "6", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install" in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "stage6").exists()
