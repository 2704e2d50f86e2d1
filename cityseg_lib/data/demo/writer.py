"""Writing the demo dataset: label PNGs as in the official files, coarse labels, the README,
and :func:`make_demo_dataset`, which renders frames in parallel processes."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_text
from cityseg_lib.data.labels import LABEL_ID_COLORS
from cityseg_lib.data.demo.canvas import EGO
from cityseg_lib.data.demo.scene import SPLIT_CODE, render_frame
from cityseg_lib.data.demo.style import DEMO_CITIES

#: Bumped whenever the drawing changes, so a README names the generator that made the files.
DEMO_VERSION = 1

# Fixed PNG settings (byte-identical output depends on them): zlib level 1 with the run-length
# strategy is as fast as plain level 1 and ~10% smaller (images) to ~50% smaller (labels).
_PNG = {"compress_level": 1, "compress_type": 3}
_README_MARK = "cityseg synthetic demo dataset"


def _coarsen(inst: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coarse-style instanceIds: blocky regions inside objects, void (0) around their boundaries.

    A block of the (randomly shifted) grid keeps its value only if the whole block belongs to one
    instance; kept blocks that touch a dropped one are dropped at random, which leaves jagged
    void margins at boundaries and removes small things, like the real coarse polygons.
    """
    H, W = inst.shape
    b = max(2, int(round(H / 40)))
    oy, ox = int(rng.integers(b)), int(rng.integers(b))
    Hb, Wb = -(-(H + oy) // b), -(-(W + ox) // b)
    pad = np.pad(inst, ((oy, Hb * b - H - oy), (ox, Wb * b - W - ox)), mode="edge").reshape(Hb, b, Wb, b)
    lo, hi = pad.min(axis=(1, 3)), pad.max(axis=(1, 3))
    keep = lo == hi
    border = np.zeros_like(keep)
    border[1:] |= ~keep[:-1]
    border[:-1] |= ~keep[1:]
    border[:, 1:] |= ~keep[:, :-1]
    border[:, :-1] |= ~keep[:, 1:]
    keep &= ~(border & (rng.random(keep.shape) < 0.6))
    blocks = np.where(keep, lo, 0)
    return np.repeat(np.repeat(blocks, b, axis=0), b, axis=1)[oy:oy + H, ox:ox + W]


# ----------------------------------------------------------------------------- writing
_PALETTE = LABEL_ID_COLORS.tobytes()  # 256 RGB entries


def _save(image: Image.Image, path: Path) -> None:
    """``image`` as the PNG ``path``. PIL removes a file it could not finish; a failed write (a full
    disk) names no file, so the error is given ``path``."""
    try:
        image.save(path, **_PNG)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def _save_labels(folder: Path, stem: str, inst: np.ndarray) -> None:
    """Write ``stem_{labelIds,color,instanceIds}.png`` from instanceIds like the official files."""
    labels = np.where(inst >= 1000, inst // 1000, inst).astype(np.uint8)
    _save(Image.fromarray(labels), folder / f"{stem}_labelIds.png")
    color = Image.fromarray(labels)
    color.putpalette(_PALETTE)
    _save(color.convert("RGBA"), folder / f"{stem}_color.png")
    _save(Image.fromarray(inst.astype(np.uint16)), folder / f"{stem}_instanceIds.png")


def _write_frames(root: str, jobs: list[tuple[str, int]], size: tuple[int, int], seed: int, coarse: bool) -> int:
    """Render and write frames (one worker's chunk); returns how many were written."""
    for split, index in jobs:
        fr = render_frame(split, index, size=size, seed=seed)
        img_dir = Path(root, "leftImg8bit", split, fr.city)
        img_dir.mkdir(parents=True, exist_ok=True)
        _save(Image.fromarray(fr.image), img_dir / f"{fr.key}_leftImg8bit.png")
        if split != "train_extra":
            fine = fr.instance_ids
            if split == "test":  # like the real test set: nothing but the ego vehicle is labelled
                fine = np.where(fr.label_ids == EGO, EGO, 0).astype(np.uint16)
            d = Path(root, "gtFine", split, fr.city)
            d.mkdir(parents=True, exist_ok=True)
            _save_labels(d, f"{fr.key}_gtFine", fine)
        if coarse and split != "test":
            d = Path(root, "gtCoarse", split, fr.city)
            d.mkdir(parents=True, exist_ok=True)
            crng = np.random.default_rng([seed, SPLIT_CODE[split], index, 1])
            _save_labels(d, f"{fr.key}_gtCoarse", _coarsen(fr.instance_ids.astype(np.int32), crng))
    return len(jobs)


def _readme(counts: dict[str, int], size: tuple[int, int], seed: int, coarse: bool) -> str:
    lines = [
        f"{_README_MARK} (generator version {DEMO_VERSION})",
        "",
        "NOT Cityscapes data: every image and label here was drawn procedurally by",
        "cityseg_lib.data.demo.make_demo_dataset (street scenes from a pinhole camera over a flat",
        "ground plane). The city names are made up. The folder and file names follow the official",
        "Cityscapes layout so the same code reads this and the real dataset.",
        "",
        f"Arguments: train={counts['train']} val={counts['val']} test={counts['test']} "
        f"train_extra={counts['train_extra']} size={size[0]}x{size[1]} seed={seed} coarse={coarse}",
        f"Regenerate: make_demo_dataset(OUT, train={counts['train']}, val={counts['val']}, test={counts['test']}, "
        f"train_extra={counts['train_extra']}, size=({size[0]}, {size[1]}), seed={seed}, coarse={coarse})",
        "The same arguments always give byte-identical files.",
        "",
        "Splits (frames: cities):",
    ]
    for split, n in counts.items():
        if n:
            lines.append(f"  {split}: {n}: {', '.join(DEMO_CITIES[split][:n])}")
    lines += ["", "The test split's gtFine labels are unusable on purpose (all 'unlabeled' except the ego",
              "vehicle), as in the real dataset; gtCoarse covers train, val and train_extra.", ""]
    return "\n".join(lines)


def _prepare_root(root: Path) -> None:
    """Refuse a non-empty folder, except an earlier demo dataset, whose files are replaced."""
    if root.exists() and not root.is_dir():
        raise CitysegError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        readme = root / "README.txt"
        if not (readme.is_file() and readme.read_text(errors="replace").startswith(_README_MARK)):
            raise CitysegError(f"{root}: folder is not empty and holds no demo dataset; choose a new or empty folder")
        for name in ("leftImg8bit", "gtFine", "gtCoarse"):
            shutil.rmtree(root / name, ignore_errors=True)
        readme.unlink()
    root.mkdir(parents=True, exist_ok=True)


def check_demo_args(*, train: Any, val: Any, test: Any, train_extra: Any, size: Any, seed: Any, coarse: Any) -> None:
    """The generator's arguments, each refused in one line naming it: frame counts integers >= 0,
    ``size`` (W, H) integers in [16, 8192], ``seed`` an integer >= 0, ``coarse`` a boolean, and
    ``train_extra`` frames only with coarse labels (they have no others)."""
    for name, n in {"train": train, "val": val, "test": test, "train_extra": train_extra}.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise CitysegError(f"{name}={n!r}: the number of frames must be an integer >= 0")
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 16 <= v <= 8192 for v in size)):
        raise CitysegError(f"size={size!r}: expected (W, H) integers between 16 and 8192")
    if not isinstance(coarse, bool):
        raise CitysegError(f"coarse={coarse!r}: expected true or false")
    if train_extra and not coarse:
        raise CitysegError(f"train_extra={train_extra}: train_extra frames only have coarse labels; use coarse=True")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CitysegError(f"seed={seed!r}: expected an integer >= 0")


