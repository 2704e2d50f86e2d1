"""Where things live: the project root, the data root, runs, caches and reports.

Every path the package uses derives from here, so notebooks, the CLI and the tests agree.
The dataset root comes from an explicit argument, else ``$CITYSCAPES_DATASET`` (the variable
the official cityscapesScripts read).
"""

from __future__ import annotations

import os
from pathlib import Path

from cityseg_lib.errors import CitysegError

__all__ = [
    "CITYSCAPES_URL",
    "project_root",
    "resolve_data_root",
    "default_cache_dir",
    "runs_dir",
    "reports_dir",
    "PROFILES",
    "source_root",
    "params_dir",
    "notebooks_dir",
]

PROFILES = ("demo", "full", "smoke")

CITYSCAPES_URL = "https://www.cityscapes-dataset.com/downloads/"


def project_root() -> Path:
    """The repository root when the package is installed in editable mode, else the cwd.

    ``$CITYSEG_HOME`` overrides both (tests use it to keep outputs in a temporary folder).
    """
    env = os.environ.get("CITYSEG_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "cityseg_lib").is_dir():
        return here
    return Path.cwd().resolve()


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """The Cityscapes root: ``root`` if given (non-empty), else ``$CITYSCAPES_DATASET``."""
    if root in (None, ""):
        root = os.environ.get("CITYSCAPES_DATASET", "")
    if not root:
        raise CitysegError(
            "no dataset root: pass --root / data_root, or set CITYSCAPES_DATASET to the folder that "
            f"holds leftImg8bit/ and gtFine/ (download from {CITYSCAPES_URL}, or run `cityseg make-demo-data`)"
        )
    return Path(root).expanduser().resolve()


def default_cache_dir() -> Path:
    """Preprocessed-sample cache: ``$CITYSEG_CACHE`` or ``PROJECT/data/cache``."""
    env = os.environ.get("CITYSEG_CACHE")
    return Path(env).expanduser().resolve() if env else project_root() / "data" / "cache"


def runs_dir() -> Path:
    """Root of training runs: ``PROJECT/runs`` (git-ignored)."""
    return project_root() / "runs"


def reports_dir() -> Path:
    """Root of generated reports: ``PROJECT/reports``."""
    return project_root() / "reports"


def source_root() -> Path:
    """The folder holding ``cityseg_lib/``, ``params/`` and ``notebooks/`` (not moved by CITYSEG_HOME)."""
    return Path(__file__).resolve().parent.parent


def params_dir(profile: str) -> Path:
    """``params/PROFILE/``; an unknown profile is an error listing the valid ones."""
    folder = source_root() / "params" / profile
    if not folder.is_dir():
        valid = sorted(p.name for p in (source_root() / "params").iterdir() if p.is_dir())
        raise CitysegError(f"unknown profile {profile!r}; valid profiles: {', '.join(valid)}")
    return folder


def notebooks_dir() -> Path:
    return source_root() / "notebooks"
