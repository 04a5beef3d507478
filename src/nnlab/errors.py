"""nnlab's own error types: one base class, so a caller (and the ``nnlab`` command) can tell them apart.

Every error nnlab raises on purpose derives from :class:`NnlabError`.  Each also derives from the
built-in exception whose meaning it has, so ``except ValueError`` keeps working:

* :class:`NnlabValueError` -- a value that cannot be used (a shape, a range, NaN in the data);
* :class:`NnlabTypeError` -- an argument of the wrong kind (a string where numbers belong);
* :class:`NnlabRuntimeError` -- a call out of order (``backward`` before ``forward``).

The more specific errors (``CSVError``, ``CheckpointError``, ``DatasetError``, ``NonFiniteError``)
subclass :class:`NnlabValueError`.  An error that does *not* derive from ``NnlabError`` (a NumPy
broadcast error, a ``MemoryError``) is a bug in nnlab or a limit of the machine, never a message
written for the user.
"""

from __future__ import annotations


class NnlabError(Exception):
    """Base class of every error nnlab raises on purpose; its message names the function and the value."""


class NnlabValueError(NnlabError, ValueError):
    """An argument has the right type but a value nnlab cannot use."""


class NnlabTypeError(NnlabError, TypeError):
    """An argument has the wrong type."""


class NnlabRuntimeError(NnlabError, RuntimeError):
    """A call made out of order, e.g. ``backward`` before any ``forward``."""
