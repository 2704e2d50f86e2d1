"""Checkpoints: written atomically (:mod:`cityseg_lib.files`), loaded with errors that name the file.

Every file a run produces is written to a temporary file in the same folder and renamed over
the target (:func:`os.replace` is atomic on POSIX), so a run killed at any moment leaves either
the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` ``state`` to ``path`` atomically."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CitysegError(f"{path}: checkpoint not found")
    try:
        # weights_only: our checkpoints hold tensors, numbers, strings and RNG states only
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same to the user
        # torch's message is many lines of advice about weights_only: keep the user's line short
        raise CitysegError(f"{path}: unreadable checkpoint (not a cityseg checkpoint, or truncated: "
                           f"{type(e).__name__})") from None
