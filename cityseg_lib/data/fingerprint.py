"""A dataset's identity by content: what it holds, not where it lies.

A digest of the sorted relative paths and byte sizes of a split's images and labels. Moving or
copying the dataset keeps it; regenerating it differently, adding or removing a frame, or an edit
that changes a file's size changes it (an edit of the same byte size does not: contents are not
read). Reads
directory entries and file sizes only (cheap even for the 5,000 frames of Cityscapes), and is
cached per process, keyed also on the split and city folders' inodes and modification times: a
dataset regenerated, or a frame added or removed, while the process runs is fingerprinted again
(a run's identity and the subset checks read it).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cityseg_lib.data.layout import ANNOTATIONS, find_samples

__all__ = ["fingerprint", "clear_cache"]

_CACHE: dict[tuple, dict] = {}


def fingerprint(root: str | os.PathLike, splits: tuple[tuple[str, str], ...]) -> dict:
    """``{"digest": 16 hex digits, "images": {"SPLIT/ANNOTATION": count}}`` of ``(split, annotation)`` pairs."""
    root = Path(root)
    key = (str(root), tuple(splits), _folders_stamp(root, splits))
    if key not in _CACHE:
        digest, counts = hashlib.sha256(), {}
        for split, annotation in splits:
            samples = find_samples(root, split, annotation)
            counts[f"{split}/{annotation}"] = len(samples)
            for s in samples:
                for f in (s.image, s.label):
                    if f is not None:
                        digest.update(f"{f.relative_to(root)} {f.stat().st_size}\n".encode())
        _CACHE[key] = {"digest": digest.hexdigest()[:16], "images": counts}
    return _CACHE[key]


def _folders_stamp(root: Path, splits: tuple[tuple[str, str], ...]) -> tuple:
    """(path, inode, mtime) of every split folder and its city folders: changes when the data is
    regenerated or a file is added or removed (directory entries only: cheap)."""
    stamp = []
    for split, annotation in splits:
        for base in (root / "leftImg8bit" / split, root / ANNOTATIONS.get(annotation, annotation) / split):
            try:
                folders = [base, *sorted(e for e in base.iterdir() if e.is_dir())]
            except OSError:  # missing: find_samples names it
                continue
            for folder in folders:
                st = folder.stat()
                stamp.append((str(folder), st.st_ino, st.st_mtime_ns))
    return tuple(stamp)


def clear_cache() -> None:
    """Forget cached fingerprints (after files changed in this process)."""
    _CACHE.clear()
