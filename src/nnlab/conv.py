"""Layers for images: ``Conv2d``, ``MaxPool2d`` and ``Flatten``, in PyTorch's NCHW layout.

Every image batch is 4-D, ``(batch, channels, height, width)``, as in PyTorch; the modules
follow the protocol of :mod:`nnlab.layers` (a checked ``forward``/``backward`` over an
unchecked ``_forward``/``_backward``).

**Convolution as one matrix product (im2col).**  Every output pixel of a convolution is
a dot product between the kernel and the input patch under it.  Copy every patch into
one column of a matrix ``cols`` of shape ``(C*kh*kw, batch*Ho*Wo)`` and the whole layer
is one GEMM, ``W.reshape(out, C*kh*kw) @ cols``; the backward pass is two more,
``dW = dout @ cols.T`` and ``dcols = W.T @ dout``, after which ``col2im`` adds each
column of ``dcols`` back onto the input pixels it was copied from -- a loop over the
``kh*kw`` kernel offsets, each one strided add over the whole batch.

**Memory layout.**  Arrays have PyTorch's NCHW *shape*, but the convolution's output
is stored channel-major, ``(C, N, H, W)`` in memory, and returned as a transposed view:
that is the order the GEMM writes, so no copy is needed to bring it back to NCHW, and
the layers after it (pooling, ReLU, the next convolution's ``im2col``) read it in that
order too.  ``Flatten`` makes the one copy into row-major ``(N, C*H*W)`` rows for a
``Linear`` layer.  Any layout of input works; this one costs no transposes.

**Bounded memory.**  The column matrix is built for a block of images at a time, at most
``Conv2d.col_block_bytes`` bytes (1 MiB unless changed, so that a block stays in the CPU's
cache between its copy and its GEMM) or one image's columns if a single image needs more:
``predict`` on 50,000 images needs no more memory for the columns than a training batch.
When the whole batch fits in one block the columns are kept for the backward pass;
otherwise the backward pass rebuilds them block by block.  The layers keep their
internal arrays (the padded input, the column blocks, pooling's row maxima) between calls
and reuse them while the batch shape stays the same: writing to fresh memory costs a page
fault per page, which profiling showed to outweigh the arithmetic of these small layers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnlab._checks import as_float_array, constant_array, require_finite, require_positive_int
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import Linear, Module, Param, ReLU, Sequential, register_module

#: Every matrix product of the convolution goes through this name (``nnlab bench --cnn`` times them here).
_gemm = np.matmul


class _Geometry(NamedTuple):
    """Sizes of one convolution for one input shape (N, C, H, W)."""

    shape: tuple  # the input's
    hp: int  # padded height
    wp: int  # padded width
    ho: int  # output height
    wo: int  # output width
    wq: int  # columns computed per output row (wp at stride 1, else wo)
    length: int  # elements of each flattened padded image (with a zero tail for the last patches)
    block: int  # images per column matrix


def _pair(value, name: str, where: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` (an int, or two ints) as a pair of ints ``>= minimum``, like PyTorch's ``_pair``."""
    items = list(value) if isinstance(value, (tuple, list)) else [value, value]
    if len(items) != 2:
        raise NnlabValueError(f"{where}: {name} must be an int or a pair of ints, got {value!r}")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise NnlabTypeError(f"{where}: {name} must be an int or a pair of ints, got {value!r}")
        if item < minimum:
            raise NnlabValueError(f"{where}: {name} must be at least {minimum}, got {value!r}")
        out.append(int(item))
    return out[0], out[1]


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Positions of a kernel along one axis: ``(size + 2 * padding - kernel) // stride + 1`` (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def _channel_major(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, H, W) as a (C, N, H, W) array -- a view when its memory already has that order."""
    return x.transpose(1, 0, 2, 3)


def _scratch(store: dict, name: str, like: np.ndarray, dtype=None, zero: bool = False) -> np.ndarray:
    """A module's own array with ``like``'s shape and memory order, kept in ``store`` and reused between calls.

    Why: a fresh multi-megabyte array costs a page fault per 4 KiB page when first written,
    which profiling showed to cost more than the arithmetic in the pooling and convolution
    layers.  Only arrays nobody outside the module holds are kept this way.  ``zero=True``
    clears a reused array; a new one always starts as zeros.
    """
    dtype = np.dtype(like.dtype if dtype is None else dtype)
    key = (like.shape, dtype, tuple(np.argsort(like.strides, kind="stable")))
    entry = store.get(name)
    if entry is None or entry[0] != key:
        entry = store[name] = (key, np.zeros_like(like, dtype=dtype))
    elif zero:
        entry[1].fill(0)
    return entry[1]


