"""BatchNorm1d: the formulas, the full backward (gradcheck in both modes), running statistics, both faces."""

import copy

import numpy as np
import pytest

import nnlab
from nnlab import BatchNorm1d
from nnlab._checks import NonFiniteError


def _bn(rng, c=4, **kwargs):
    bn = BatchNorm1d(c, **kwargs)
    bn.gamma[:] = rng.normal(size=c)  # not the (1, 0) start, so that a wrong use of either shows
    bn.beta[:] = rng.normal(size=c)
    return bn


def test_training_forward_normalises_with_the_batchs_biased_variance(rng):
    x = rng.normal(loc=3, scale=2, size=(10, 4))
    bn = _bn(rng)
    out = bn.forward(x)
    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(out, bn.gamma * xhat + bn.beta, rtol=1e-13)
    np.testing.assert_allclose(bn.xhat.mean(0), 0, atol=1e-14)


def test_running_statistics_follow_pytorchs_update(rng):
    bn = BatchNorm1d(3, momentum=0.2)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.normal(loc=5, scale=3, size=(7, 3))
        bn.forward(x)
        mean = 0.8 * mean + 0.2 * x.mean(0)
        var = 0.8 * var + 0.2 * x.var(0, ddof=1)  # unbiased in the running estimate
        np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-14)
        np.testing.assert_allclose(bn.running_var, var, rtol=1e-14)


def test_evaluation_mode_uses_the_running_statistics_and_leaves_them(rng):
    bn = _bn(rng)
    for _ in range(3):
        bn.forward(rng.normal(size=(8, 4)))
    bn.eval()
    stats = bn.running_mean.copy(), bn.running_var.copy()
    x = rng.normal(size=(5, 4))
    out = bn.forward(x)
    np.testing.assert_allclose(out, bn.gamma * (x - stats[0]) / np.sqrt(stats[1] + 1e-5) + bn.beta, rtol=1e-13)
    np.testing.assert_array_equal(bn.running_mean, stats[0])
    np.testing.assert_array_equal(bn.running_var, stats[1])
    # one row at a time gives the same rows: evaluation does not couple a batch's rows
    np.testing.assert_allclose(np.vstack([bn.forward(x[i : i + 1]) for i in range(5)]), out, rtol=1e-15)


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_passes_in_both_modes(training, rng):
    bn = _bn(rng).train(training)
    if not training:
        bn.running_mean[:] = rng.normal(size=4)
        bn.running_var[:] = rng.uniform(0.5, 2, size=4)
    result = nnlab.gradcheck(bn, rng.normal(size=(6, 4)))
    assert result.passed, str(result)


def test_gradcheck_inside_a_network_in_training_mode(rng):
    net = nnlab.make_mlp([3, 6, 5, 2], nonlin="tanh", norm="batch", rng=rng)
    assert isinstance(net[1], BatchNorm1d) and isinstance(net[4], BatchNorm1d)
    result = nnlab.gradcheck(net, rng.normal(size=(9, 3)))
    # A bias just before batch normalisation has gradient exactly 0 (the batch mean removes it), so its
    # relative error compares rounding with rounding; those two are checked to be 0 instead.
    biases_into_bn = {"l1.b", "l2.b"}
    assert max(v for k, v in result.errors.items() if k not in biases_into_bn) < 1e-6, str(result)
    for layer in (net[0], net[3]):
        np.testing.assert_allclose(layer.db, 0.0, atol=1e-14)


class SimplifiedBatchNorm(BatchNorm1d):
    """The common mistake: dx = dout * gamma / std, as if the batch statistics were constants."""

    def _backward(self, dout, inplace=False, need_dx=True):
        super()._backward(dout.copy(), inplace=False, need_dx=False)  # dgamma, dbeta are right
        return dout * self.gamma * self._inv_std