def make_demo_dataset(out: str | os.PathLike, *, train: int = 24, val: int = 8, test: int = 4, train_extra: int = 0,
                      size: tuple[int, int] = (2048, 1024), seed: int = 0, coarse: bool = True, workers: int = 1,
                      progress: bool = False) -> Path:
    """Write a synthetic dataset in the official Cityscapes layout under ``out``; returns the root.

    ``size`` is (W, H). Frames go to ``leftImg8bit/SPLIT/CITY/CITY_SSSSSS_FFFFFF_leftImg8bit.png``
    with ``gtFine/.../*_gtFine_{labelIds,color,instanceIds}.png`` (test: unusable labels, as
    published) and, if ``coarse``, ``gtCoarse`` for train, val and ``train_extra`` frames. Output
    is byte-identical for the same arguments, whatever ``workers`` (processes) is. An existing
    demo dataset in ``out`` (recognised by its README.txt) is replaced; any other non-empty
    folder is refused. ``progress`` shows a tqdm bar over frames.
    """
    counts = {"train": train, "val": val, "test": test, "train_extra": train_extra}
    check_demo_args(train=train, val=val, test=test, train_extra=train_extra, size=size, seed=seed, coarse=coarse)
    if not isinstance(workers, int) or workers < 1:
        raise CitysegError(f"workers={workers!r}: expected an integer >= 1")
    size = (int(size[0]), int(size[1]))
    root = Path(out)
    _prepare_root(root)
    # README first: it marks the folder as a demo dataset, so an interrupted run can be redone
    atomic_write_text(root / "README.txt", _readme(counts, size, seed, coarse))
    jobs = [(split, i) for split, n in counts.items() for i in range(n)]
    with tqdm(total=len(jobs), disable=not progress, desc="demo data", unit="frame") as bar:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_write_frames(str(root), [job], size, seed, coarse))
        else:
            n_chunks = min(len(jobs), workers * 4)
            chunks = [jobs[k::n_chunks] for k in range(n_chunks)]
            with ProcessPoolExecutor(max_workers=min(workers, n_chunks)) as pool:
                futures = [pool.submit(_write_frames, str(root), c, size, seed, coarse) for c in chunks]
                for fut in as_completed(futures):
                    bar.update(fut.result())
    return root
