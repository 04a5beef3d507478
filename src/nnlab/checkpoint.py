"""Checkpoints: save a model to one ``.npz`` file and load it back, exactly.

A checkpoint is an uncompressed ``.npz`` (a zip of ``.npy`` arrays) holding

* ``meta``: a JSON record -- the format and its version, the nnlab version, the dtype, the
  architecture (:func:`nnlab.layers.describe`: every module's registered type, constructor
  arguments and training mode) and any ``extra`` the caller adds (Stages 5 and 7 store the
  preprocessing there, as plain numbers);
* ``state.<name>``: every parameter and buffer, named as :meth:`Module.state_dict` names them
  (``state.0.W``, ``state.l1.b``, ...).

Writing is atomic: the file is written under a temporary name in the same folder, flushed to
disk, then renamed, so a crash never leaves half a file under the real name.

Loading treats the file as untrusted.  Before anything is allocated it checks the zip's
layout (stored ``.npy`` members only, sizes that fit the file), the metadata (bounded size and
nesting, known module types), and that every array the architecture declares is present with
the declared shape and a float dtype, as read from the ``.npy`` headers alone.  Only then is
the model built and filled.  A hostile file therefore costs milliseconds and megabytes and
ends in one :class:`CheckpointError`.  Nothing is ever unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from nnlab._io import PathError, as_path_text, atomic_savez
from nnlab.errors import NnlabError, NnlabValueError
from nnlab.layers import MODULE_TYPES, Module, build, describe, state_spec

FORMAT = "nnlab-checkpoint"
FORMAT_VERSION = 2

#: Largest metadata record read (bytes); a real one is a few kilobytes.
MAX_META_BYTES = 1 << 20
#: Deepest nesting of the metadata (containers inside containers); real models use a handful.
MAX_DEPTH = 64
#: Most modules in one architecture.
MAX_MODULES = 100_000
FLOAT_DTYPES = ("float16", "float32", "float64")


class CheckpointError(NnlabValueError):
    """A checkpoint is missing, damaged, hostile, or does not fit the model."""


def save(model, path, extra=None) -> Path:
    """Write ``model`` (and a JSON-ready ``extra`` dict) to ``path`` atomically; returns the path.

    The file name rule, shared with :func:`load`: ``.npz`` is appended when ``path`` does not
    end in it (``save("m2")`` writes ``m2.npz``, ``save("m3.pt")`` writes ``m3.pt.npz``), and
    ``load("m2")`` / ``load("m3.pt")`` read those files.  Every module in ``model`` must be of a
    registered type (:func:`nnlab.layers.register_module`).

    Raises:
        CheckpointError: a parameter or buffer holds NaN or inf (:func:`load` would refuse the
            file); nothing is written.
    """
    from nnlab import __version__

    path = checkpoint_path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "nnlab_version": __version__,
            "architecture": describe(model), "dtype": str(model.dtype), "extra": extra or {}}
    arrays = {f"state.{name}": np.asarray(value) for name, value in model.state_dict().items()}
    for name, value in arrays.items():
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise CheckpointError(f"save: {path}: {name[len('state.'):]} holds NaN or infinite values, which load "
                                  "refuses (did training diverge?); nothing was written")
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return atomic_savez(path, arrays, "save")


def checkpoint_path(path) -> Path:
    """The file :func:`save` writes for ``path``: ``path`` itself if it ends in ``.npz``, else ``path + ".npz"``."""
    text = as_path_text(path, "save")
    if not text or text.endswith(("/", os.sep)):
        raise PathError(f"save: expected a file name, got {text!r}")
    path = Path(text)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _located(path) -> Path:
    """``path`` if anything is there, else ``path + ".npz"`` when that exists: the file ``save(path)`` wrote."""
    path = Path(path)
    if os.path.lexists(path) or path.suffix == ".npz":
        return path
    named = path.with_name(path.name + ".npz")
    return named if named.exists() else path


def _open(path: Path) -> zipfile.ZipFile:
    try:
        info = path.stat()
    except FileNotFoundError:
        also = "" if path.suffix == ".npz" else f" (nor {path.name}.npz, the name save gives it)"
        raise CheckpointError(f"checkpoint not found: {path}{also}") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):  # a directory, a FIFO (reading it would block), a device
        raise CheckpointError(f"{path} is not a regular file, so it cannot be a checkpoint")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable nnlab checkpoint (truncated or corrupted: {exc})") from None


def _members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The ``.npy`` members by array name, after checking they are stored plainly and fit in the file."""
    size = path.stat().st_size
    members = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy") or info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{path} is not an nnlab checkpoint (unexpected member {info.filename!r})")
        if info.file_size > size:
            raise CheckpointError(f"{path}: member {info.filename!r} claims {info.file_size} bytes, more than "
                                  f"the whole file ({size} bytes)")
        members[info.filename[: -len(".npy")]] = info
    if sum(info.file_size for info in zf.infolist()) > size:  # stored members never overlap in a real file
        raise CheckpointError(f"{path}: its members claim more bytes in total than the whole file ({size} bytes)")
    if "meta" not in members:
        raise CheckpointError(f"{path} is not an nnlab checkpoint (no metadata record)")
    return members


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """``(shape, dtype, header_bytes)`` of one ``.npy`` member, read without reading its data."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = read[version](fh, max_header_size=10_000)
        return shape, dtype, fh.tell()


def _depth(obj, limit: int) -> int:
    """Nesting depth of a JSON value, without recursion (a hostile record may nest thousands deep)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _check_architecture(arch, path: Path) -> None:
    """Every node is ``{"type": <registered>, "config": {...}}``; bounded depth and size."""
    # Each module adds three levels (record, config, list of parts): bound the raw nesting first.
    if _depth(arch, 3 * MAX_DEPTH) > 3 * MAX_DEPTH:
        raise CheckpointError(f"{path}: the architecture nests more than {MAX_DEPTH} modules deep")
    stack, count = [arch], 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_MODULES:
            raise CheckpointError(f"{path}: the architecture holds more than {MAX_MODULES} modules")
        if not isinstance(node, dict) or not isinstance(node.get("config"), dict):
            raise CheckpointError(f"{path}: checkpoint architecture is invalid (a module record without a config)")
        if node.get("type") not in MODULE_TYPES:
            raise CheckpointError(f"{path}: checkpoint architecture has an unknown layer type {node.get('type')!r} "
                                  f"(known: {', '.join(sorted(MODULE_TYPES))})")
        for value in node["config"].values():
            if isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, dict) and "type" in v)