def test_gradcheck_catches_the_simplified_backward_in_training_mode(rng):
    """The check can fail: the simplified gradient ignores how each row moves the batch mean and variance."""
    x = rng.normal(size=(6, 4))
    wrong = nnlab.gradcheck(SimplifiedBatchNorm(4), x)
    assert not wrong.passed and wrong.errors["input"] > 0.1
    assert max(wrong.errors["SimplifiedBatchNorm.gamma"], wrong.errors["SimplifiedBatchNorm.beta"]) < 1e-6  # only dx
    # ... while in evaluation mode the statistics are constants and the simplified form is exact
    assert nnlab.gradcheck(SimplifiedBatchNorm(4).eval(), x).passed


def test_backward_writes_into_the_same_buffers(rng):
    bn = _bn(rng)
    dgamma, dbeta = bn.dgamma, bn.dbeta
    x, dout = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    bn.forward(x)
    bn.backward(dout)
    first = dgamma.copy(), dbeta.copy()
    bn.forward(x)
    bn.backward(dout)  # assigned, not accumulated
    assert bn.dgamma is dgamma and bn.dbeta is dbeta
    np.testing.assert_array_equal(bn.dgamma, first[0])
    np.testing.assert_array_equal(bn.dbeta, first[1])
    np.testing.assert_allclose(dbeta, dout.sum(0), rtol=1e-14)
    np.testing.assert_allclose(dgamma, (dout * bn.xhat).sum(0), rtol=1e-13)


@pytest.mark.parametrize("training", [True, False])
def test_face_and_core_agree_in_and_out_of_place(training, rng):
    x, dout = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    public, core = _bn(np.random.default_rng(1)).train(training), _bn(np.random.default_rng(1)).train(training)
    kept_x, kept_dout = x.copy(), dout.copy()
    out, dx = public.forward(x), public.backward(dout)
    np.testing.assert_array_equal(x, kept_x)
    np.testing.assert_array_equal(dout, kept_dout)
    x_core, d_core = x.copy(), dout.copy()
    out_core = core._forward(x_core, inplace=True)
    dx_core = core._backward(d_core, inplace=True)
    np.testing.assert_allclose(out_core, out, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(dx_core, dx, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(core.dgamma, public.dgamma)
    np.testing.assert_array_equal(core.running_var, public.running_var)
    assert core._backward(dout.copy(), inplace=True, need_dx=False) is None
    fresh = x.copy()
    assert core._forward(fresh, inplace=False) is not fresh
    np.testing.assert_array_equal(fresh, x)


def test_output_may_be_overwritten_after_forward(rng):
    """keeps_output is False: the next module may write over the output; backward must not read it."""
    bn = _bn(rng)
    x, dout = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    bn._forward(x.copy())
    expected = bn._backward(dout.copy())
    out = bn._forward(x.copy())
    out[...] = np.nan
    np.testing.assert_array_equal(bn._backward(dout.copy()), expected)


def test_float32_input_through_float64_layer_stays_float32(rng):
    bn = BatchNorm1d(3)
    out = bn.forward(rng.normal(size=(4, 3)).astype(np.float32))
    assert out.dtype == np.float32 and bn.running_mean.dtype == np.float64
    assert bn.backward(np.ones((4, 3), np.float32)).dtype == np.float32
    assert BatchNorm1d(3).astype(np.float32).running_var.dtype == np.float32


def test_one_row_in_training_mode_is_refused_in_both_faces(rng):
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one row per batch.*got 1"):
        bn.forward(np.ones((1, 3)))
    with pytest.raises(ValueError, match="more than one row"):
        bn._forward(np.ones((1, 3)))
    np.testing.assert_array_equal(bn.running_var, 1.0)  # nothing was updated
    assert bn.eval().forward(np.ones((1, 3))).shape == (1, 3)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="num_features must be a positive integer, got 0"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\], got 1.5"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        BatchNorm1d(3, eps=0)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 3\), got shape \(2, 4\)"):
        BatchNorm1d(3).forward(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm1d(3).backward(np.ones((2, 3)))


def test_gamma_and_beta_are_never_decayed(rng):
    """The handout's rule, weights only: SGD's and AdamW's weight decay and L2Penalty skip gamma and beta."""
    bn = _bn(rng)
    gamma, beta = bn.gamma.copy(), bn.beta.copy()
    bn.dgamma[:] = 0.0
    bn.dbeta[:] = 0.0
    assert nnlab.L2Penalty(0.5)(bn.parameters()) == 0.0
    nnlab.L2Penalty(0.5).backward(bn.parameters())
    for opt in (nnlab.SGD(bn.parameters(), lr=0.1, weight_decay=0.5),
                nnlab.AdamW(bn.parameters(), lr=0.1, weight_decay=0.5)):
        opt.step()
    np.testing.assert_array_equal(bn.gamma, gamma)
    np.testing.assert_array_equal(bn.beta, beta)


def test_reset_running_stats(rng):
    bn = BatchNorm1d(2)
    bn.forward(rng.normal(size=(5, 2)))
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)


