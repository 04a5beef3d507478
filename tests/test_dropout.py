"""Dropout: inverted scaling, seeded masks, identity in evaluation mode, gradients with a fixed mask."""

import numpy as np
import pytest

import nnlab
from nnlab import Dropout


class FixedDraws:
    """A stand-in generator whose ``random`` returns the same uniform numbers every call: a fixed mask."""

    def __init__(self, u):
        self.u = np.asarray(u, dtype=np.float64)

    def random(self, size, dtype=np.float64):
        assert tuple(size) == self.u.shape
        return self.u.astype(dtype)


def test_training_forward_is_x_times_mask_over_keep_probability(rng):
    x = rng.normal(size=(50, 40))
    drop = Dropout(0.3, rng=np.random.default_rng(7))
    out = drop.forward(x)
    u = np.random.default_rng(7).random(x.shape)
    np.testing.assert_allclose(out, np.where(u >= 0.3, x / 0.7, 0.0), rtol=1e-15)
    np.testing.assert_array_equal(drop.mask, np.where(u >= 0.3, 1 / 0.7, 0.0))
    assert 0.25 < np.mean(out == 0) < 0.35  # about p of the values are dropped


def test_expected_output_equals_the_input():
    x = np.full((1, 200_000), 3.0)
    out = Dropout(0.4, rng=np.random.default_rng(0)).forward(x)
    assert abs(out.mean() - 3.0) < 0.02  # standard error 3 * sqrt(0.4 / 0.6 / 2e5) ~ 0.0055


def test_same_seed_same_masks_and_fresh_mask_every_call(rng):
    x = rng.normal(size=(8, 8))
    a, b = Dropout(0.5, rng=np.random.default_rng(3)), Dropout(0.5, rng=np.random.default_rng(3))
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))


def test_global_seed_makes_an_unseeded_dropout_repeatable(rng):
    x = rng.normal(size=(6, 6))
    np.random.seed(5)
    first = Dropout(0.5).forward(x)
    np.random.seed(5)
    np.testing.assert_array_equal(Dropout(0.5).forward(x), first)


def test_evaluation_mode_is_the_identity_and_draws_nothing(rng):
    x = rng.normal(size=(5, 4))
    gen = np.random.default_rng(1)
    drop = Dropout(0.5, rng=gen).eval()
    state = gen.bit_generator.state
    out = drop.forward(x)
    np.testing.assert_array_equal(out, x)
    assert out is not x
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), np.ones_like(x))
    assert gen.bit_generator.state == state


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_the_edges_p_0_and_p_1(p, rng):
    x = rng.normal(size=(3, 4))
    out = Dropout(p, rng=rng).forward(x)
    np.testing.assert_array_equal(out, x if p == 0 else np.zeros_like(x))


def test_gradcheck_with_a_fixed_mask(rng):
    x = rng.normal(size=(6, 5))
    drop = Dropout(0.4, rng=FixedDraws(rng.random(x.shape)))
    assert nnlab.gradcheck(drop, x).passed
    net = nnlab.Sequential(nnlab.Linear(5, 7, rng=rng), nnlab.Tanh(), Dropout(0.5, rng=FixedDraws(rng.random((6, 7)))),
                           nnlab.Linear(7, 3, rng=rng))
    assert nnlab.gradcheck(net, x).passed


def test_backward_is_dout_times_the_mask(rng):
    x, dout = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    drop = Dropout(0.25, rng=rng)
    drop.forward(x)
    np.testing.assert_array_equal(drop.backward(dout), dout * drop.mask)


@pytest.mark.parametrize("training", [True, False])
def test_face_and_core_agree_in_and_out_of_place(training, rng):
    x, dout = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    u = rng.random(x.shape)
    public = Dropout(0.5, rng=FixedDraws(u)).train(training)
    core = Dropout(0.5, rng=FixedDraws(u)).train(training)
    kept = x.copy()
    out, dx = public.forward(x), public.backward(dout)
    np.testing.assert_array_equal(x, kept)
    x_core, d_core = x.copy(), dout.copy()
    out_core, dx_core = core._forward(x_core, inplace=True), core._backward(d_core, inplace=True)
    np.testing.assert_array_equal(out_core, out)
    np.testing.assert_array_equal(dx_core, dx)
    assert out_core is x_core and dx_core is d_core
    fresh = x.copy()
    assert core._forward(fresh, inplace=False) is not fresh
    np.testing.assert_array_equal(fresh, x)


def test_float32_mask_and_output_stay_float32(rng):
    drop = Dropout(0.5, rng=rng)
    out = drop.forward(np.ones((3, 3), np.float32))
    assert out.dtype == drop.mask.dtype == np.float32


def test_backward_follows_the_forwards_mode(rng):
    """Switching modes between forward and backward must not mix a training forward with an identity backward."""
    x = rng.normal(size=(4, 4))
    drop = Dropout(0.5, rng=rng)
    drop.forward(x)
    mask = drop.mask.copy()
    drop.eval()
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), mask)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="p must be a probability"):
        Dropout(True)
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout().backward(np.ones(2))
    drop = Dropout()
    drop.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        drop.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        Dropout(0.5, rng=np.random.default_rng(0)).forward(np.array([[np.inf, 1.0]]))


class _FixedDraws:
    """A stand-in generator whose 'uniform draws' are given values."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def random(self, size, dtype=np.float64):
        return self.values.astype(dtype).reshape(size)


def test_a_draw_equal_to_p_keeps_its_value():
    drop = Dropout(0.25, rng=_FixedDraws([0.25, 0.2499, 0.9]))
    np.testing.assert_array_equal(drop.forward(np.ones(3)), [4 / 3, 0.0, 4 / 3])


def test_the_masks_are_drawn_in_the_inputs_dtype_from_the_given_generator():
    x = np.ones((4, 5), dtype=np.float32)
    out = Dropout(0.5, rng=np.random.default_rng(3)).forward(x)
    expected = (np.random.default_rng(3).random((4, 5), dtype=np.float32) >= 0.5) * np.float32(2.0)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


def test_the_global_state_draws_one_value_per_entry():
    np.random.seed(0)
    out = Dropout(0.5).forward(np.ones(50))
    np.random.seed(0)
    np.testing.assert_array_equal(out, (np.random.random_sample(50) >= 0.5) * 2.0)
    assert 0 < np.count_nonzero(out) < 50


def test_no_mask_before_the_first_forward_and_a_fresh_array_from_an_evaluation_backward():
    drop = Dropout(0.5)
    assert drop.mask is None
    drop.eval().forward(np.ones(3))
    dout = np.array([1.0, 2.0, 3.0])
    dx = drop.backward(dout)
    dx[0] = 9.0
    np.testing.assert_array_equal(dout, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(("dout", "message"), [
    (np.array(["a", "b"]), "Dropout(p=0.5): dout must hold real numbers, got dtype <U1"),
    (np.array([np.nan, 1.0]), "Dropout(p=0.5): dout holds 1 non-finite value(s) (NaN or inf)"),
])
def test_dropout_backward_refusals_word_for_word(dout, message):
    drop = Dropout(0.5, rng=np.random.default_rng(0))
    drop.forward(np.ones(2))
    with pytest.raises(nnlab.NnlabError) as caught:
        drop.backward(dout)
    assert str(caught.value) == message
