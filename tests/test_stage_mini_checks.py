"""The handout's mini-checks as the stages measure them for the report (Stages 3, 4 and 5)."""

import numpy as np
import pytest

from nnlab import losses
from nnlab.stages import stage3, stage4, stage5


def test_relu_mini_check_matches_the_handout_and_catches_the_text_s_mask(monkeypatch):
    check = stage3.relu_mini_check()
    assert check["max_abs_error"] == 0
    np.testing.assert_array_equal(check["relu_backward"], check["expected_backward"])
    # the handout's text says "not less than 0": that mask passes the gradient at z = 0, which the check sees
    monkeypatch.setattr(stage3, "relu_backward", lambda x, dout: dout * (x >= 0))
    assert stage3.relu_mini_check()["max_abs_error"] == 10


def test_l2_mini_check_gives_two_lambda_w_and_catches_a_missing_factor_two(monkeypatch):
    check = stage4.l2_gradient_mini_check(0.01)
    assert check["max_abs_expected"] > 1e-3
    assert check["max_abs_error"] <= 1e-15

    def half_penalty(self, params):  # the classic slip: lam W, the gradient of lam ||W||^2 / 2
        for p in params:
            if p.decay:
                p.grad += self.lam * p.value
    monkeypatch.setattr(losses.L2Penalty, "backward", half_penalty)
    broken = stage4.l2_gradient_mini_check(0.01)
    assert broken["max_abs_error"] == pytest.approx(broken["max_abs_expected"] / 2)


def test_l2_mini_check_leaves_numpys_global_generator_as_it_was():
    np.random.seed(0)
    expected = np.random.rand()
    np.random.seed(0)
    stage4.l2_gradient_mini_check(0.01)
    assert np.random.rand() == expected


def test_cross_entropy_mini_check_is_zero_and_catches_a_clip_added_everywhere(monkeypatch):
    assert stage5.cross_entropy_mini_check()["loss"] == 0.0
    def shifted(probs, y):  # a guard against log(0) added to every probability, in float64
        return float(-np.mean(np.sum(y * np.log(probs.astype(np.float64) + 1e-9), axis=1)))
    monkeypatch.setattr(stage5, "cross_entropy", shifted)
    assert stage5.cross_entropy_mini_check()["loss"] != 0.0  # -log(1 + 1e-9): the check sees it
