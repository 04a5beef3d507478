"""Figure helpers for the stages: curves, fits, bars, confusion matrices, written as PNG.

Matplotlib's object API with the Agg canvas is used (no ``pyplot`` state, no
screen), so figures are the same on a laptop and in CI.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np


def _figure(size=(6.4, 4.2)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _quiet(draw):
    """Silence Matplotlib's and NumPy's warnings while drawing.

    A diverged run's curves hold values near 1e300, which make both grumble about
    overflow; the figure is still drawn, and the command stamps it DIVERGED.
    """

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return draw(*args, **kwargs)

    return wrapper


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    return path


@_quiet
def curves(path, series, title, xlabel="epoch", ylabel="loss", logy=False, logx=False, hline=None, size=(6.4, 4.2),
           ylim=None):
    """Plot several named curves on one set of axes.

    Args:
        path: PNG to write.
        series: ``{label: y}`` (x = 0..len-1), ``{label: (x, y)}`` or ``{label: (x, y, style)}``
            with ``style`` a dict of Matplotlib line options (``color``, ``ls``, ...).
        hline: optional ``(y, label)`` drawn as a dashed reference line.
        ylim: optional ``(low, high)`` for the y axis (e.g. to keep a diverging curve from
            flattening the others).
    """
    fig = _figure(size)
    ax = fig.add_subplot()
    for label, data in series.items():
        if not isinstance(data, tuple):
            data = (np.arange(len(data)), data)
        x, y = data[:2]
        style = {"lw": 1.4, **(data[2] if len(data) > 2 else {})}
        ax.plot(x, y, label=label, **style)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if hline is not None:
        ax.axhline(hline[0], ls="--", color="grey", lw=1, label=hline[1])
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("symlog", linthresh=1e-3)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1 or hline is not None:
        ax.legend(fontsize=8)
    return _save(fig, path)


@_quiet
def fit(path, x, y, fits, title, truth=None, xlabel="x", ylabel="y"):
    """Scatter the data and draw fitted curves over it.

    Args:
        x, y: the data points.
        fits: ``{label: yhat}`` evaluated at ``x``.
        truth: optional ``(x, y)`` of the noise-free target.
    """
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(x, y, s=6, alpha=0.35, color="grey", label="data")
    if truth is not None:
        ax.plot(*truth, color="black", ls="--", lw=1.2, label="ground truth")
    for label, yhat in fits.items():
        ax.plot(x, yhat, lw=1.8, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_quiet
def bars(path, labels, groups, title, ylabel="value"):
    """Grouped bar chart: ``groups`` is ``{series label: values per label}``."""
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.8 / max(len(groups), 1)
    pos = np.arange(len(labels))
    for i, (name, values) in enumerate(groups.items()):
        ax.bar(pos + (i - (len(groups) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(pos, labels)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    if len(groups) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


@_quiet
def confusion(path, cm, title, labels=None):
    """Confusion matrix as an annotated heat map (rows: true class, columns: predicted)."""
    cm = np.asarray(cm)
    labels = list(range(cm.shape[0])) if labels is None else labels
    fig = _figure((5.6, 5.0))
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(title=title, xlabel="predicted", ylabel="true")
    top = cm.max() if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > top / 2 else "black")
    return _save(fig, path)


@_quiet
def image_grid(path, images, titles, title, shape):
    """Show a few images (e.g. misclassified digits) with a caption each."""
    n = len(images)
    cols = min(n, 8)
    rows = max(1, -(-n // cols))
    fig = _figure((1.3 * cols, 1.5 * rows + 0.4))
    for k in range(n):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(np.asarray(images[k]).reshape(shape), cmap="gray_r")
        ax.set_title(titles[k], fontsize=7)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


@_quiet
def filters(path, weights, title):
    """Convolution filters as small images, one per output channel (first input channel), on one colour scale.

    ``weights`` is (out, in, kh, kw); red is positive, blue negative, white 0, and the scale
    is symmetric and shared, so that filters can be compared with each other.
    """
    weights = np.asarray(weights)[:, 0]
    limit = float(np.abs(weights).max()) or 1.0
    n = len(weights)
    cols = min(n, 8)
    rows = max(1, -(-n // cols))
    fig = _figure((1.1 * cols + 0.8, 1.2 * rows + 0.5))
    for k in range(n):
        ax = fig.add_subplot(rows, cols, k + 1)
        im = ax.imshow(weights[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(k), fontsize=7)
        ax.axis("off")
    fig.colorbar(im, ax=fig.axes, fraction=0.02)
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})  # (no tight_layout: it cannot place the shared colour bar)
    return path


@_quiet
def dots(path, groups, title, ylabel="value", target=None):
    """One column of points per group (e.g. per-seed accuracies), with the mean marked.

    Args:
        groups: ``{label: values}``.
        target: optional ``(y, label)`` reference line.
    """
    fig = _figure()
    ax = fig.add_subplot()
    for i, values in enumerate(groups.values()):
        values = np.asarray(values, dtype=float)
        ax.scatter(np.full(values.shape, i), values, s=28, alpha=0.7)
        ax.hlines(values.mean(), i - 0.25, i + 0.25, color="black", lw=2)
    if target is not None:
        ax.axhline(target[0], ls="--", color="crimson", lw=1, label=target[1])
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(groups)), list(groups), fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


@_quiet
def stamp(path, text) -> Path:
    """Overlay a red banner (e.g. "DIVERGED") on an existing PNG, in place."""
    from matplotlib.image import imread

    image = imread(str(path))
    h, w = image.shape[:2]
    fig = _figure((w / 100, h / 100))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.axis("off")
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=28, color="crimson",
            alpha=0.55, rotation=20, weight="bold")
    fig.savefig(path, metadata={"Software": None})
    return Path(path)
