"""Helpers shared by tests/test_misuse.py and tests/test_robustness_doc.py: hostile checkpoints,
the ``nnlab`` command in a real subprocess (signals, peak memory), and a folder's full listing."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

import nnlab

SRC = Path(nnlab.__file__).resolve().parents[1]
#: Stage 7-style feature record of the two-column models below
EXTRA = {"stage": "7", "task": "classification", "classes": ["n", "p"], "labels": ["n", "p"],
         "features_used": ["a", "b"], "feature_names": ["a", "b"], "preprocess": {"mean": [0, 0], "std": [1, 1]}}


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _meta(architecture, extra) -> dict:
    return {"format": "nnlab-checkpoint", "format_version": 2, "nnlab_version": "0", "dtype": "float64",
            "architecture": architecture, "extra": extra}


def _mlp(hidden: int, in_dim: int = 2) -> dict:
    return {"type": "MLP", "config": {"in_dim": in_dim, "hidden_dim": hidden, "out_dim": 2, "init": "xavier",
                                      "nonlin": "relu"}, "training": True}


def _small_arrays() -> dict:
    return {"l1.W": np.zeros((3, 2)), "l1.b": np.zeros(3), "l2.W": np.zeros((2, 3)), "l2.b": np.zeros(2)}


def forge(path: Path, meta, arrays: dict, raw: dict | None = None) -> Path:
    """Write a checkpoint-shaped zip by hand: ``meta`` (a dict, or JSON text), ``state.*`` arrays, raw members."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.npy", _npy(np.array(meta if isinstance(meta, str) else json.dumps(meta))))
        for name, value in arrays.items():
            zf.writestr(f"state.{name}.npy", _npy(value))
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return path


def _deep_record(depth: int) -> str:
    # json.dumps cannot nest this deep, so the record is spelled out as text
    inner = '{"type": "Linear", "config": {"in_dim": 2, "out_dim": 2}}'
    arch = '{"type": "Sequential", "config": {"layers": [' * depth + inner + "]}}" * depth
    return json.dumps(_meta(None, EXTRA))[:-1].replace('"architecture": null', f'"architecture": {arch}') + "}"


def _lying_npy(shape) -> bytes:
    """A .npy whose header declares ``shape`` doubles but which stores only six."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + np.zeros(6).tobytes()


def hostile_checkpoints(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a hostile checkpoint in ``folder``, a fragment of the one line that must refuse it)."""
    folder = Path(folder)
    arrays = _small_arrays()
    state = {"numeric": {"columns": ["a", "b"], "prescale": [0, 0], "fill": None, "mean": [0, 0], "scale": [0, 0]},
             "categorical": None}
    made = {
        "20,000-wide layers (3.2 GB declared)": (
            forge(folder / "wide.npz", _meta(_mlp(20_000, 20_000), EXTRA), arrays), "should have shape (20000, 20000)"),
        "10^6-wide layers (8 TB declared)": (
            forge(folder / "huge.npz", _meta(_mlp(10**6, 10**6), EXTRA), arrays),
            "should have shape (1000000, 1000000)"),
        "5,000 nested Sequentials": (forge(folder / "deep.npz", _deep_record(5000), {}), "nests more than"),
        "headers declaring 10^7-wide arrays over 48 bytes each": (
            forge(folder / "lying.npz", _meta(_mlp(10**7), EXTRA), {},
                  raw={f"state.{name}.npy": _lying_npy(shape) for name, shape in
                       (("l1.W", (10**7, 2)), ("l1.b", (10**7,)), ("l2.W", (2, 10**7)), ("l2.b", (2,)))}),
            "does not hold exactly the bytes"),
        "classes that are not a list": (forge(folder / "classes.npz", _meta(_mlp(3), {**EXTRA, "classes": 5}), arrays),
                                        "classes must be a list"),
        "a preprocessing scale of 0": (forge(folder / "scale0.npz", _meta(_mlp(3), {**EXTRA, "preprocess": state}),
                                             arrays), "scales nonzero"),
        "more classes than outputs": (forge(folder / "classes3.npz",
                                            _meta(_mlp(3), {**EXTRA, "classes": ["a", "b", "c"],
                                                            "labels": ["a", "b", "c"]}), arrays),
                                      "lists 3 classes but its network has 2 outputs"),
    }
    return made


def listing(folder: Path) -> list[tuple[str, str]]:
    """Every entry under ``folder`` (hidden ones too) with its kind: what a rejected command must not change."""
    entries = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "fifo" if path.is_fifo() \
                else "socket" if path.is_socket() else "file"
            entries.append((str(path.relative_to(folder)), kind))
    return sorted(entries)


def command(*argv) -> list[str]:
    """``python -m nnlab argv...`` with this source tree first on the path."""
    return [sys.executable, "-m", "nnlab", *map(str, argv)]


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}


def _default_sigint():  # a test runner may ignore SIGINT; the child must get Python's usual handler
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_a_run(out: Path, stage: str, signum: int, *options, timeout: float = 300.0) -> tuple[int, str]:
    """Start ``nnlab run stage --out out``, wait until its partial folder exists, send ``signum``;
    return ``(exit status, stderr)``."""
    proc = subprocess.Popen(command("run", stage, "--out", out, "--no-progress", *options), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    partial = Path(out) / f".stage{stage}.partial"
    deadline = time.monotonic() + timeout
    while not partial.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run ended before its partial folder appeared: {proc.communicate()[1]}")
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the stage
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def peak_rss_mb(*argv) -> tuple[int, str, float]:
    """Run ``nnlab argv...`` in a subprocess; return ``(exit status, stderr, its peak resident memory in MB)``."""
    proc = subprocess.Popen(command(*argv), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN would mix in others)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    return proc.returncode, err, usage.ru_maxrss / 1024