def _bn_ran():
    bn = BatchNorm1d(2)
    bn.forward(np.array([[1.0, 2.0], [3.0, 5.0]]))
    return bn


_SPEC = {"num_features": 2, "eps": 1e-5, "momentum": 0.1}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: BatchNorm1d(0), "BatchNorm1d: num_features must be a positive integer, got 0"),
    (lambda: BatchNorm1d(2, eps=0.0), "BatchNorm1d: eps must be a finite number > 0, got 0.0"),
    (lambda: BatchNorm1d(2, eps=float("inf")), "BatchNorm1d: eps must be a finite number > 0, got inf"),
    (lambda: BatchNorm1d(2, eps=True), "BatchNorm1d: eps must be a finite number > 0, got True"),
    (lambda: BatchNorm1d(2, momentum=1.5), "BatchNorm1d: momentum must be a number in [0, 1], got 1.5"),
    (lambda: BatchNorm1d(2, momentum=-0.1), "BatchNorm1d: momentum must be a number in [0, 1], got -0.1"),
    (lambda: BatchNorm1d(2, momentum="x"), "BatchNorm1d: momentum must be a number in [0, 1], got 'x'"),
    (lambda: BatchNorm1d(2, dtype=np.int64), "BatchNorm1d: dtype must be a float type, got int64"),
    (lambda: BatchNorm1d(2).forward(np.array([["a", "b"]])),
     "BatchNorm1d(2): input must hold real numbers, got dtype <U1"),
    (lambda: BatchNorm1d(2).forward(np.ones((2, 3))),
     "BatchNorm1d(2): expected input of shape (batch, 2), got shape (2, 3)"),
    (lambda: BatchNorm1d(2).forward(np.ones((1, 2))),
     "BatchNorm1d(2): training mode needs more than one row per batch to estimate a variance, got 1"),
    (lambda: _bn_ran().backward(np.array([["a", "b"], ["c", "d"]])),
     "BatchNorm1d(2): dout must hold real numbers, got dtype <U1"),
    (lambda: _bn_ran().backward(np.array([[np.nan, 1.0], [1.0, 1.0]])),
     "BatchNorm1d(2): dout holds 1 non-finite value(s) (NaN or inf)"),
    (lambda: _bn_ran().backward(np.ones((3, 2))),
     "BatchNorm1d(2): backward expected dout of shape (2, 2), got (3, 2)"),
    (lambda: BatchNorm1d.state_spec({**_SPEC, "num_features": 0}),
     "BatchNorm1d: num_features must be a positive integer, got 0"),
    (lambda: BatchNorm1d.state_spec({**_SPEC, "eps": -1}), "BatchNorm1d: eps must be a finite number > 0, got -1"),
    (lambda: BatchNorm1d.state_spec({**_SPEC, "momentum": 2}),
     "BatchNorm1d: momentum must be a number in [0, 1], got 2"),
])
def test_batch_norm_refusals_word_for_word(call, message):
    with pytest.raises(nnlab.NnlabError) as caught:
        call()
    assert str(caught.value) == message


