"""The checks can fail: plant a wrong backward, and the gradcheck and PyTorch-parity tests must catch it.

Each plant is a small, plausible slip, patched in for one test only.  The real tests are run
under the plant and must raise ``AssertionError``; the same tests pass without it (they run in
``test_conv.py`` and ``test_conv_parity.py``).
"""

import numpy as np
import pytest
import test_conv

from nnlab.conv import Conv2d, MaxPool2d

try:
    import test_conv_parity
except pytest.skip.Exception:  # torch missing: the parity half of each plant is skipped
    test_conv_parity = None

STRIDED_GRADCHECK = [case for case in test_conv.CONV_CASES if case[6] != 1]
STRIDED_PARITY = [] if test_conv_parity is None else [c for c in test_conv_parity.CASES if c[6] not in (1, (1, 1))]


@pytest.fixture
def stride_ignored_in_col2im(monkeypatch):
    """col2im adds each column back as if the stride were 1: right for stride 1, wrong otherwise."""
    right = Conv2d._col2im

    def wrong(self, dcols, dflat, g):
        stride, self.stride = self.stride, (1, 1)
        try:
            right(self, dcols, dflat, g)
        finally:
            self.stride = stride

    monkeypatch.setattr(Conv2d, "_col2im", wrong)


@pytest.fixture
def every_tied_position_gets_the_gradient(monkeypatch):
    """Max-pool backward sends each window's gradient to every position holding the maximum, not the first one."""

    def wrong(grad, views, best, targets, overlapping):
        for view, target in zip(views, targets):
            part = grad * (view == best)
            if overlapping:
                target += part
            else:
                target[...] = part

    monkeypatch.setattr(MaxPool2d, "_route", staticmethod(wrong))


def test_there_are_strided_cases_to_catch_the_stride_plant():
    assert len(STRIDED_GRADCHECK) >= 3
    assert test_conv_parity is None or len(STRIDED_PARITY) >= 3


@pytest.mark.parametrize("case", STRIDED_GRADCHECK, ids=str)
def test_gradcheck_catches_the_stride_ignored_in_col2im(case, stride_ignored_in_col2im):
    with pytest.raises(AssertionError, match="input"):
        test_conv.test_conv2d_gradcheck(case, np.random.default_rng(0))


def test_the_stride_plant_is_harmless_at_stride_one(stride_ignored_in_col2im):
    """The plant changes strided convolutions only: the check fails because of the slip, not the patching."""
    test_conv.test_conv2d_gradcheck(test_conv.CONV_CASES[1], np.random.default_rng(0))


@pytest.mark.parametrize("case", STRIDED_PARITY, ids=str)
def test_torch_parity_catches_the_stride_ignored_in_col2im(case, stride_ignored_in_col2im, float64_torch):
    with pytest.raises(AssertionError):
        test_conv_parity.test_conv2d_forward_and_gradients_match_torch(case, 1 << 20, np.random.default_rng(0))


def test_the_tie_rule_test_catches_gradient_to_every_tied_position(every_tied_position_gets_the_gradient):
    with pytest.raises(AssertionError):
        test_conv.test_maxpool_gives_a_tie_to_the_first_position_in_row_major_order()


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2)])
def test_torch_parity_catches_gradient_to_every_tied_position(kernel, stride, every_tied_position_gets_the_gradient,
                                                              float64_torch):
    with pytest.raises(AssertionError):
        test_conv_parity.test_maxpool2d_matches_torch(kernel, stride, True, np.random.default_rng(0))
