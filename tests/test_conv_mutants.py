"""Conv2d, MaxPool2d and Flatten: behaviours a mutation run of ``nnlab.conv`` found no test for.

Checkpoint records refused word for word, the dtype a float64 layer computes a float32 batch
in, memory layouts and bounds, kernels one pixel wide, windows that overlap along one axis only.
"""

import numpy as np
import pytest
from numpy.lib.array_utils import byte_bounds

import nnlab
from nnlab import Conv2d, Flatten, MaxPool2d

_CONV_RECORD = {"in_channels": 1, "out_channels": 2, "kernel_size": [3, 3], "stride": [1, 1], "padding": [0, 0],
                "init": "pytorch", "name": None}
_POOL_RECORD = {"kernel_size": [2, 2], "stride": [2, 2]}


@pytest.mark.parametrize(("module", "change", "message"), [
    (Conv2d, {"in_channels": -1}, "Conv2d: in_channels must be a positive integer, got -1"),
    (Conv2d, {"out_channels": 0}, "Conv2d: out_channels must be a positive integer, got 0"),
    (Conv2d, {"kernel_size": [3, 0]}, "Conv2d: kernel_size must be at least 1, got [3, 0]"),
    (Conv2d, {"stride": [1, 2, 3]}, "Conv2d: stride must be an int or a pair of ints, got [1, 2, 3]"),
    (Conv2d, {"padding": [-1, 0]}, "Conv2d: padding must be at least 0, got [-1, 0]"),
    (MaxPool2d, {"kernel_size": [0, 2]}, "MaxPool2d: kernel_size must be at least 1, got [0, 2]"),
    (MaxPool2d, {"stride": "2"}, "MaxPool2d: stride must be an int or a pair of ints, got '2'"),
], ids=lambda v: v.__name__ if isinstance(v, type) else next(iter(v)) if isinstance(v, dict) else "")
def test_a_bad_record_value_is_refused_word_for_word(module, change, message):
    """state_spec checks a record read from a file before anything is built: each refusal names the value."""
    record = {**(_CONV_RECORD if module is Conv2d else _POOL_RECORD), **change}
    with pytest.raises(nnlab.NnlabError) as caught:
        module.state_spec(record)
    assert str(caught.value) == message


def test_good_records_declare_their_arrays():
    assert Conv2d.state_spec({**_CONV_RECORD, "kernel_size": [3, 2]}) == {"W": (2, 1, 3, 2), "b": (2,)}
    assert MaxPool2d.state_spec(_POOL_RECORD) == {}


def test_a_bad_conv_record_in_a_checkpoint_is_refused_with_the_records_message(tmp_path):
    from test_checkpoint import _forge

    arch = {"type": "Conv2d", "config": {**_CONV_RECORD, "out_channels": 0}}
    path = _forge(tmp_path / "bad.npz", arch, {"W": np.zeros((1, 1, 3, 3)), "b": np.zeros(1)})
    with pytest.raises(nnlab.CheckpointError) as caught:
        nnlab.load(path)
    assert str(caught.value) == (f"{path}: checkpoint architecture is invalid "
                                 "(Conv2d: out_channels must be a positive integer, got 0)")


def _float32_twin(conv: Conv2d) -> Conv2d:
    twin = Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dtype=np.float32)
    twin.W[...], twin.b[...] = conv.W, conv.b
    twin.col_block_bytes = conv.col_block_bytes
    return twin