def test_batch_norm_accepts_the_ends_of_its_ranges():
    assert (BatchNorm1d(2, momentum=0).momentum, BatchNorm1d(2, momentum=1).momentum) == (0.0, 1.0)
    assert BatchNorm1d(2, eps=1e300).eps == 1e300
    assert BatchNorm1d.state_spec(_SPEC) == {"gamma": (2,), "beta": (2,), "running_mean": (2,), "running_var": (2,)}


@pytest.mark.parametrize("layer_dtype", [np.float32, np.float64])
def test_a_float32_batch_stays_float32_in_both_modes(layer_dtype):
    bn = BatchNorm1d(3).astype(layer_dtype)
    held = (bn.gamma, bn.beta, bn.dgamma, bn.dbeta, bn.running_mean, bn.running_var)
    assert all(a.dtype == layer_dtype for a in held)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    for training in (True, False):
        bn.train(training)
        out = bn.forward(x)
        dx = bn.backward(np.ones((5, 3), dtype=np.float32))
        assert out.dtype == dx.dtype == np.float32, training


def test_batch_norm_built_in_float32_holds_float32_arrays():
    bn = BatchNorm1d(3, dtype=np.float32)
    held = (bn.gamma, bn.beta, bn.dgamma, bn.dbeta, bn.running_mean, bn.running_var)
    assert all(a.dtype == np.float32 for a in held)


@pytest.mark.parametrize("training", [True, False])
def test_float32_input_through_float64_layer_matches_the_float32_layer_bit_for_bit(training, rng):
    """The float64 parameters are rounded to float32 first: the arithmetic is the float32 layer's, to the bit."""
    bn = BatchNorm1d(4)
    for array in (bn.gamma, bn.beta, bn.running_mean):
        array[...] = rng.normal(size=4)
    bn.running_var[...] = rng.uniform(0.5, 2.0, size=4)
    bn32 = copy.deepcopy(bn).astype(np.float32)
    bn.train(training)
    bn32.train(training)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_array_equal(bn.forward(x), bn32.forward(x))


def test_float32_backward_makes_no_float64_copy_of_dout(rng):
    """Summing dout over the rows in float32 needs no float64 copy (one would take twice dout's bytes)."""
    import tracemalloc

    bn = BatchNorm1d(50).astype(np.float32)
    bn.forward(rng.normal(size=(2000, 50)).astype(np.float32))
    dout = rng.normal(size=(2000, 50)).astype(np.float32)
    tracemalloc.start()
    try:
        bn._backward(dout, True, False)  # as fit calls the first module: in place, no dx
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * dout.nbytes
    assert bn.dbeta.dtype == np.float32


@pytest.mark.parametrize("name", ["dgamma", "dbeta"])
def test_backward_replaces_an_unusable_gradient_buffer(name, rng):
    """A float32 (or list) buffer of a float64 layer would be written silently in float32 (or fail in NumPy)."""
    bn, twin = nnlab.BatchNorm1d(3), nnlab.BatchNorm1d(3)
    x, dout = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    for spoil in (lambda g: g.astype(np.float32), lambda g: g.tolist()):
        setattr(bn, name, spoil(getattr(twin, name)))
        for layer in (bn, twin):
            layer.forward(x)
            layer.backward(dout)
        assert type(getattr(bn, name)) is np.ndarray and getattr(bn, name).dtype == np.float64
        np.testing.assert_array_equal(getattr(bn, name), getattr(twin, name))


