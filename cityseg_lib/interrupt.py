"""Ctrl-C and SIGTERM on the command line: one line and the shell's exit code, never a traceback.

SIGTERM (``kill``, a scheduler's time limit, SLURM's end of job) is raised as the KeyboardInterrupt
of Ctrl-C, so that it runs every ``finally`` and every handler of Ctrl-C (Ray's ``wait`` re-raises
its own KeyboardInterrupt; without this a Ray driver printed a native stack dump and aborted). A
run stopped either way resumes from its ``last.pt``, which is written atomically.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["install", "outcome"]

_TERMINATED: list[int] = []


def _terminate(signum, frame) -> None:
    _TERMINATED.append(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Raise SIGTERM as KeyboardInterrupt in this process (main thread, default handler only).

    Not in a torchrun process of rank above 0: torchrun stops the other ranks with SIGTERM when one
    fails, and a Python handler runs only between bytecodes, so a rank waiting inside a collective or
    for the group to form (its rank 0 refused the run in one line) ignored it until torchrun killed
    it 30 s later. Such a rank writes no file and prints nothing; it stops at once."""
    if os.environ.get("RANK", "0") != "0":
        return
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def outcome(err: BaseException) -> tuple[str, int] | None:
    """``("interrupted", 130)`` or ``("terminated", 143)`` when ``err`` is, or was raised while
    handling, a Ctrl-C or SIGTERM (e.g. torch.save's "unexpected pos" after an interrupted write);
    None for any other error."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return ("terminated", 143) if _TERMINATED else ("interrupted", 130)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
