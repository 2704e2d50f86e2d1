"""On-disk cache of preprocessed samples, so epochs after the first skip PNG decoding.

Each sample is stored as one ``(H, W, 4)`` uint8 ``.npy`` file (RGB resized with antialias,
plus the trainId mask resized with nearest neighbour) -- 4 bytes a pixel, loaded with a single
read. The file name is a hash of the source files (path, size, mtime) and the target size, so a
changed image, label or size gets a fresh entry, and a stale one is never read. The folder is
``v{version}_{H}x{W}``, the version naming the preprocessing: 1 for masks resized with plain
``nearest`` (every entry made before 2026-12-05, still read by runs trained with it), 2 for
``nearest-exact`` (:mod:`cityseg_lib.data.transforms`).

Writes go to a temporary file in the same folder and are published with :func:`os.replace`, which
is atomic: concurrent DataLoader workers or processes building the same entry race harmlessly,
and a crash leaves at most a ``*.tmp`` file that is never trusted. A write that fails (a full
disk, a read-only cache folder) leaves no file, warns once, and the cache stops writing: it is
a speed-up, so the sample is served from the PNGs and training goes on.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from cityseg_lib.data.layout import Sample
from cityseg_lib.files import _FILE_MODE

__all__ = ["CACHE_VERSIONS", "SampleCache"]

#: The preprocessing's version for each mask resize mode: a new preprocessing gets a new number,
#: so no entry of another one is ever read.
CACHE_VERSIONS = {"nearest": 1, "nearest-exact": 2}


def _stamp(path: Path | None) -> str:
    if path is None:
        return "-"
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


class SampleCache:
    """A folder of preprocessed samples at one target size ``(H, W)``."""

    def __init__(self, cache_dir: str | os.PathLike, size: tuple[int, int], mask_resize: str = "nearest-exact"):
        self.size = (int(size[0]), int(size[1]))
        self.version = CACHE_VERSIONS[mask_resize]
        self.dir = Path(cache_dir) / f"v{self.version}_{self.size[0]}x{self.size[1]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writable = True  # False after a failed write: the rest are not tried (each would fail)

    def path_for(self, sample: Sample) -> Path:
        key = f"{self.version}|{_stamp(sample.image)}|{_stamp(sample.label)}|{self.size}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return self.dir / f"{sample.id}_{digest}.npy"

    def get(self, sample: Sample, build) -> np.ndarray:
        """The cached ``(H, W, 4)`` array, building it with ``build(sample)`` on a miss."""
        path = self.path_for(sample)
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (*self.size, 4) and arr.dtype == np.uint8:
                return arr
        except (FileNotFoundError, ValueError, OSError, EOFError):
            pass
        arr = np.ascontiguousarray(build(sample), dtype=np.uint8)
        if self.writable:
            try:
                self._write(path, arr)
            except OSError as e:  # numpy's short write has no errno, only a message
                self.writable = False
                warnings.warn(f"{self.dir}: cannot write to the sample cache ({e.strerror or e}); "
                              "reading the PNGs instead (free space, or set cache_dir / CITYSEG_CACHE elsewhere)",
                              RuntimeWarning, stacklevel=2)
        return arr

    def _write(self, path: Path, arr: np.ndarray) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=path.stem, suffix=".tmp")
        try:
            os.fchmod(fd, _FILE_MODE)  # readable as open() would make it (mkstemp: 0600), for a shared cache
            with os.fdopen(fd, "wb") as f:
                np.save(f, arr, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