def _shaped(shape, dtype) -> np.ndarray:
    """A read-only stand-in for a C-ordered array of ``shape`` (a template for :func:`_scratch`)."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def _check_images(x, where: str, channels: int | None, kernel: tuple[int, int], padding=(0, 0)) -> np.ndarray:
    """``x`` as a float (N, C, H, W) array whose (padded) images are at least the kernel's size."""
    if type(x) is not np.ndarray or x.dtype.char not in "fd":
        x = as_float_array(x, "input", where)
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        want = f"(batch, {channels}, height, width)" if channels is not None else "(batch, channels, height, width)"
        raise NnlabValueError(f"{where}: expected input of shape {want}, got shape {x.shape}")
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise NnlabValueError(f"{where}: images of {x.shape[2]}x{x.shape[3]} (padding {padding[0]}x{padding[1]}) "
                              f"are smaller than the {kernel[0]}x{kernel[1]} kernel")
    return x


def _check_grad(module, dout, out_shape, dtype) -> np.ndarray:
    """``dout`` as a finite float array of the shape the last forward returned, in the input's dtype."""
    if out_shape is None:
        raise module._not_run_yet()
    if type(dout) is not np.ndarray or dout.dtype.char not in "fd":
        dout = as_float_array(dout, "dout", module._label())
    if dout.shape != out_shape:
        raise NnlabValueError(f"{module._label()}: backward expected dout of shape {out_shape}, got {dout.shape}")
    if dout.dtype != dtype:
        dout = dout.astype(dtype)
    if not np.isfinite(dout).all():
        require_finite(dout, "dout", module._label())
    return dout


