"""What a dataset holds: splits, cities, annotation kinds, class statistics and display frames."""

from __future__ import annotations

import os

import numpy as np

from cityseg_lib.data.labels import CLASS_NAMES, LABEL_ID_TO_TRAIN_ID, NUM_CLASSES

__all__ = ["dataset_overview", "split_frame", "class_statistics", "load_frames"]


def dataset_overview(root: str | os.PathLike) -> dict:
    """Splits, cities, image sizes and annotation kinds of ``root`` (PNG headers only: fast)."""
    from cityseg_lib.data.check import check_dataset
    from cityseg_lib.data.source import is_synthetic

    from cityseg_lib.data.layout import available_splits, find_samples

    summary = check_dataset(root, fast=True)
    summary["synthetic"] = is_synthetic(root)
    summary["coarse_counts"] = {s: len(find_samples(root, s, "coarse")) for s in available_splits(root, "coarse")}
    return summary


def split_frame(overview: dict):
    """Images, cities and coarse-labelled frames per split, from :func:`dataset_overview`."""
    import pandas as pd

    rows = [{"split": split, "images": info["images"], "cities": len(info["cities"]),
             "with coarse labels": overview.get("coarse_counts", {}).get(split, 0)}
            for split, info in overview["splits"].items()]
    return pd.DataFrame(rows)


def class_statistics(root: str | os.PathLike, split: str = "train", annotation: str = "fine",
                     max_images: int = 0, stride: int = 4) -> dict:
    """Class pixel counts, classes per image and class co-occurrence of one split.

    Labels are read at every ``stride``-th pixel in each direction (pixel shares barely move, the
    cost drops by ``stride**2``); ``max_images`` > 0 uses an evenly spaced subset of frames.
    Returns ``{"images", "pixels" {class: count}, "classes_per_image" [n], "cooccurrence"
    (19x19 counts of images holding both classes), "presence" {class: images}}``.
    """
    from cityseg_lib.data.images import read_label_ids
    from cityseg_lib.data.layout import find_samples

    samples = find_samples(root, split, annotation)
    if max_images and len(samples) > max_images:
        keep = np.linspace(0, len(samples) - 1, max_images).round().astype(int)
        samples = [samples[i] for i in sorted(set(keep))]
    pixels = np.zeros(NUM_CLASSES, dtype=np.int64)
    co = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    per_image = []
    for s in samples:
        ids = LABEL_ID_TO_TRAIN_ID[read_label_ids(s.label)[::stride, ::stride]]
        counts = np.bincount(ids.ravel(), minlength=256)[:NUM_CLASSES]
        pixels += counts * stride * stride
        present = counts > 0
        per_image.append(int(present.sum()))
        co += np.outer(present, present)
    return {
        "split": split,
        "annotation": annotation,
        "images": len(samples),
        "stride": stride,
        "pixels": {n: int(c) for n, c in zip(CLASS_NAMES, pixels)},
        "classes_per_image": per_image,
        "cooccurrence": co.tolist(),
        "presence": {n: int(co[i, i]) for i, n in enumerate(CLASS_NAMES)},
    }


def load_frames(root: str | os.PathLike, split: str = "train", n: int = 3, width: int = 512,
                coarse: bool = True) -> list[dict]:
    """``n`` evenly spaced frames for display: ``{"id", "image" (H, W, 3) uint8, "fine", "coarse"}``.

    Images are downsized to ``width`` pixels (bilinear), masks with nearest neighbour, as trainIds.
    ``coarse`` is None for frames without a coarse label.
    """
    from PIL import Image

    from cityseg_lib.data.images import read_image, read_train_ids
    from cityseg_lib.data.layout import available_splits, find_samples

    fine = find_samples(root, split, "fine")
    coarse_map = {}
    if coarse and split in available_splits(root, "coarse"):
        coarse_map = {s.id: s for s in find_samples(root, split, "coarse")}
    with_coarse = [s for s in fine if s.id in coarse_map] or fine
    picks = np.linspace(0, len(with_coarse) - 1, min(n, len(with_coarse))).round().astype(int)
    frames = []
    for i in picks:
        s = with_coarse[i]
        rgb = read_image(s.image)
        h = max(1, round(rgb.shape[0] * width / rgb.shape[1]))

        def small(arr, resample):
            return np.asarray(Image.fromarray(arr).resize((width, h), resample))

        frame = {"id": s.id, "image": small(rgb, Image.BILINEAR),
                 "fine": small(read_train_ids(s.label), Image.NEAREST), "coarse": None}
        if s.id in coarse_map:
            frame["coarse"] = small(read_train_ids(coarse_map[s.id].label), Image.NEAREST)
        frames.append(frame)
    return frames
