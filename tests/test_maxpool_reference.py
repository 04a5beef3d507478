"""MaxPool2d against the definition, a loop over the windows, on inputs full of ties.

The windows hold small integers after a ReLU, with random signs on the zeros (+0.0 against -0.0), in
float32 and float64, on sizes the kernel does not divide, with windows that tile, overlap or leave gaps,
and in the memory layouts the layer meets: NCHW, channel-major, and a convolution's output (channel-major
rows followed by discarded columns, here filled with NaN, which must never be read).
"""

import itertools

import numpy as np
import pytest

from nnlab import MaxPool2d
from nnlab.conv import output_size


def _loop_pool(x, kernel, stride, dout):
    """Each window's maximum, and its ``dout`` added at the window's first maximal position in row-major
    order (PyTorch's CPU rule)."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    out, dx = np.empty((n, c, ho, wo), x.dtype), np.zeros(x.shape, x.dtype)
    for a, b, i, j in itertools.product(range(n), range(c), range(ho), range(wo)):
        window = x[a, b, i * sh:i * sh + kh, j * sw:j * sw + kw]
        u, v = np.unravel_index(np.argmax(window), window.shape)  # argmax returns the first maximum
        out[a, b, i, j] = window[u, v]
        dx[a, b, i * sh + u, j * sw + v] += dout[a, b, i, j]
    return out, dx


def _tied(rng, shape, dtype):
    """Small integers after a ReLU, with random signs on the zeros."""
    values = np.maximum(rng.integers(-3, 3, shape), 0).astype(dtype)
    return values * rng.choice(np.array([1, -1], dtype), shape)


def _laid_out(x, layout):
    """``x`` with the same values in another memory layout."""
    if layout == "nchw":
        return np.ascontiguousarray(x)
    if layout == "channel_major":
        return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    assert layout == "conv_rows"
    n, c, h, w = x.shape
    rows = np.full((c, n, h, w + 2), np.nan, x.dtype)
    rows[..., :w] = x.transpose(1, 0, 2, 3)
    return rows[..., :w].transpose(1, 0, 2, 3)


POOLS = [((2, 2), (2, 2)), ((3, 3), (3, 3)), ((2, 3), (2, 3)), ((2, 2), (3, 3)), ((1, 2), (1, 2)),
         ((2, 1), (2, 2)), ((2, 2), (1, 1)), ((3, 3), (2, 2)), ((2, 3), (1, 3))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel, stride", POOLS, ids=str)
@pytest.mark.parametrize("size", [(6, 6), (7, 9), (8, 5)], ids=str)
@pytest.mark.parametrize("layout", ["nchw", "channel_major", "conv_rows"])
def test_maxpool_matches_a_loop_over_the_windows(dtype, kernel, stride, size, layout, rng):
    x = _laid_out(_tied(rng, (2, 3, *size), dtype), layout)
    pool = MaxPool2d(kernel, stride)
    with np.errstate(all="raise"):  # the NaN columns are never touched
        out = pool.forward(x)
        dout = _tied(rng, out.shape, dtype) - _tied(rng, out.shape, dtype)
        dx = pool.backward(dout)
    expected_out, expected_dx = _loop_pool(np.ascontiguousarray(x), kernel, stride, dout)
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)