@register_module
class Conv2d(Module):
    """2-D convolution (cross-correlation, as in PyTorch) over a batch of images, as im2col and one GEMM.

    ``out[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xpad[n, c, i*sh + u, j*sw + v]``, where
    ``xpad`` is ``x`` with ``padding`` zeros on every side.

    Args:
        in_channels: channels of each input image.
        out_channels: channels (filters) of each output image.
        kernel_size: ``k`` or ``(kh, kw)``.
        stride: ``s`` or ``(sh, sw)``; 1 by default.
        padding: zeros added on each side, ``p`` or ``(ph, pw)``; 0 by default.
        dtype: parameter dtype, float64 by default (float32 for speed).
        init: ``"pytorch"`` (default): PyTorch's own default, ``kaiming_uniform_(a=sqrt(5))``
            for ``W`` and the same bound for ``b``, i.e. both ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
            with ``fan_in = in_channels*kh*kw``.  Chosen so that an nnlab network and its PyTorch
            twin start from the same distribution (the benchmark and the parity tests compare
            such twins).  ``"he"``: He uniform, ``U(-sqrt(6/fan_in), sqrt(6/fan_in))``, zero bias --
            the variance-preserving choice for ReLU networks, wider by ``sqrt(6)``.
        rng: a ``numpy.random.Generator``; ``None`` uses the global ``np.random`` state.
        name: optional label for error messages.

    Attributes:
        W: filters, shape (out_channels, in_channels, kh, kw) (PyTorch's ``weight``).
        b: bias, shape (out_channels,).
        dW, db: gradient buffers of the same shapes, overwritten (never added to) by every backward.
        col_block_bytes: bound on one block's column matrix, in bytes (see the module docstring).

    Shape:
        forward: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo) with
        ``Ho = (H + 2*ph - kh) // sh + 1`` (likewise ``Wo``); backward the reverse.

    Example:
        >>> import numpy as np, nnlab
        >>> conv = nnlab.Conv2d(1, 4, kernel_size=3, padding=1, rng=np.random.default_rng(0))
        >>> conv.forward(np.ones((2, 1, 8, 8))).shape
        (2, 4, 8, 8)
    """

    #: backward needs the input's columns, not the output
    keeps_output = False
    #: the column matrix of one block of images holds at most this many bytes (or one image's columns)
    col_block_bytes = 1 << 20

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dtype=np.float64,
                 init="pytorch", rng=None, name=None):
        self.in_channels = require_positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = require_positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.padding = _pair(padding, "padding", "Conv2d", minimum=0)
        if init not in ("pytorch", "he"):
            raise NnlabValueError(f"Conv2d: init must be 'pytorch' or 'he', got {init!r}")
        self.init = init
        self.name = name
        self._dtype = np.dtype(dtype)
        if self._dtype.kind != "f":
            raise NnlabTypeError(f"Conv2d: dtype must be a float type, got {self._dtype}")
        self.reset_parameters(rng)
        self._clear_cache()

    @property
    def fan_in(self) -> int:
        """Inputs of one output pixel: ``in_channels * kh * kw``."""
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def reset_parameters(self, rng=None) -> None:
        """Draw fresh filters and bias (see ``init``); zero the gradient buffers."""
        draw = np.random.uniform if rng is None else rng.uniform
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        if self.init == "pytorch":
            bound = 1.0 / math.sqrt(self.fan_in)
            self.W = np.asarray(draw(-bound, bound, size=shape), dtype=self._dtype)
            self.b = np.asarray(draw(-bound, bound, size=self.out_channels), dtype=self._dtype)
        else:
            bound = math.sqrt(6.0 / self.fan_in)
            self.W = np.asarray(draw(-bound, bound, size=shape), dtype=self._dtype)
            self.b = np.zeros(self.out_channels, dtype=self._dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def _clear_cache(self) -> None:
        self._flat = None  # the last input, padded, channel-major, each image flattened (C, N, length)
        self._geom = None  # its _Geometry
        self._cols_valid = False  # whether the workspace still holds the last input's whole column matrix
        self._workspace = {}  # name -> reusable buffer (the column matrix of one block, its gradient)

    def parameters(self) -> list[Param]:
        """``[W, b]`` with their gradients; only ``W`` is decayed by L2."""
        return [Param(self, "W", "dW", decay=True), Param(self, "b", "db", decay=False)]

    def config(self) -> dict:
        """Constructor arguments (pairs as lists); the dtype is the checkpoint's."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "init": self.init, "name": self.name}

    @classmethod
    def from_config(cls, config: dict, dtype=np.float64) -> Conv2d:
        """A Conv2d of ``config``'s shape; its (irrelevant) initial weights come from a fixed seed."""
        return cls(**config, dtype=dtype, rng=np.random.default_rng(0))

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """``W`` (out, in, kh, kw) and ``b`` (out,)."""
        n_in = require_positive_int(config["in_channels"], "in_channels", "Conv2d")
        n_out = require_positive_int(config["out_channels"], "out_channels", "Conv2d")
        kh, kw = _pair(config["kernel_size"], "kernel_size", "Conv2d")
        _pair(config["stride"], "stride", "Conv2d")
        _pair(config["padding"], "padding", "Conv2d", minimum=0)
        return {"W": (n_out, n_in, kh, kw), "b": (n_out,)}

    def _label(self) -> str:
        tag = f" '{self.name}'" if self.name else ""
        return f"Conv2d{tag}({self.in_channels} -> {self.out_channels}, kernel {self.kernel_size})"

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dtype={self.W.dtype})")

    def forward(self, x):
        """Return the convolution of the batch ``x`` (N, C, H, W) with the filters, plus the bias.

        Float32 input through a float64 layer stays float32 (the filters are cast for the
        product).  The returned array has NCHW shape and channel-major memory (a transposed view).
        """
        return super().forward(x)

    def backward(self, dout):
        """Write ``dW`` and ``db`` into their buffers; return dLoss/dx, shape (N, C, H, W)."""
        return super().backward(dout)

    def _check_input(self, x) -> np.ndarray:
        return _check_images(x, self._label(), self.in_channels, self.kernel_size, self.padding)

    def _check_dout(self, dout) -> np.ndarray:
        if self._flat is None:
            raise self._not_run_yet()
        g = self._geom
        dout = _check_grad(self, dout, (g.shape[0], self.out_channels, g.ho, g.wo), self._flat.dtype)
        self._ensure_grad_buffers()
        return dout

    # -- the unchecked core ------------------------------------------------------------------------

    def _geometry(self, shape) -> _Geometry:
        """The sizes a batch of ``shape`` implies, for the current ``col_block_bytes`` and dtype.

        Computed afresh on every call (a dozen integer operations): a cache keyed by the shape
        alone kept the old block size after ``col_block_bytes`` or the dtype changed.
        """
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, c, h, w = shape
        hp, wp = h + 2 * ph, w + 2 * pw
        ho, wo = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
        # Stride 1: compute every output row across the whole padded width, so that each kernel
        # offset's patch rows are one contiguous run of the flat padded image (the extra wp - wo
        # columns are discarded).  Other strides: exactly the output columns.
        wq = wp if (sh, sw) == (1, 1) else wo
        length = max(hp * wp, (kh - 1 + (ho - 1) * sh) * wp + (kw - 1) + (wq - 1) * sw + 1)
        per_image = c * kh * kw * ho * wq * np.dtype(self.W.dtype).itemsize
        block = max(1, int(self.col_block_bytes // per_image))
        self._geom = _Geometry(shape, hp, wp, ho, wo, wq, length, block)
        return self._geom

    def _flat_padded(self, x: np.ndarray, g: _Geometry) -> np.ndarray:
        """``x`` with its zero border, channel-major, each image flattened: (C, N, length)."""
        (ph, pw), (n, c, h, w) = self.padding, x.shape
        # kept between calls: only the interior is ever written, so the border and tail stay zero
        flat = _scratch(self._workspace, "flat", _shaped((c, n, g.length), x.dtype))
        flat[:, :, : g.hp * g.wp].reshape(c, n, g.hp, g.wp)[:, :, ph : ph + h, pw : pw + w] = _channel_major(x)
        return flat

    def _patches(self, flat: np.ndarray, g: _Geometry, writeable: bool = False) -> np.ndarray:
        """A strided view of ``flat`` (C, n, length), shape (C, n, kh, kw, Ho, Wq): the input pixel under each
        kernel offset ``(u, v)`` of each output pixel ``(i, j)``, i.e. ``pad[c, n, u + i*sh, v + j*sw]``.

        The view overlaps itself (neighbouring patches share pixels), so it is written only
        through ``[:, :, u, v]`` slices, each of which touches every pixel at most once.
        """
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        item = flat.itemsize
        sc, sn = flat.strides[:2]
        return as_strided(flat, (*flat.shape[:2], kh, kw, g.ho, g.wq),
                          (sc, sn, g.wp * item, item, sh * g.wp * item, sw * item), writeable=writeable)

    def _im2col(self, flat: np.ndarray, g: _Geometry, buffer: np.ndarray) -> np.ndarray:
        """The column matrix of the images in ``flat`` (C, n, length), written into ``buffer``: (C*kh*kw, n*Ho*Wq)."""
        c, n = flat.shape[:2]
        kh, kw = self.kernel_size
        cols = buffer[: c * kh * kw * n * g.ho * g.wq].reshape(c * kh * kw, n * g.ho * g.wq)
        np.copyto(cols.reshape(c, kh, kw, n, g.ho, g.wq), self._patches(flat, g).transpose(0, 2, 3, 1, 4, 5))
        return cols

    def _col2im(self, dcols: np.ndarray, dflat: np.ndarray, g: _Geometry) -> None:
        """Add every column of ``dcols`` (C*kh*kw, n*Ho*Wq) back onto the pixels it came from, in ``dflat``.

        One strided add per kernel offset ``(u, v)``: that offset's rows of ``dcols``, a
        (C, n, Ho, Wq) block, land on the pixels ``(u + i*sh, v + j*sw)`` of every image.
        """
        kh, kw = self.kernel_size
        c, n = dflat.shape[:2]
        blocks = dcols.reshape(c, kh, kw, n, g.ho, g.wq)
        patches = self._patches(dflat, g, writeable=True)
        for u in range(kh):
            for v in range(kw):
                target = patches[:, :, u, v]
                np.add(target, blocks[:, u, v], out=target)

    def _forward(self, x, inplace=False):
        # x is never written: backward reads the padded copy made here
        g = self._geometry(x.shape)
        n, o = x.shape[0], self.out_channels
        W, b = self.W, self.b
        if W.dtype != x.dtype:
            W, b = W.astype(x.dtype), b.astype(x.dtype)
        w_mat = W.reshape(o, self.fan_in)
        flat = self._flat_padded(x, g)
        out = np.empty((o, n, g.ho, g.wq), dtype=x.dtype)  # channel-major: what the GEMM writes
        out_mat = out.reshape(o, n * g.ho * g.wq)
        buffer = self._buffer("cols", g, x.dtype)
        pixels = g.ho * g.wq
        for start in range(0, n, g.block):
            stop = min(n, start + g.block)
            cols = self._im2col(flat[:, start:stop], g, buffer)
            _gemm(w_mat, cols, out=out_mat[:, start * pixels : stop * pixels])
        out += b[:, None, None, None]
        self._flat = flat
        self._cols_valid = n <= g.block  # the buffer still holds this batch's columns
        return _channel_major(out[:, :, :, : g.wo])

    def _backward(self, dout, inplace=False, need_dx=True):
        g, flat = self._geom, self._flat
        n, o = dout.shape[:2]
        pixels = g.ho * g.wq
        if g.wq == g.wo:
            d = np.ascontiguousarray(_channel_major(dout))  # a view when dout has our layout
        else:  # zeros in the discarded columns (never written, so a kept array stays zero there): no dW or dx
            d = _scratch(self._workspace, "dout", _shaped((o, n, g.ho, g.wq), dout.dtype))
            d[:, :, :, : g.wo] = _channel_major(dout)
        d_mat = d.reshape(o, n * pixels)
        _gemm(d_mat, constant_array((n * pixels,), 1, d.dtype), out=self.db)  # a sum as one BLAS product
        W = self.W if self.W.dtype == d.dtype else self.W.astype(d.dtype)
        w_t = W.reshape(o, self.fan_in).T
        dflat = np.zeros(flat.shape, dtype=d.dtype) if need_dx else None
        buffer = self._buffer("cols", g, d.dtype)
        dcols_buffer = self._buffer("dcols", g, d.dtype) if need_dx else None
        dw_t = np.zeros((self.fan_in, o), dtype=d.dtype)  # dW transposed: cols @ d.T is twice as fast as d @ cols.T
        for start in range(0, n, g.block):
            stop = min(n, start + g.block)
            cols = self._im2col(flat[:, start:stop], g, buffer) if not self._cols_valid \
                else buffer[: self.fan_in * n * pixels].reshape(self.fan_in, n * pixels)
            d_part = d_mat[:, start * pixels : stop * pixels]
            dw_t += _gemm(cols, d_part.T)
            if need_dx:
                dcols = dcols_buffer[: cols.size].reshape(cols.shape)
                _gemm(w_t, d_part, out=dcols)
                self._col2im(dcols, dflat[:, start:stop], g)
        self.dW[...] = dw_t.T.reshape(self.dW.shape)
        if not need_dx:
            return None
        (ph, pw), (_, c, h, w) = self.padding, g.shape
        dx = dflat[:, :, : g.hp * g.wp].reshape(c, n, g.hp, g.wp)[:, :, ph : ph + h, pw : pw + w]
        return _channel_major(dx)

    def _buffer(self, name: str, g: _Geometry, dtype) -> np.ndarray:
        """A flat workspace for one block's column matrix, kept between calls (no fresh pages every step)."""
        return _scratch(self._workspace, name, _shaped((self.fan_in * min(g.block, g.shape[0]) * g.ho * g.wq,), dtype))


@register_module
class MaxPool2d(Module):
    """Max pooling: the largest value of each ``kh x kw`` window, windows ``stride`` apart.

    ``out[n, c, i, j] = max_{u, v} x[n, c, i*sh + u, j*sw + v]``; the gradient of each output
    goes to the input position that held the maximum, and nowhere else.

    Ties: when several positions of a window hold the maximum, the *first* in row-major
    order (smallest ``u``, then smallest ``v``) gets the gradient -- PyTorch's CPU rule
    (it replaces its running maximum only on a strictly larger value).  Ties are common
    after a ReLU (a window of zeros), so the rule matters: giving every tied position the
    gradient would multiply it.

    Args:
        kernel_size: ``k`` or ``(kh, kw)``.
        stride: ``s`` or ``(sh, sw)``; ``None`` (default) means the kernel size, so that windows tile the image.

    Shape:
        (N, C, H, W) -> (N, C, Ho, Wo) with ``Ho = (H - kh) // sh + 1`` (rows that do not fill a
        window are dropped, PyTorch's default ``ceil_mode=False``).

    Example:
        >>> import numpy as np, nnlab
        >>> nnlab.MaxPool2d(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
        array([[ 5.,  7.],
               [13., 15.]])
    """

    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size, "kernel_size", "MaxPool2d")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", "MaxPool2d")
        self.x = self.row_max = self.out = None
        self._workspace = {}  # arrays kept between calls (see _scratch)

    def config(self) -> dict:
        """``kernel_size`` and ``stride`` as lists."""
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    @classmethod
    def state_spec(cls, config: dict) -> dict[str, tuple]:
        """No arrays (after checking the record's values)."""
        _pair(config["kernel_size"], "kernel_size", "MaxPool2d")
        _pair(config["stride"], "stride", "MaxPool2d")
        return {}

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride})"

    def forward(self, x):
        """Return the maximum of every window of every channel of every image."""
        return super().forward(x)

    def backward(self, dout):
        """Return dLoss/dx: each window's ``dout`` at its (first) arg-max, zero elsewhere."""
        return super().backward(dout)

    def _check_input(self, x) -> np.ndarray:
        return _check_images(x, self._label(), None, self.kernel_size)

    def _check_output(self, x, out):
        require_finite(x, "input", self._label())  # -inf hides behind a window's larger values
        return out

    def _check_dout(self, dout) -> np.ndarray:
        return _check_grad(self, dout, None if self.out is None else self.out.shape,
                           None if self.x is None else self.x.dtype)

    @staticmethod
    def _offsets(a: np.ndarray, axis: int, kernel: int, stride: int, count: int) -> list[np.ndarray]:
        """The views of ``a`` at kernel offsets ``0..kernel-1`` along ``axis``, ``count`` windows ``stride`` apart."""
        index = [slice(None)] * a.ndim
        views = []
        for offset in range(kernel):
            index[axis] = slice(offset, offset + stride * (count - 1) + 1, stride)
            views.append(a[tuple(index)])
        return views

    @staticmethod
    def _maximum(views: list[np.ndarray], out=None) -> np.ndarray:
        if len(views) == 1:
            if out is None:
                return views[0].copy()
            np.copyto(out, views[0])
            return out
        out = np.maximum(views[0], views[1], out=out)
        for view in views[2:]:
            np.maximum(out, view, out=out)
        return out

    @staticmethod
    def _route(grad, views, best, targets, overlapping: bool) -> None:
        """Send each entry of ``grad`` to the first of ``views`` that equals ``best`` there, adding into ``targets``.

        ``rest`` is the gradient not yet routed: an offset takes the part of it where its
        value is the maximum, and the last offset takes whatever is left (its value must be
        the maximum there).  So ties go to the first offset, and no gradient is counted twice.
        """
        rest = grad
        for offset, (view, target) in enumerate(zip(views, targets)):
            last = offset == len(views) - 1
            part = rest if last else rest * (view == best)
            if overlapping:
                target += part
            else:
                target[...] = part
            if not last:
                rest = rest - part

    def _forward(self, x, inplace=False):
        # Separable: the maximum along each window's rows, then down its columns.  Each step reads its
        # input once (the kernel offsets of a step are views side by side in memory), where a max over
        # all kh*kw offsets at once would read x kh*kw times through strided views.
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ho, wo = output_size(x.shape[2], kh, sh), output_size(x.shape[3], kw, sw)
        offsets = self._offsets(x, 3, kw, sw, wo)
        row_max = self._maximum(offsets, _scratch(self._workspace, "row_max", offsets[0]))  # (N, C, H, Wo), kept
        out = self._maximum(self._offsets(row_max, 2, kh, sh, ho))
        self.x, self.row_max, self.out = x, row_max, out
        return out

    def _backward(self, dout, inplace=False, need_dx=True):
        # The window's first maximum in row-major order is in the first of its rows whose maximum equals the
        # window's, at the first column of that row holding it: route down the rows, then along that row.
        x, row_max, out = self.x, self.row_max, self.out
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        d_row_max = _scratch(self._workspace, "d_row_max", row_max, dout.dtype, zero=True)  # (x's memory layout)
        self._route(dout, self._offsets(row_max, 2, kh, sh, out.shape[2]), out,
                    self._offsets(d_row_max, 2, kh, sh, out.shape[2]), overlapping=sh < kh)
        dx = np.zeros_like(x, dtype=dout.dtype)
        self._route(d_row_max, self._offsets(x, 3, kw, sw, out.shape[3]), row_max,
                    self._offsets(dx, 3, kw, sw, out.shape[3]), overlapping=sw < kw)
        return dx


