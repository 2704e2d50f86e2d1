"""Provenance: the git commit of the code that runs, package versions and hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

__all__ = ["git_commit", "environment_info"]


def git_commit() -> str:
    """Git commit of the code that runs (the package's own checkout, wherever the data and runs
    live), ``+dirty`` with uncommitted changes to tracked files, or ``unknown`` outside git.

    The dirty check compares notebooks byte for byte (``cat`` instead of the clone's nbstripout
    filter): git re-reads "racily clean" files of a fresh clone, and one Python start-up per notebook
    took longer than the time limit on a loaded CI machine, which lost the commit itself."""
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0 or not out.stdout.strip():
        return "unknown"
    commit = out.stdout.strip()
    try:
        status = subprocess.run(
            ["git", "-c", "filter.nbstripout.clean=cat", "-c", "filter.nbstripout.required=false",
             "status", "--porcelain", "--untracked-files=no"],
            cwd=src, capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return commit + "+unchecked"
    if status.returncode != 0:
        return commit + "+unchecked"
    return commit + ("+dirty" if status.stdout.strip() else "")


def environment_info() -> dict:
    """Git commit, package versions and hardware, for provenance."""
    import numpy
    import timm
    import torch
    import torchvision

    from cityseg_lib.train.setup import cpu_has_amx

    cuda = torch.cuda.is_available()
    return {
        "commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})",
        "cuda": torch.version.cuda if cuda else None,
        "cpu_amx": cpu_has_amx(),  # native bf16 matrix products on the CPU (cpu_bf16=auto uses them)
    }
