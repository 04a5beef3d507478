"""Input validation shared by every public function.

NumPy is permissive: it broadcasts mismatched shapes, wraps negative indices and
turns object arrays into surprises.  These helpers turn such inputs into one clear
``ValueError`` or ``TypeError`` that names the function, what it expected and what
it was given.
"""

from __future__ import annotations

import functools

import numpy as np

from nnlab.errors import NnlabTypeError, NnlabValueError

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


class NonFiniteError(NnlabValueError):
    """An array that must be finite holds NaN or infinity."""


def as_float_array(value, name: str, where: str, dtype=None, finite=False) -> np.ndarray:
    """Return ``value`` as a floating-point ndarray, or raise a clear error.

    Float arrays keep their dtype (float32 stays float32; float16 becomes float32,
    since half precision overflows at 65504 and NumPy has no fast half-precision
    matrix product); integers and booleans become ``dtype`` (float64 when not
    given).  Object, string and complex data are rejected with a ``TypeError``.
    With ``finite=True``, NaN or infinity is a ``ValueError``.
    """
    if type(value) is np.ndarray and value.dtype.char in "fd" and (dtype is None or value.dtype == dtype) \
            and not finite:  # the common case, answered before any other work
        return value
    refuse_masked(value, name, where)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists, etc.
        raise NnlabTypeError(f"{where}: {name} must be a numeric array, got {type(value).__name__} ({exc})") from None
    kind = arr.dtype.kind
    if kind == "f":
        if dtype is None and arr.dtype == np.float16:
            dtype = np.float32
        if dtype is not None:
            with np.errstate(over="ignore"):  # an overflowing cast becomes inf, reported below
                arr = arr.astype(dtype, copy=False)
    elif kind in "biu":
        arr = arr.astype(np.float64 if dtype is None else dtype)
    else:
        raise NnlabTypeError(f"{where}: {name} must hold real numbers, got dtype {arr.dtype}")
    if finite:
        require_finite(arr, name, where)
    return arr


def float_dtype(dtype, where: str) -> np.dtype:
    """``dtype`` as a NumPy floating dtype, or an ``NnlabTypeError`` naming ``where`` and what was given."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise NnlabTypeError(f"{where}: dtype must be a float type (np.float32 or np.float64), got {dtype!r}, "
                             "which is not a NumPy data type") from None
    if resolved.kind != "f":
        raise NnlabTypeError(f"{where}: dtype must be a float type (np.float32 or np.float64), got {resolved}")
    return resolved


def refuse_masked(value, name: str, where: str) -> None:
    """Raise ``NnlabValueError`` if ``value`` is a masked array with masked entries.

    Why: ``np.asarray`` drops the mask, so the values under it (a -999 sentinel, say) would be
    used as data.  A masked array with nothing masked is plain data and passes.
    """
    if isinstance(value, np.ma.MaskedArray):
        masked = int(np.ma.count_masked(value))
        if masked:
            raise NnlabValueError(f"{where}: {name} is a masked array with {masked} masked value(s), whose "
                                  "hidden values would be used as data; fill or drop them first (e.g. "
                                  f"{name}.filled(...) or keep only the rows without a mask)")


def require_ndim(arr: np.ndarray, allowed: tuple[int, ...], name: str, where: str) -> None:
    """Raise ``ValueError`` unless ``arr.ndim`` is one of ``allowed``."""
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise NnlabValueError(f"{where}: {name} must be {want}, got shape {arr.shape}")


def require_same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str], where: str) -> None:
    """Raise ``ValueError`` naming both shapes when ``a`` and ``b`` differ in shape."""
    if a.shape != b.shape:
        hint = ""
        if a.ndim == 2 and a.shape[1] == 1 and b.shape == a.shape[:1]:  # the usual slip: y of shape (n,)
            hint = f"; pass {names[1]}.reshape(-1, 1)"
        raise NnlabValueError(
            f"{where}: {names[0]} and {names[1]} must have the same shape, "
            f"got {names[0]} {a.shape} and {names[1]} {b.shape}{hint}"
        )


def require_positive_int(value, name: str, where: str) -> int:
    """Return ``value`` as an int, raising ``ValueError``/``TypeError`` unless it is >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise NnlabTypeError(f"{where}: {name} must be a positive integer, got {value!r}")
    if value < 1:
        raise NnlabValueError(f"{where}: {name} must be a positive integer, got {value}")
    if value > np.iinfo(np.intp).max:  # no array can have this many elements along one axis
        raise NnlabValueError(f"{where}: {name} must be at most {np.iinfo(np.intp).max} (the largest array "
                              f"dimension), got {value}")
    return int(value)


