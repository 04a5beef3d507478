"""Writing files for the user: output paths checked before any work starts, and one atomic writer.

Every file nnlab writes for a user (a checkpoint, predictions, REPORT.md, the MNIST cache)
goes through :func:`atomic_write`: the data go to a temporary file next to the target, are
flushed to disk, then renamed over it, so the real name only ever holds a whole file.
A symbolic link is written *through*: its target is replaced and the link stays.  A
directory, FIFO, socket or device at the target is refused, never replaced.

:func:`check_output_file` and :func:`check_output_dir` make the same checks up front, so
the command line refuses a bad ``--out``/``--save`` before training for an hour, and
without creating a single folder (they only look; nothing is created until the write).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnlab.errors import NnlabTypeError, NnlabValueError


class PathError(NnlabValueError):
    """A path nnlab was asked to read or write cannot be used: a folder or special file, no writable parent,
    no such file."""


def as_path_text(path, flag: str) -> str:
    """``path`` as text (a ``str`` or ``os.PathLike``), or an ``NnlabTypeError`` naming ``flag``."""
    try:
        return os.fspath(path)
    except TypeError:
        raise NnlabTypeError(f"{flag}: expected a file path, got {path!r}") from None


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _stat(path: Path, label: str):
    """``os.stat`` of ``path`` (following links), ``None`` if it does not exist; other failures in words."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # (a file on the way is named by the caller's walk up)
        return None
    except OSError as exc:  # a symlink loop, a component that is a file, a permission problem
        raise PathError(f"{label}: cannot use this path ({exc.strerror})") from None


def _check_can_create_in(path: Path, label: str) -> None:
    """``path`` (a folder that may not exist yet) can be made and written: its nearest existing ancestor
    is a folder in which a file can be created.  Nothing is left behind."""
    ancestor = path
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    info = _stat(ancestor, label)
    if info is None:  # a dangling symbolic link on the way
        raise PathError(f"{label}: {ancestor} is a broken symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise PathError(f"{label}: {ancestor} is {_kind(info.st_mode) if not stat.S_ISREG(info.st_mode) else 'a file'}"
                              f", not a folder")
    # Why a probe rather than os.access: root passes every permission test, yet cannot create
    # files in /proc or on a read-only mount; trying is the only honest answer.
    probe = ancestor / f".nnlab-probe.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise PathError(f"{label}: cannot write in {ancestor} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path, flag: str = "output") -> Path:
    """Check that a file can be written at ``path``; return the path to replace (a symlink's target).

    Refused, with an :class:`PathError` naming ``flag`` and the path: a name ending in a
    separator, an existing directory/FIFO/socket/device, a parent that is a file or cannot be
    created or written.  Nothing is created.
    """
    text = as_path_text(path, flag)
    label = f"{flag} {text}"
    if not text or text.endswith((os.sep, "/")):
        raise PathError(f"{label}: expected a file name, got a folder name")
    target = Path(os.path.realpath(text))  # a symlink (or a chain of them) is written through
    info = _stat(target, label)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise PathError(f"{label} is {_kind(info.st_mode)}; nnlab writes only regular files")
    _check_can_create_in(target.parent, label)
    return target


def check_output_dir(path, flag: str = "output") -> Path:
    """Check that ``path`` is, or can be created as, a writable folder; return it.  Nothing is created."""
    text = as_path_text(path, flag)
    label = f"{flag} {text}"
    if not text:
        raise PathError(f"{flag}: expected a folder name, got an empty string")
    path = Path(text)
    info = _stat(path, label)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise PathError(f"{label} is {'a file' if stat.S_ISREG(info.st_mode) else _kind(info.st_mode)}, "
                              f"not a folder")
    _check_can_create_in(path, label)
    return path


def check_input_file(path, flag: str = "input") -> Path:
    """Check that ``path`` is an existing regular file nnlab can read; return it.

    A FIFO is refused (reading it would wait forever for a writer), as are folders and devices.
    """
    text = as_path_text(path, flag)
    label = f"{flag} {text}"
    if text == "-":  # many tools read standard input from '-'; nnlab reads files (several passes over them)
        raise PathError(f"{label}: reading from standard input is not supported; save it to a file and give its path")
    try:
        info = os.stat(text)
    except FileNotFoundError:
        raise PathError(f"{label}: file not found") from None
    except OSError as exc:
        raise PathError(f"{label}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise PathError(f"{label} is {_kind(info.st_mode)}; nnlab reads only regular files")
    if not os.access(text, os.R_OK):
        raise PathError(f"{label}: cannot read it (permission denied)")
    return Path(text)


def atomic_write(path, write: Callable, flag: str = "output") -> Path:
    """Write a file at ``path`` through ``write(binary_file)`` so that the real name only ever holds a whole file.

    The checks of :func:`check_output_file` run first (a folder, FIFO, socket or device is
    refused; a symlink is followed and its target replaced).  Missing parent folders are
    created.  The data go to a temporary name beside the target, are flushed to disk and
    renamed over it; on any error the temporary file is removed and the target is left as it
    was.  A file that is replaced keeps its permission bits.  Returns ``path``.
    """
    target = check_output_file(path, flag)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(f"{flag} {os.fspath(path)}: cannot create {target.parent} ({exc.strerror})") from None
    old = _stat(target, flag)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)  # the umask applies, as for open()
    try:
        with open(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if old is not None:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return Path(path)


def atomic_write_text(path, text: str, flag: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), flag)


def atomic_savez(path, arrays: dict, flag: str = "output") -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` at ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: np.savez(fh, **arrays), flag)
