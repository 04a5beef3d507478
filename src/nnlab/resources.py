"""Memory: how much a network will need, how much the machine has, and a clear refusal when it cannot fit.

The library allocates what it is asked for, as NumPy and PyTorch do: ``MLP(784, 10**6, 10)``
holds ``(784 * 10**6 + 10**6 + 10**6 * 10 + 10) * 8`` bytes of float64 weights and as much
again for their gradients, and builds it if the machine lets it.  The ``nnlab``
command is more careful, because it runs unattended: before a stage builds its network it
compares :func:`network_bytes` with :func:`available_memory` and refuses, in one line, what
cannot fit.  (Why check at all: on Linux an allocation larger than the free memory often
*succeeds* and the kernel kills the process later, when the pages are touched, with no
message at all.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnlab.errors import NnlabValueError

#: cgroup limit files (v2, then v1) and the usage file beside each: a container's own ceiling.
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


class InsufficientMemoryError(NnlabValueError):
    """A requested size needs more memory than the machine has available."""


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit, usage = Path(limit_file).read_text().strip(), Path(usage_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit():
            return max(int(limit) - int(usage), 0)
        return None  # "max": no limit of its own
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` (psutil's, if installed, else
    ``/proc/meminfo``'s), capped by the container's cgroup limit; ``None`` when unknown."""
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
    except ImportError:
        free = _meminfo_available()
    headroom = _cgroup_headroom()
    if free is None:
        return headroom
    return free if headroom is None else min(free, headroom)


def network_bytes(widths, dtype=np.float64, rows: int = 1) -> int:
    """A lower bound on the memory a fully connected network of layer ``widths`` needs to train.

    ``widths = (in, h1, ..., out)``.  Counted: every weight and bias and its gradient
    (``2 * sum(w_i * w_(i+1) + w_(i+1))`` numbers), and one forward and backward pass over
    ``rows`` rows (each layer's output and its gradient, ``2 * rows * sum(w_(i+1))``).
    Optimizer state and the data are not counted, so the true need is larger.
    """
    widths = [int(w) for w in widths]
    parameters = sum(a * b + b for a, b in zip(widths, widths[1:]))
    activations = int(rows) * sum(widths[1:])
    return 2 * (parameters + activations) * np.dtype(dtype).itemsize


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.3g} GB"


def require_memory(nbytes: int, what: str, advice: str, available: int | None = None) -> None:
    """Raise :class:`InsufficientMemoryError` (one line: the need, what is available, ``advice``) when
    ``nbytes`` exceeds the available memory; nothing when it fits or the amount is unknown."""
    available = available_memory() if available is None else available
    if available is not None and nbytes > available:
        raise InsufficientMemoryError(f"{what} needs at least {_gb(nbytes)} of memory, but only {_gb(available)} "
                                      f"is available; {advice}")
