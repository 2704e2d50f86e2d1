"""Atomic file writes, the one way the package writes a file it may be killed in the middle of.

Every file is written to a temporary file in the same folder, flushed to disk and renamed over
the target (:func:`os.replace` is atomic on POSIX), so a process killed at any moment leaves
either the old file or the new one, never a truncated one. :func:`write_new` refuses to replace
an existing file (outputs that must never overwrite anything, such as predictions), and
:func:`set_aside` moves a finished run or sweep out of the way, whole, instead of deleting it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from cityseg_lib.errors import CitysegError

__all__ = ["json_safe", "atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_csv",
           "write_new", "set_aside", "REPLACED_DIR"]

REPLACED_DIR = ".replaced"  # beside the runs (or sweeps) of a profile: what an explicit retrain replaced


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone gives 0600


def _naming(path: Path, err: BaseException) -> OSError | None:
    """The file-system error behind ``err`` (a full disk, a read-only or vanished folder) as an
    :class:`OSError` naming ``path``, the file being written; None when ``err`` is no such error.

    A failed ``write`` names no file, and the temporary file's name means nothing to the user;
    ``torch.save`` reports a failed write as a ``RuntimeError`` ("unexpected pos ...") whose context
    is the ``OSError``. The CLI prints ``PATH: CAUSE`` (exit 2); the type stays an OSError (not a
    :class:`CitysegError`), so a sweep stops on it rather than recording the trial as failed.
    """
    cause = err
    while isinstance(cause, Exception) and not isinstance(cause, OSError):
        cause = cause.__context__
    if not isinstance(cause, OSError):
        return None
    return OSError(cause.errno, cause.strerror or str(cause), str(path))  # ENOSPC's message, EACCES a PermissionError


def _temp_beside(path: Path, write: Callable[[BinaryIO], Any]) -> str:
    """A temporary file beside ``path`` holding what ``write(f)`` wrote, on disk (fsync); its name.
    A write that fails leaves no temporary file and raises an :class:`OSError` naming ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _naming(path, e) from e
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        named = _naming(path, e)
        if named is None:
            raise
        raise named from e
    return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it over ``path``. On any
    failure ``path`` is as it was and no temporary file is left; a file-system error (a full disk...)
    is an :class:`OSError` naming ``path``."""
    tmp = _temp_beside(Path(path), write)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (an absent class's IoU is NaN) as ``None``, so that
    ``json.dumps(..., allow_nan=False)`` writes strict JSON (``null``) that any parser reads: for
    result files users read with other tools (``eval_*.json``, ``evaluate-folder``, ``check-data``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write_json(path: str | os.PathLike, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def atomic_write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], fields: list[str]) -> None:
    """A CSV with header ``fields`` (missing values empty, extra keys an error)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_new(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Write a file that must not exist yet: the temporary file is linked into place with
    :func:`os.link`, which fails if ``path`` exists, so a concurrent writer cannot be overwritten."""
    path = Path(path)
    if path.exists():
        raise CitysegError(f"{path}: exists already; refusing to overwrite it")
    tmp = _temp_beside(path, write)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise CitysegError(f"{path}: exists already; refusing to overwrite it") from None
    except OSError:  # a file system without hard links: the check above, then a rename
        if path.exists():
            raise CitysegError(f"{path}: exists already; refusing to overwrite it") from None
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def set_aside(folder: str | os.PathLike) -> Path:
    """Move ``folder`` whole to ``<parent>/.replaced/<name>.<UTC time>/`` and return its new path.

    What an explicit retrain does with the finished run (or sweep) it replaces: nothing a user
    made is deleted. One rename on the same file system, so a process killed at any moment
    leaves the folder either where it was or complete in its new place. The hidden folder is one
    level below the runs, where no lookup of a run or sweep by name looks.
    """
    folder = Path(folder)
    base = folder.parent / REPLACED_DIR / f"{folder.name}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    base.parent.mkdir(parents=True, exist_ok=True)
    dest, n = base, 1
    while dest.exists():  # two retrains within one second
        dest, n = base.with_name(f"{base.name}-{n}"), n + 1
    os.replace(folder, dest)
    return dest
