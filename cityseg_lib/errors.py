"""The one exception type for user-facing problems (bad data, bad params, missing files).

The CLI prints ``str(err)`` on one line and exits 2; anything else is a bug and keeps its
traceback. Messages name the file, key or value at fault.
"""

from __future__ import annotations

__all__ = ["CitysegError", "one_line"]


class CitysegError(Exception):
    """A problem with the user's input; the message is one line that names what is at fault."""


def one_line(err: BaseException | str, limit: int = 300) -> str:
    """An exception (or a text) as one line of at most ``limit`` characters, for a CitysegError message."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