@register_module
class Flatten(Module):
    """Flatten each image of a batch into one row: (N, C, H, W) -> (N, C*H*W), PyTorch's ``nn.Flatten()``.

    The row order is C-major (channel, then row, then column), as in PyTorch, so a
    ``Linear`` after it has PyTorch's weight layout.  Any input of two or more dimensions
    works; the first dimension is the batch.
    """

    keeps_output = False

    def __init__(self):
        self.in_shape = None

    def __repr__(self) -> str:
        return "Flatten()"

    def forward(self, x):
        """Return ``x`` reshaped to (N, everything else) (a copy: the caller's array is never shared)."""
        return super().forward(x)

    def backward(self, dout):
        """Return ``dout`` reshaped to the input's shape."""
        return super().backward(dout)

    def _check_input(self, x) -> np.ndarray:
        x = as_float_array(x, "input", self._label())
        if x.ndim < 2:
            raise NnlabValueError(f"{self._label()}: expected input of shape (batch, ...), got shape {x.shape}")
        return x

    def _check_output(self, x, out):
        require_finite(out, "input", self._label())  # the same numbers as the input
        return out

    def _check_dout(self, dout) -> np.ndarray:
        if self.in_shape is None:
            raise self._not_run_yet()
        want = (self.in_shape[0], math.prod(self.in_shape[1:]))
        dout = as_float_array(dout, "dout", self._label(), finite=True)
        if dout.shape != want:
            raise NnlabValueError(f"{self._label()}: backward expected dout of shape {want}, got {dout.shape}")
        return dout

    @staticmethod
    def _reshaped(a: np.ndarray, shape, inplace: bool) -> np.ndarray:
        out = a.reshape(shape)  # a view when the memory allows, else a copy
        # a view of an array we were not given would let the next module overwrite its owner's data
        return out.copy() if not inplace and np.may_share_memory(out, a) else out

    def _forward(self, x, inplace=False):
        self.in_shape = x.shape
        return self._reshaped(x, (x.shape[0], math.prod(x.shape[1:])), inplace)

    def _backward(self, dout, inplace=False, need_dx=True):
        return self._reshaped(dout, self.in_shape, inplace)