def _read_meta(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> dict:
    if info.file_size > MAX_META_BYTES:
        raise CheckpointError(f"{path}: the metadata record is {info.file_size} bytes (at most {MAX_META_BYTES})")
    with zf.open(info) as fh:
        record = np.load(fh, allow_pickle=False)
    if record.dtype.kind != "U" or record.shape != ():
        raise CheckpointError(f"{path} is not an nnlab checkpoint (the metadata record is not text)")
    try:
        meta = json.loads(str(record))
    except RecursionError:  # JSON nested thousands deep: refused before any module is built
        raise CheckpointError(f"{path}: the metadata nests more than {MAX_DEPTH} modules deep") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nnlab checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format_version')!r} is not supported (this "
                              f"nnlab reads format {FORMAT_VERSION}; save the model again with this version)")
    if meta.get("dtype") not in FLOAT_DTYPES:
        raise CheckpointError(f"{path}: checkpoint dtype must be one of {', '.join(FLOAT_DTYPES)}, "
                              f"got {meta.get('dtype')!r}")
    if not isinstance(meta.get("extra", {}), dict):
        raise CheckpointError(f"{path}: the checkpoint's extra record must be a JSON object")
    _check_architecture(meta.get("architecture"), path)
    return meta


def _declared(meta: dict, path: Path) -> dict[str, tuple]:
    """The arrays the architecture declares, from its records alone (nothing is built)."""
    try:
        spec = state_spec(meta["architecture"])
    except (NnlabError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"{path}: checkpoint architecture is invalid ({exc})") from None
    return {f"state.{name}": tuple(shape) for name, shape in spec.items()}


