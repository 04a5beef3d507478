"""Atomic file writing, shared by checkpoints and the MNIST cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def atomic_savez(path, arrays: dict) -> Path:
    """Write ``arrays`` as an ``.npz`` at ``path`` so that the real name only ever holds a whole file.

    The data go to a temporary name in the same folder, are flushed to disk, then renamed over
    ``path``; on any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