@pytest.mark.parametrize("block_bytes", [Conv2d.col_block_bytes, 1], ids=["one block", "an image a block"])
@pytest.mark.parametrize("stride", [1, 2])
def test_a_float64_layer_computes_a_float32_batch_exactly_as_its_float32_copy(block_bytes, stride, rng):
    """The filters are cast to the batch's dtype for every product: float32 arithmetic throughout, the
    gradient sums of several blocks included, bit for bit what a float32 layer with the same weights gives,
    and within float32's rounding of the float64 numbers."""
    conv = Conv2d(3, 5, 3, stride=stride, padding=1, rng=rng)
    conv.col_block_bytes = block_bytes
    twin = _float32_twin(conv)
    x = rng.normal(size=(4, 3, 6, 7)).astype(np.float32)
    out = conv.forward(x)
    np.testing.assert_array_equal(out, twin.forward(x))
    dout = rng.normal(size=out.shape).astype(np.float32)
    dx = conv.backward(dout)
    assert dx.dtype == np.float32 and conv.dW.dtype == np.float64
    np.testing.assert_array_equal(dx, twin.backward(dout))
    np.testing.assert_array_equal(conv.dW, twin.dW)
    np.testing.assert_array_equal(conv.db, twin.db)
    dW, db = conv.dW.copy(), conv.db.copy()
    np.testing.assert_allclose(out, conv.forward(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, conv.backward(dout.astype(np.float64)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dW, conv.dW, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, conv.db, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [(2, 2, 5, 6, 3, 3, 1, 1), (3, 1, 6, 5, 2, (2, 4), 1, (0, 2)),
                                  (2, 2, 7, 7, 2, 3, 2, 1), (2, 2, 8, 9, 2, (2, 4), (3, 2), (2, 1))], ids=str)
def test_the_strided_patch_views_stay_inside_their_buffers(case, rng):
    """as_strided checks nothing: the patches of the padded batch, read by im2col and written by col2im,
    must not reach past the end of the buffer they view (stride 1 reads kw - 1 values past the last row)."""
    n, c, h, w, o, k, s, p = case
    conv = Conv2d(c, o, k, stride=s, padding=p, rng=rng)
    conv.forward(rng.normal(size=(n, c, h, w)))
    low, high = byte_bounds(conv._flat)
    view_low, view_high = byte_bounds(conv._patches(conv._flat, conv._geom))
    assert low <= view_low and view_high <= high


def test_padding_counts_when_an_image_is_smaller_than_the_kernel(rng):
    """A 1x1 image with padding 1 under a 3x3 kernel: only the kernel's centre meets a pixel."""
    conv = Conv2d(2, 3, 3, padding=1, rng=rng)
    x = rng.normal(size=(2, 2, 1, 1))
    np.testing.assert_allclose(conv.forward(x)[:, :, 0, 0], x[:, :, 0, 0] @ conv.W[:, :, 1, 1].T + conv.b,
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("make", [lambda rng: Conv2d(2, 3, 3, padding=1, rng=rng), lambda rng: MaxPool2d(2)])
def test_nested_lists_are_taken_as_images(make, rng):
    x = rng.normal(size=(2, 2, 4, 4))
    np.testing.assert_array_equal(make(np.random.default_rng(0)).forward(x.tolist()),
                                  make(np.random.default_rng(0)).forward(x))


def test_flatten_takes_a_batch_of_rows_as_it_is(rng):
    x = rng.normal(size=(3, 4))
    flat = Flatten()
    np.testing.assert_array_equal(flat.forward(x), x)
    np.testing.assert_array_equal(flat.backward(x), x)


def _window_maxima(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.empty((*x.shape[:2], ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("kernel, stride", [((1, 2), (1, 2)), ((2, 1), (2, 1)), ((1, 1), (1, 1)),
                                            ((3, 2), (1, 2)), ((2, 3), (2, 1))], ids=str)
def test_pooling_windows_one_pixel_wide_or_overlapping_along_one_axis(kernel, stride, rng):
    """Windows a single row or column wide, and windows that overlap down the rows only or along the
    columns only (each axis routes its gradient on its own): the definition and a float64 gradcheck."""
    x = (rng.permutation(2 * 2 * 7 * 8).reshape(2, 2, 7, 8) - 112) * 0.01  # no ties
    pool = MaxPool2d(kernel, stride)
    np.testing.assert_array_equal(pool.forward(x), _window_maxima(x, kernel, stride))
    result = nnlab.gradcheck(MaxPool2d(kernel, stride), x)
    assert result.passed, str(result)


def test_pooling_output_keeps_its_inputs_memory_order_whatever_came_before(rng):
    """A channel-major batch (a convolution's output) after a row-major one of the same shape: the output is
    channel-major again (no transposes for the next layer), with the same numbers."""
    x = rng.normal(size=(2, 3, 4, 4))
    pool = MaxPool2d(2)
    expected = pool.forward(x).copy()
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    out = pool.forward(channel_major)
    assert out.transpose(1, 0, 2, 3).flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_weight_decay_shrinks_the_filters_and_never_the_bias(rng):
    conv = Conv2d(2, 3, 3, rng=rng)  # PyTorch's initialisation: a non-zero bias
    W, b = conv.W.copy(), conv.b.copy()
    nnlab.SGD(conv.parameters(), lr=0.1, weight_decay=0.5).step()  # zero gradients: only the decay acts
    np.testing.assert_allclose(conv.W, 0.95 * W, rtol=1e-15)
    np.testing.assert_array_equal(conv.b, b)


@pytest.mark.parametrize("init", ["pytorch", "he"])
def test_initial_parameters_have_the_layers_dtype_shape_and_both_signs(init, rng):
    conv = Conv2d(2, 50, (3, 2), init=init, dtype=np.float32, rng=rng)
    assert conv.W.shape == (50, 2, 3, 2) and conv.b.shape == (50,)
    assert conv.W.dtype == conv.b.dtype == conv.dW.dtype == conv.db.dtype == np.float32
    bound = 1 / np.sqrt(12) if init == "pytorch" else np.sqrt(6 / 12)
    assert -bound <= conv.W.min() < -0.9 * bound and 0.9 * bound < conv.W.max() <= bound


def test_from_config_is_reproducible_and_leaves_the_global_generator_alone():
    np.random.seed(7)
    expected = np.random.random(3)
    np.random.seed(7)
    first, second = Conv2d.from_config(_CONV_RECORD), Conv2d.from_config(_CONV_RECORD)
    np.testing.assert_array_equal(np.random.random(3), expected)
    np.testing.assert_array_equal(first.W, second.W)
    np.testing.assert_array_equal(first.b, second.b)