def _check_arrays(zf, members: dict, declared: dict, path: Path) -> None:
    """Every declared array present with its declared shape, a float dtype and exactly its bytes."""
    stored = {name for name in members if name != "meta"}
    if stored != set(declared):
        missing, unexpected = sorted(set(declared) - stored), sorted(stored - set(declared))
        raise CheckpointError(f"{path}: holds {len(stored)} arrays, the architecture declares {len(declared)}"
                              + (f"; missing {missing[:5]}" if missing else "")
                              + (f"; unexpected {unexpected[:5]}" if unexpected else ""))
    for name, shape in declared.items():
        shape_found, dtype, header = _header(zf, members[name])
        label = name[len("state."):]
        if shape_found != shape:
            raise CheckpointError(f"{path}: {label} should have shape {shape}, found {shape_found}")
        if dtype.kind != "f":
            raise CheckpointError(f"{path}: {label} is not a float array (dtype {dtype})")
        if members[name].file_size != header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise CheckpointError(f"{path}: {label} does not hold exactly the bytes its shape needs")


def _read(path: Path):
    """``(meta, arrays)`` of a checkpoint that passed every check; the arrays are not yet in a model."""
    path = Path(path)
    with _open(path) as zf:
        try:
            members = _members(zf, path)
            meta = _read_meta(zf, members["meta"], path)
            declared = _declared(meta, path)
            _check_arrays(zf, members, declared, path)
            arrays = {}
            for name in declared:
                with zf.open(members[name]) as fh:
                    arrays[name[len("state."):]] = np.load(fh, allow_pickle=False)
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, RecursionError) as exc:
            raise CheckpointError(f"{path} is not a readable nnlab checkpoint (truncated or corrupted: {exc})") \
                from None
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values")
    return meta, arrays


def _build(meta: dict, path: Path) -> Module:
    try:
        return build(meta["architecture"], np.dtype(meta["dtype"]))
    except (NnlabError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint architecture is invalid ({exc})") from None


def load_checkpoint(path):
    """Load a checkpoint; returns ``(model, extra)``.

    Raises:
        CheckpointError: for a missing, truncated, corrupted, hostile or unsupported file.
    """
    path = _located(as_path_text(path, "load"))
    meta, arrays = _read(path)
    model = _build(meta, path)
    model.load_state_dict(arrays)
    return model, meta.get("extra", {})


def load(path) -> Module:
    """Load the model saved at ``path`` (see :func:`save`).

    ``path`` is read if it exists; otherwise ``path + ".npz"``, the file ``save(path)`` writes.
    """
    return load_checkpoint(path)[0]


def load_into(model, path) -> dict:
    """Load ``path``'s weights into an existing ``model`` after checking the architectures match.

    Returns the checkpoint's ``extra`` record.
    """
    path = _located(as_path_text(path, "load_into"))
    meta, arrays = _read(path)
    theirs, ours = meta.get("architecture"), describe(model)
    if _without_mode(theirs) != _without_mode(ours):
        raise CheckpointError(f"{path}: architecture {theirs} does not match the model's {ours}")
    model.load_state_dict(arrays)
    return meta.get("extra", {})


def _without_mode(arch):
    """An architecture record with the training flags dropped (a mode is not a shape)."""
    if isinstance(arch, dict):
        return {k: _without_mode(v) for k, v in arch.items() if k != "training"}
    if isinstance(arch, list):
        return [_without_mode(v) for v in arch]
    return arch
