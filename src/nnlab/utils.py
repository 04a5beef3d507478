"""The handout's shared helpers (Stage 0, 4, 5 and 6): seeding, plotting, checks, encoding.

Plots are written to PNG files through Matplotlib's Agg canvas, never shown on a
screen, so the same code runs on a laptop, a server and CI.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nnlab._checks import as_float_array, finite_output, refuse_masked, require_ndim, require_positive_int
from nnlab._io import atomic_write, check_output_file
from nnlab.errors import NnlabTypeError, NnlabValueError

#: Where :func:`plot_series` writes when no path is given (override with NNLAB_FIGURES).
DEFAULT_FIGURE_DIR = "figures"


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random`` and NumPy's global generator; return a fresh ``Generator``.

    The handout seeds ``np.random`` and ``random`` with 42 at the top of every
    stage; this does both and also hands back ``np.random.default_rng(seed)`` for
    code that prefers an explicit generator.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NnlabValueError(f"seed_everything: seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    return np.random.default_rng(int(seed))


def one_hot(y, C, dtype=np.float32) -> np.ndarray:
    """Encode integer labels as one-hot rows.

    Args:
        y: (batch,) integer class labels in ``[0, C)``.
        C: number of classes.
        dtype: output dtype (float32 as in the handout).
    Returns:
        (batch, C) array with a single 1 per row.
    Raises:
        ValueError: for a label below 0 or at least ``C`` (NumPy would silently
            wrap a negative index to the last class).
    """
    C = require_positive_int(C, "C", "one_hot")
    refuse_masked(y, "y", "one_hot")  # np.asarray would drop the mask and encode the hidden labels
    y = np.asarray(y)
    require_ndim(y, (1,), "y", "one_hot")
    integral_floats = y.size and y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    if y.dtype.kind not in "iu" and not integral_floats and (y.size or y.dtype.kind not in "fb"):
        raise NnlabTypeError(f"one_hot: labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= C):  # (before the cast: a float beyond int64 would make it warn)
        bad = [int(v) if integral_floats else v for v in y[(y < 0) | (y >= C)][:5].tolist()]
        raise NnlabValueError(f"one_hot: labels must lie in [0, {C}), got {bad}")
    if integral_floats:
        y = y.astype(np.int64)
    out = np.zeros((y.shape[0], C), dtype=dtype)
    out[np.arange(y.shape[0]), y.astype(np.intp)] = 1
    return out


def standardize_features(X):
    """Shift every column to mean 0 and scale it to standard deviation 1.

    ``X_std = (X - mu) / sigma`` with ``sigma = std(X) + 1e-8`` so that a constant
    column does not divide by zero.

    Args:
        X: (n, d) features.
    Returns:
        ``(X_std, mu, sigma)``; ``mu`` and ``sigma`` have shape (1, d).
    """
    X = as_float_array(X, "X", "standardize_features", finite=True)
    require_ndim(X, (2,), "X", "standardize_features")
    if X.shape[0] == 0:
        raise NnlabValueError("standardize_features: X has no rows")
    with np.errstate(over="ignore", invalid="ignore"):
        mu = X.mean(axis=0, keepdims=True)
        sigma = X.std(axis=0, keepdims=True) + 1e-8
        Xn = (X - mu) / sigma
    # sigma too: float32 columns of ~1e19 square to inf, and x / inf = 0 would hide it in Xn
    return finite_output(Xn, "standardize_features"), mu, finite_output(sigma, "standardize_features")


def unstandardize_linear_weights(W_std, b_std, mu, sigma):
    """Express a linear model fitted on standardized features in original units.

    ``y = b_std + sum_j W_std[j] (x_j - mu_j) / sigma_j = b_orig + sum_j W_orig[j] x_j``
    with ``W_orig[j] = W_std[j] / sigma_j`` and
    ``b_orig = b_std - sum_j W_std[j] mu_j / sigma_j``.

    Args:
        W_std: (d,) or (1, d) weights on standardized features.
        b_std: scalar bias (or a 1-element array).
        mu, sigma: (1, d) or (d,) column means and scales from ``standardize_features``.
    Returns:
        ``(W_orig, b_orig)``: (d,) array and float.
    """
    where = "unstandardize_linear_weights"
    W = as_float_array(W_std, "W_std", where, finite=True).ravel()
    mu = as_float_array(mu, "mu", where, finite=True).ravel()
    sigma = as_float_array(sigma, "sigma", where, finite=True).ravel()
    b = as_float_array(b_std, "b_std", where, finite=True).ravel()
    if not (W.shape == mu.shape == sigma.shape):
        raise NnlabValueError(
            f"{where}: W_std, mu and sigma must have d entries each, got {W.shape}, {mu.shape}, {sigma.shape}"
        )
    if b.size != 1:
        raise NnlabValueError(f"{where}: b_std must be a single number, got shape {b.shape}")
    if np.any(sigma <= 0):
        raise NnlabValueError(f"{where}: sigma must be positive (it is a standard deviation), got {sigma.tolist()}")
    with np.errstate(over="ignore", invalid="ignore"):
        W_orig = W / sigma
        b_orig = float(b[0] - np.sum(W * mu / sigma))
    finite_output(W_orig, where)
    return W_orig, float(finite_output(b_orig, where))


def assert_close(name, got, want, atol=1e-7, rtol=1e-5, strict=False) -> bool:
    """Print whether ``got`` matches ``want`` within tolerance, with the max abs error.

    As in the handout this prints rather than raises, and returns the verdict;
    pass ``strict=True`` to raise ``AssertionError`` on a mismatch.
    """
    got = as_float_array(got, "got", "assert_close")
    want = as_float_array(want, "want", "assert_close")
    same_shape = got.shape == want.shape
    ok = bool(same_shape and np.allclose(got, want, atol=atol, rtol=rtol))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN: reported as such, not warned
        err = f"{np.max(np.abs(got - want)):.3g}" if same_shape and got.size else "shape mismatch"
    print(f"[{name}] match: {ok} (max abs err ~ {err})")
    if not ok and not same_shape:
        print(" shapes:", got.shape, "vs", want.shape)
    if strict and not ok:
        raise AssertionError(f"[{name}] values differ (max abs err {err})")
    return ok


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return slug or "series"


#: The largest magnitude plot_series hands to matplotlib: beyond it, the axis arithmetic (margins, tick steps)
#: overflows float64 and matplotlib raises (a constant 1.7e308 curve did).
PLOT_LIMIT = 1e300


def _plottable(values: np.ndarray, label: str) -> tuple[np.ndarray, str]:
    """``values`` and their axis label, divided by a power of ten (which the label then names) when their largest
    magnitude exceeds :data:`PLOT_LIMIT`."""
    largest = float(np.max(np.abs(values)))
    if largest <= PLOT_LIMIT:
        return values, label
    exponent = int(np.floor(np.log10(largest)))
    return values / 10.0**exponent, f"{label} (× 1e{exponent})"


def plot_series(xs, ys, title="", path=None, xlabel="step/epoch", ylabel="value", logy=False) -> Path:
    """Plot one curve and write it to a PNG file (the handout's ``plt.show()``, for files).

    Args:
        xs, ys: the curve's x and y values, same length (arrays, lists, ranges or iterators such as generators).
        title: figure title; also names the file when ``path`` is not given.
        path: output file; by default ``$NNLAB_FIGURES/<title>.png`` (``figures/``).
        xlabel, ylabel: axis labels.
        logy: use a logarithmic y axis.
        Values beyond ``PLOT_LIMIT`` in magnitude are drawn divided by a power of ten, named in the axis label.
    Returns:
        the path of the PNG written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # a range, generator or other iterator is read once into a list (np.asarray would make a 0-d object array of it)
    xs, ys = (list(v) if isinstance(v, (range, Iterator)) else v for v in (xs, ys))
    xs = as_float_array(xs, "xs", "plot_series", finite=True)
    ys = as_float_array(ys, "ys", "plot_series", finite=True)
    require_ndim(xs, (1,), "xs", "plot_series")
    require_ndim(ys, (1,), "ys", "plot_series")
    if xs.shape[0] != ys.shape[0] or xs.size == 0:
        raise NnlabValueError(
            f"plot_series: xs and ys must be non-empty and the same length, got {xs.size} and {ys.size}"
        )
    for label, value, kinds in (("title", title, str), ("logy", logy, (bool, np.bool_))):
        if not isinstance(value, kinds):
            raise NnlabTypeError(f"plot_series: {label} must be {'text' if kinds is str else 'True or False'}, "
                                 f"got {value!r}")
    if path is None:
        path = Path(os.environ.get("NNLAB_FIGURES", DEFAULT_FIGURE_DIR)) / f"{_slug(title)}.png"
    check_output_file(path, "plot_series: path")  # a folder or FIFO is refused before any drawing
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    (xs, xlabel), (ys, ylabel) = _plottable(xs, xlabel), _plottable(ys, ylabel)
    ax.plot(xs, ys)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"), "plot_series: path")
    return Path(path)
