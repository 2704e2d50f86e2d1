"""``cityseg check-data``: validate a dataset in the official layout and summarise it.

Every problem is a :class:`CitysegError` naming the file at fault: missing root or split
folders, unpaired files, corrupt or truncated PNGs, labelIds outside the official table,
image/label size mismatches and empty splits.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.images import image_size, read_image, read_label_ids
from cityseg_lib.data.labels import CLASS_NAMES, LABEL_ID_TO_TRAIN_ID, NUM_CLASSES
from cityseg_lib.data.layout import ANNOTATIONS, SPLITS, Sample, _layout_hint, find_samples

__all__ = ["check_dataset", "format_summary"]


def _check_pair(sample: Sample, decode_image: bool = True) -> tuple[tuple[int, int], np.ndarray | None]:
    """Decode one frame; returns (W, H) and its trainId pixel counts (None if unlabelled).

    ``decode_image=False`` reads only the image header (its pixels were checked already).
    """
    if decode_image:
        rgb = read_image(sample.image)
        size = (rgb.shape[1], rgb.shape[0])
    else:
        size = image_size(sample.image)
    if sample.label is None:
        return size, None
    ids = read_label_ids(sample.label)
    if ids.shape != (size[1], size[0]):
        raise CitysegError(
            f"{sample.label}: label is {ids.shape[1]}x{ids.shape[0]} but its image {sample.image.name} "
            f"is {size[0]}x{size[1]}"
        )
    counts = np.bincount(LABEL_ID_TO_TRAIN_ID[ids].ravel(), minlength=256)[:NUM_CLASSES]
    return size, counts


def _header_only(sample: Sample, decode_image: bool = False) -> tuple[tuple[int, int], None]:
    size = image_size(sample.image)
    if sample.label is not None and image_size(sample.label) != size:
        lw, lh = image_size(sample.label)
        raise CitysegError(f"{sample.label}: label is {lw}x{lh} but its image is {size[0]}x{size[1]}")
    return size, None


def check_dataset(root: str | os.PathLike, fast: bool = False, workers: int | None = None) -> dict:
    """Validate every split under ``root``; returns a JSON-friendly summary.

    ``fast`` reads PNG headers only (no corruption or label-value checks, no class counts).
    The test split is listed but its labels are not checked (the published ones are dummies).
    """
    root = Path(root)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise CitysegError(f"workers={workers!r}: expected an integer >= 1")
    if root.exists() and not root.is_dir():
        raise CitysegError(f"dataset root {root} is a file, not a folder; {_layout_hint(root)}")
    if not root.is_dir():
        raise CitysegError(f"dataset root {root} does not exist; {_layout_hint(root)}")
    if not (root / "leftImg8bit").is_dir():
        raise CitysegError(f"{root} has no leftImg8bit/ folder; {_layout_hint(root)}")
    summary: dict = {"root": str(root), "splits": {}, "annotations": {}, "image_sizes": {}, "class_pixels": None}
    jobs: list[tuple[str, Sample]] = []
    for annotation, ann_dir in ANNOTATIONS.items():
        with_labels = [s for s in SPLITS[annotation] if (root / ann_dir / s).is_dir()]
        # gtCoarse.zip holds train_extra's labels, whose images are a download of their own
        # (leftImg8bit_trainextra.zip, 44 GB): labels without images are listed, not an error
        present = [s for s in with_labels if (root / "leftImg8bit" / s).is_dir()]
        if not with_labels:
            continue
        kinds = sorted({p.name.split(f"_{ann_dir}_")[-1]
                        for p in (root / ann_dir / with_labels[0]).glob(f"*/*_{ann_dir}_*")})
        summary["annotations"][ann_dir] = {"splits": present, "files": kinds}
        if len(present) < len(with_labels):
            summary["annotations"][ann_dir]["without_images"] = [s for s in with_labels if s not in present]
        for split in present:
            labelled = not (annotation == "fine" and split == "test")
            samples = find_samples(root, split, annotation, labels=True) if labelled else find_samples(root, split, labels=False)
            if annotation == "fine" or split == "train_extra":
                cities = Counter(s.city for s in samples)
                summary["splits"][split] = {"images": len(samples), "cities": dict(sorted(cities.items()))}
            jobs += [(f"{ann_dir}/{split}", s) for s in samples]
    if "gtFine" not in summary["annotations"]:
        raise CitysegError(f"{root} has no gtFine/ annotations; {_layout_hint(root)}")

    fn = _header_only if fast else _check_pair
    # Coarse frames re-use the fine images: decode each image once, check every label.
    seen: set[Path] = set()
    todo, decode = [], []
    for tag, s in jobs:
        decode.append(s.image not in seen)
        seen.add(s.image)
        todo.append((tag, s))
    workers = workers or os.cpu_count() or 1
    class_pixels = np.zeros((2, NUM_CLASSES), dtype=np.int64)  # rows: fine train+val, coarse
    sizes: Counter = Counter()
    if workers > 1 and len(todo) > 4:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(fn, [s for _, s in todo], decode, chunksize=4))
    else:
        results = [fn(s, d) for (_, s), d in zip(todo, decode)]
    for (tag, _), first, (size, counts) in zip(todo, decode, results):
        sizes[f"{size[0]}x{size[1]}"] += first  # images, each once (coarse pairs reuse the fine ones)
        if counts is not None:
            class_pixels[0 if tag.startswith("gtFine") else 1] += counts
    summary["image_sizes"] = dict(sizes)
    if not fast:
        summary["class_pixels"] = {
            ann: {name: int(c) for name, c in zip(CLASS_NAMES, row)}
            for ann, row in zip(("gtFine", "gtCoarse"), class_pixels)
            if ann in summary["annotations"]
        }
        present = [n for n, c in zip(CLASS_NAMES, class_pixels[0]) if c > 0]
        summary["classes_present"] = present
    return summary


def format_summary(summary: dict) -> str:
    """Human-readable summary for the terminal."""
    lines = [f"dataset: {summary['root']}"]
    for split, info in summary["splits"].items():
        cities = ", ".join(f"{c} {n}" for c, n in info["cities"].items())
        lines.append(f"  {split:<12} {info['images']:>6} images  ({len(info['cities'])} cities: {cities})")
    for ann, info in summary["annotations"].items():
        lines.append(f"  {ann:<12} splits {', '.join(info['splits'])}; files {', '.join(info['files'])}")
        if info.get("without_images"):
            lines.append(f"  {'':<12} labels without images (not used): {', '.join(info['without_images'])}"
                         + (" (its images: leftImg8bit_trainextra.zip)" if "train_extra" in info["without_images"] else ""))
    sizes = ", ".join(f"{s} ({n})" for s, n in summary["image_sizes"].items())
    lines.append(f"  image sizes  {sizes}")
    if summary.get("class_pixels"):
        fine = summary["class_pixels"]["gtFine"]
        total = sum(fine.values()) or 1
        present = summary.get("classes_present", [])
        lines.append(f"  classes      {len(present)}/{NUM_CLASSES} present in fine labels")
        lines.append("    " + ", ".join(f"{n} {100 * fine[n] / total:.1f}%" for n in CLASS_NAMES))
        missing = [n for n in CLASS_NAMES if fine[n] == 0]
        if missing:
            lines.append(f"    absent: {', '.join(missing)}")
    else:
        lines.append("  (fast mode: pixels not decoded)")
    return "\n".join(lines)
