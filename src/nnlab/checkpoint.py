"""Checkpoints: save a model to one ``.npz`` file and load it back, exactly.

A checkpoint holds every parameter array (in ``model.parameters()`` order) and a
small JSON record: the format, the nnlab version, the dtype, the architecture
(enough to rebuild the model) and any ``extra`` the caller adds (Stage 7 stores
its preprocessing there).

Writing is atomic: the file is written under a temporary name in the same folder,
flushed to disk, then renamed, so a crash never leaves half a file under the real
name.  Loading checks everything and raises :class:`CheckpointError` (a
``ValueError``) for a missing, truncated, corrupted or mismatched file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from nnlab._io import atomic_savez
from nnlab.errors import NnlabTypeError, NnlabValueError
from nnlab.layers import Linear, Module, ReLU, Sequential, Tanh

FORMAT = "nnlab-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(NnlabValueError):
    """A checkpoint is missing, damaged, or does not fit the model."""


def architecture(model) -> dict:
    """A JSON-ready description of ``model`` from which :func:`build` makes an identical, untrained copy."""
    from nnlab.models import MLP

    if isinstance(model, MLP):
        return {"type": "MLP", "in_dim": model.l1.in_dim, "hidden_dim": model.l1.out_dim,
                "out_dim": model.l2.out_dim, "nonlin": model.nonlin}
    if isinstance(model, Linear):
        return {"type": "Linear", "in_dim": model.in_dim, "out_dim": model.out_dim, "name": model.name}
    if isinstance(model, (ReLU, Tanh)):
        return {"type": type(model).__name__}
    if isinstance(model, Sequential):
        return {"type": "Sequential", "layers": [architecture(m) for m in model]}
    raise NnlabTypeError(f"cannot save a {type(model).__name__}: only Linear, ReLU, Tanh, Sequential and MLP are known")


def build(arch: dict, dtype=np.float64) -> Module:
    """Rebuild an (untrained) model from :func:`architecture`'s description."""
    from nnlab.models import MLP

    try:
        kind = arch["type"]
        if kind == "MLP":
            return MLP(arch["in_dim"], arch["hidden_dim"], arch["out_dim"], nonlin=arch["nonlin"], dtype=dtype,
                       rng=np.random.default_rng(0))
        if kind == "Linear":
            return Linear(arch["in_dim"], arch["out_dim"], dtype=dtype, rng=np.random.default_rng(0),
                          name=arch.get("name"))
        if kind == "ReLU":
            return ReLU()
        if kind == "Tanh":
            return Tanh()
        if kind == "Sequential":
            return Sequential([build(a, dtype) for a in arch["layers"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint architecture is invalid ({exc})") from None
    raise CheckpointError(f"checkpoint architecture has an unknown layer type {kind!r}")


def save(model, path, extra=None) -> Path:
    """Write ``model`` (and a JSON-ready ``extra`` dict) to ``path`` atomically; returns the path.

    The ``.npz`` suffix is added when missing.
    """
    from nnlab import __version__

    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    params = model.parameters()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "nnlab_version": __version__,
            "architecture": architecture(model), "dtype": str(model.dtype), "n_params": len(params),
            "extra": extra or {}}
    arrays = {f"param_{i}": p.value for i, p in enumerate(params)}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return atomic_savez(path, arrays)


def _read(path: Path):
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "meta" not in f.files:
                raise CheckpointError(f"{path} is not an nnlab checkpoint (no metadata record)")
            meta = json.loads(str(f["meta"]))
            arrays = {k: f[k] for k in f.files if k != "meta"}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable nnlab checkpoint (truncated or corrupted: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nnlab checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format_version')} is not supported")
    return meta, arrays


def _fill(model, meta, arrays, path) -> None:
    params = model.parameters()
    if meta.get("n_params") != len(params) or len(arrays) != len(params):
        raise CheckpointError(f"{path}: holds {len(arrays)} parameter arrays, the model has {len(params)}")
    for i, p in enumerate(params):
        arr = arrays.get(f"param_{i}")
        if arr is None or arr.shape != p.value.shape:
            got = None if arr is None else arr.shape
            raise CheckpointError(f"{path}: parameter {i} ({p.name}) should have shape {p.value.shape}, found {got}")
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            raise CheckpointError(f"{path}: parameter {i} ({p.name}) is not a finite float array")
    for i, p in enumerate(params):
        p.value = arrays[f"param_{i}"].astype(model.dtype, copy=True)
        p.grad = np.zeros_like(p.value)


def load_checkpoint(path):
    """Load a checkpoint; returns ``(model, extra)``."""
    path = Path(path)
    meta, arrays = _read(path)
    try:
        dtype = np.dtype(meta["dtype"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: checkpoint dtype is missing or invalid") from None
    model = build(meta.get("architecture", {}), dtype)
    _fill(model, meta, arrays, path)
    return model, meta.get("extra", {})


def load(path) -> Module:
    """Load the model saved at ``path`` (see :func:`save`)."""
    return load_checkpoint(path)[0]


def load_into(model, path) -> dict:
    """Load ``path``'s weights into an existing ``model`` after checking the architectures match.

    Returns the checkpoint's ``extra`` record.
    """
    path = Path(path)
    meta, arrays = _read(path)
    if meta.get("architecture") != architecture(model):
        raise CheckpointError(f"{path}: architecture {meta.get('architecture')} does not match the model's "
                              f"{architecture(model)}")
    _fill(model, meta, arrays, path)
    return meta.get("extra", {})