def test_batch_norm_refuses_a_batch_whose_variance_overflows_and_keeps_its_running_statistics():
    """Inputs around 1e160 squared overflow: the output used to be all zeros and running_var inf, silently."""
    X = np.random.default_rng(0).normal(size=(5, 3))
    bn = nnlab.BatchNorm1d(3)
    with pytest.raises(NonFiniteError, match=r"BatchNorm1d\(3\): the batch variance of feature\(s\) \[0, 1, 2\] "
                       r"overflowed to inf .*standardise the inputs"):
        bn.forward(X * 1e160)
    np.testing.assert_array_equal(bn.running_var, np.ones(3))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3))
    # just below the overflow the normalised output is unchanged by the scale
    np.testing.assert_allclose(nnlab.BatchNorm1d(3).forward(X * 1e150), nnlab.BatchNorm1d(3).forward(X * 1e6),
                               rtol=1e-12, atol=1e-12)


def test_batch_norm_in_evaluation_mode_refuses_infinite_running_statistics():
    bn = nnlab.BatchNorm1d(3)
    bn.running_var[1] = np.inf
    bn.eval()
    with pytest.raises(NonFiniteError, match=r"running_var/running_mean of feature\(s\) \[1\] hold inf/NaN"):
        bn.forward(np.ones((2, 3)))


def test_fit_names_the_batch_norm_overflow_when_it_stops():
    X = np.random.default_rng(0).normal(size=(6, 3)) * 1e200
    net = nnlab.make_mlp([3, 4, 2], norm="batch", rng=np.random.default_rng(0))
    history = nnlab.fit(net, nnlab.SoftmaxCrossEntropyLoss(), nnlab.SGD(net.parameters(), lr=0.1), X,
                        np.array([0, 1] * 3), epochs=2)
    assert history.diverged and "the batch variance of feature(s)" in history.message


def test_batch_norm_names_the_features_of_a_non_finite_input_at_most_ten():
    """An inf in the batch makes the mean itself inf: the error says so and lists the first ten such features."""
    x = np.ones((3, 12))
    x[0, 1:] = np.inf  # features 1..11 (eleven of them); feature 0 stays finite
    bn = nnlab.BatchNorm1d(12)
    with pytest.raises(NonFiniteError) as caught:
        bn.forward(x)
    assert str(caught.value) == ("BatchNorm1d(12): the input holds NaN or inf (the batch mean of feature(s) "
                                 "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10] is not finite)")
    np.testing.assert_array_equal(bn.running_mean, np.zeros(12))


def test_batch_norm_variance_overflow_message_in_full_for_float32():
    """Eleven overflowing features are listed up to ten; the dtype named is the batch's (float32 squares overflow
    at about 1.8e19)."""
    x = np.zeros((2, 12), dtype=np.float32)
    x[0, :11], x[1, :11] = 3e19, -3e19  # mean 0, squares 9e38 > float32's largest 3.4e38
    with pytest.raises(NonFiniteError) as caught:
        nnlab.BatchNorm1d(12).forward(x)
    assert str(caught.value) == ("BatchNorm1d(12): the batch variance of feature(s) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] "
                                 "overflowed to inf (inputs up to 3e+19 from their mean: too large for a float32 "
                                 "square); standardise the inputs (e.g. nnlab.standardize_features) first")


def test_batch_norm_running_statistics_message_in_full():
    """Up to ten bad features are named and the first three running variances shown."""
    bn = nnlab.BatchNorm1d(12)
    bn.running_var[1:] = np.inf
    bn.running_var[2] = 5.0
    bn.running_mean[2] = np.nan  # a bad mean alone also counts
    bn.eval()
    with pytest.raises(NonFiniteError) as caught:
        bn.forward(np.ones((2, 12)))
    assert str(caught.value) == ("BatchNorm1d(12): running_var/running_mean of feature(s) "
                                 "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10] hold inf/NaN (running_var [inf, 5.0, inf]), so "
                                 "evaluation mode cannot normalise; retrain on standardised inputs, or call "
                                 "reset_running_stats()")