def as_real_number(value, name: str, where: str) -> float:
    """``value`` (an int, float or NumPy scalar, not a bool) as a Python float, or an ``NnlabTypeError``
    naming ``where`` and ``name``.  Why not plain ``float()``: it accepts ``"1e-3"`` and ``True``, and
    its own errors do not say which argument was wrong."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise NnlabTypeError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def require_finite(arr: np.ndarray, name: str, where: str) -> None:
    """Raise ``NonFiniteError`` (a ``ValueError``) if ``arr`` holds NaN or infinity."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise NonFiniteError(f"{where}: {name} holds {bad} non-finite value(s) (NaN or inf)")


def finite_output(value, where: str):
    """Return ``value`` if it is finite; otherwise raise ``NonFiniteError`` (an overflow, never a silent inf)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise overflow_error(where)
    return value


def overflow_error(where: str) -> NonFiniteError:
    """The error for a non-finite result computed from finite inputs."""
    return NonFiniteError(f"{where}: the result overflowed to inf/NaN; the inputs are too large in magnitude")


def scan_result(out, x, where: str, x_name: str = "input", params=()):
    """Return ``out`` if it is finite; otherwise raise ``NonFiniteError`` naming the culprit.

    The one NaN/inf scan of a checked forward.  It looks at the result, which is non-finite
    whenever the input is (for the modules that use it), so a good input costs one scan
    of the (usually smaller) result; only on failure are ``x`` and then the module's
    parameters ``params`` scanned, to say whether the
    input or a parameter held NaN/inf, or the arithmetic overflowed.  ``params``: ``(name, array)``
    pairs, or a function returning them (called only on failure).  ``x=None`` means the input was checked already.
    """
    if np.isfinite(out).all():
        return out
    if x is not None:
        require_finite(x, x_name, where)
    if callable(params):  # listed only now, on failure: naming every parameter costs more than the scan
        params = params()
    largest = 0.0
    for name, value in params:
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise NonFiniteError(f"{where}: parameter {name} holds NaN/inf (training diverged: lower the "
                                 "learning rate; or it was assigned so)")
        if value.size:
            largest = max(largest, float(np.max(np.abs(value))))
    if params:
        raise NonFiniteError(f"{where}: the result overflowed to inf/NaN from finite inputs and weights (largest "
                             f"|weight| {largest:.3g}): the weights diverged (lower the learning rate) or the inputs "
                             "are too large in magnitude (standardise them)")
    raise overflow_error(where)


@functools.lru_cache(maxsize=16)
def constant_array(shape: tuple, fill: float, dtype) -> np.ndarray:
    """A read-only array of ``shape`` filled with ``fill``, made once and reused across calls.

    Why: the unchecked cores need the same small constants every step (zeros for ReLU, a
    vector of ones that turns a column sum into one BLAS matrix-vector product); making
    them once saves an allocation and a fill per call.
    """
    arr = np.full(shape, fill, dtype)
    arr.flags.writeable = False
    return arr


def zeros_like_cached(x: np.ndarray) -> np.ndarray:
    """A read-only array of zeros shaped like ``x``, reused across calls.

    Why: ``np.maximum(x, 0)`` takes NumPy's unvectorised scalar path, about 3x slower than
    ``np.maximum(x, zeros)`` against a full array of zeros (same result, bit for bit).
    """
    return constant_array(x.shape, 0, x.dtype)
