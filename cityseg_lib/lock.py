"""One process per folder: an advisory lock on ``FOLDER/.lock`` that names its holder.

Runs and sweeps take this lock before they write. The lock is a POSIX ``flock`` on an open
file, so the kernel releases it when the holder dies, however it dies (SIGKILL included): a
stale lock of a dead process is simply taken over by the next one. The file also holds the
holder's pid, host and command line, so the process that is refused can say who holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cityseg_lib.errors import CitysegError

__all__ = ["folder_lock", "lock_holder"]

LOCK_NAME = ".lock"
_HELD: set[Path] = set()  # folders this process holds: nested acquisitions pass through


def lock_holder(folder: str | os.PathLike) -> dict:
    """What the lock file of ``folder`` says about its (last) holder; ``{}`` when unreadable."""
    try:
        return json.loads((Path(folder) / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    cmd = " ".join(info.get("argv", []))[:120]
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')} ({cmd})"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "run") -> Iterator[None]:
    """Hold ``folder/.lock`` for the duration of the block.

    Raises :class:`CitysegError` at once (no waiting) when another live process holds it; the
    message names the folder and the holder. On systems without ``fcntl`` no lock is taken.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    folder = Path(folder).resolve()
    if folder in _HELD:  # re-entrant within one process (flock would refuse our own second open)
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CitysegError(f"{folder}: another {what} is using this folder: {_describe(lock_holder(folder))}") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "argv": sys.argv[:8],
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as e:  # a full disk: name the file (a failed write names none)
            raise OSError(e.errno, e.strerror, str(path)) from None
        _HELD.add(folder)
        try:
            yield
        finally:
            _HELD.discard(folder)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