def make_cnn(side: int, channels=(16, 32), kernel_size: int = 3, classes: int = 10, in_channels: int = 1,
             dtype=np.float64, rng=None) -> Sequential:
    """A small CNN for ``side x side`` images: two convolution + pooling blocks, then a linear classifier.

    ``Conv2d(k, padding k//2) -> MaxPool2d(2) -> ReLU`` twice (the padding keeps each image's
    size, each pooling halves it), then ``Flatten -> Linear(channels[1] * (side//4)**2, classes)``.
    The ReLU comes after the pooling: ``max`` commutes with the increasing ReLU, so the network
    computes exactly what ``conv -> ReLU -> pool`` computes (gradients included: the window's
    first arg-max is the same either way, and a window with no positive value passes no
    gradient in either order), with the ReLU on a quarter of the values.

    Args:
        side: image height and width (divisible by 4 keeps every pixel; e.g. 28 or 8).
        channels: output channels of the two convolutions.
        kernel_size: odd kernel size of both convolutions.
        classes: outputs of the classifier (logits).
        in_channels: channels of the input images.
        dtype: parameter dtype.
        rng: ``numpy.random.Generator`` for the initial weights (convolutions: PyTorch's default
            initialisation; the linear layer: Glorot uniform).
    Returns:
        a :class:`~nnlab.layers.Sequential` taking (N, in_channels, side, side) images.
    """
    side = require_positive_int(side, "side", "make_cnn")
    k = require_positive_int(kernel_size, "kernel_size", "make_cnn")
    c1, c2 = _pair(channels, "channels", "make_cnn")
    if k % 2 == 0:
        raise NnlabValueError(f"make_cnn: kernel_size must be odd (so that padding keeps the size), got {k}")
    if side < 4:
        raise NnlabValueError(f"make_cnn: side must be at least 4 (two 2x2 poolings), got {side}")
    pad = k // 2
    return Sequential(
        Conv2d(in_channels, c1, k, padding=pad, dtype=dtype, rng=rng, name="conv1"), MaxPool2d(2), ReLU(),
        Conv2d(c1, c2, k, padding=pad, dtype=dtype, rng=rng, name="conv2"), MaxPool2d(2), ReLU(),
        Flatten(), Linear(c2 * (side // 4) ** 2, classes, dtype=dtype, rng=rng, name="classifier"))
