"""The official Cityscapes folder layout: finding and pairing images with their labels.

``ROOT/leftImg8bit/SPLIT/CITY/CITY_SSSSSS_FFFFFF_leftImg8bit.png`` pairs with
``ROOT/gtFine/SPLIT/CITY/CITY_SSSSSS_FFFFFF_gtFine_labelIds.png`` (or ``gtCoarse``).
Only file names are read here; pixel-level checks live in :mod:`cityseg_lib.data.check`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cityseg_lib.errors import CitysegError
from cityseg_lib.paths import CITYSCAPES_URL

__all__ = [
    "DataUnavailable",
    "SPLITS",
    "ANNOTATIONS",
    "Sample",
    "find_samples",
    "available_splits",
    "annotation_dir",
    "frame_key",
]

#: Splits of each annotation kind, as published.
SPLITS = {"fine": ("train", "val", "test"), "coarse": ("train", "train_extra", "val")}
ANNOTATIONS = {"fine": "gtFine", "coarse": "gtCoarse"}
_IMG_SUFFIX = "_leftImg8bit.png"
_MAX_LISTED = 3


@dataclass(frozen=True)
class Sample:
    """One frame: ``id`` is the frame key ``CITY_SSSSSS_FFFFFF``; ``label`` is None for unlabelled."""

    id: str
    city: str
    image: Path
    label: Path | None


class DataUnavailable(CitysegError):
    """The dataset root or a split folder is not where a run looks: the place's fault (a path
    relative to another directory, a node without the shared file system), not the run's; a
    sweep stops on it instead of recording its trials as failed."""


def frame_key(path: str | os.PathLike) -> str:
    """``aachen_000000_000019`` from any Cityscapes file name of that frame."""
    parts = Path(path).name.split("_")
    if len(parts) < 4:
        raise CitysegError(f"{path}: not a Cityscapes file name (expected CITY_SEQ_FRAME_*.png)")
    return "_".join(parts[:3])


def annotation_dir(annotation: str) -> str:
    if annotation not in ANNOTATIONS:
        raise CitysegError(f"annotation {annotation!r} is not one of {sorted(ANNOTATIONS)}")
    return ANNOTATIONS[annotation]


def _layout_hint(root: Path) -> str:
    return (
        f"expected {root}/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png and {root}/gtFine/SPLIT/CITY/"
        f"*_gtFine_labelIds.png (download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
        f"{CITYSCAPES_URL}, or run `cityseg make-demo-data`)"
    )


def _files_by_key(folder: Path, suffix: str) -> dict[str, tuple[str, Path]]:
    """{frame key: (city, path)} for every ``*suffix`` file in ``folder/CITY/``."""
    out: dict[str, tuple[str, Path]] = {}
    for city_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(city_dir.glob("*" + suffix)):
            out[f.name[: -len(suffix)]] = (city_dir.name, f)
    return out


def available_splits(root: str | os.PathLike, annotation: str = "fine") -> list[str]:
    """Splits of ``annotation`` that have both an image and a label folder under ``root``."""
    root = Path(root)
    ann = annotation_dir(annotation)
    return [s for s in SPLITS[annotation] if (root / "leftImg8bit" / s).is_dir() and (root / ann / s).is_dir()]


def find_samples(
    root: str | os.PathLike,
    split: str,
    annotation: str = "fine",
    labels: bool = True,
) -> list[Sample]:
    """All frames of ``split``, sorted by frame key, each image paired with its labelIds PNG.

    ``labels=False`` lists images only (the test split, whose published labels are unusable).
    Raises :class:`CitysegError` for a missing root or split folder, unpaired files (the first
    few are named) and an empty split.
    """
    root = Path(root)
    ann = annotation_dir(annotation)
    if split not in SPLITS[annotation]:
        raise CitysegError(f"split {split!r} does not exist for {annotation} annotations; use one of {SPLITS[annotation]}")
    if not root.is_dir():
        raise DataUnavailable(f"dataset root {root} does not exist; {_layout_hint(root)}")
    img_dir = root / "leftImg8bit" / split
    if not img_dir.is_dir():
        if split == "train_extra":
            raise DataUnavailable(f"missing split folder {img_dir}: the train_extra images are their own download, "
                                  f"leftImg8bit_trainextra.zip from {CITYSCAPES_URL}")
        raise DataUnavailable(f"missing split folder {img_dir}; {_layout_hint(root)}")
    images = _files_by_key(img_dir, _IMG_SUFFIX)
    if not labels:
        if not images:
            raise CitysegError(f"empty split: no *{_IMG_SUFFIX} files under {img_dir}")
        return [Sample(k, c, p, None) for k, (c, p) in sorted(images.items())]

    lbl_dir = root / ann / split
    if not lbl_dir.is_dir():
        raise CitysegError(f"missing label folder {lbl_dir}; {_layout_hint(root)}")
    lbl_suffix = f"_{ann}_labelIds.png"
    label_files = _files_by_key(lbl_dir, lbl_suffix)
    if annotation == "coarse":
        # Coarse labels cover only part of the images of a split: pair what has a label.
        images = {k: v for k, v in images.items() if k in label_files}
    no_label = sorted(set(images) - set(label_files))
    no_image = sorted(set(label_files) - set(images))
    if no_label:
        shown = ", ".join(str(images[k][1]) for k in no_label[:_MAX_LISTED])
        more = f" (+{len(no_label) - _MAX_LISTED} more)" if len(no_label) > _MAX_LISTED else ""
        raise CitysegError(f"{len(no_label)} image(s) without a {lbl_suffix[1:]} label: {shown}{more}")
    if no_image:
        shown = ", ".join(str(label_files[k][1]) for k in no_image[:_MAX_LISTED])
        more = f" (+{len(no_image) - _MAX_LISTED} more)" if len(no_image) > _MAX_LISTED else ""
        raise CitysegError(f"{len(no_image)} label(s) without a leftImg8bit image: {shown}{more}")
    if not images:
        raise CitysegError(f"empty split: no *{_IMG_SUFFIX} files under {img_dir}")
    return [Sample(k, c, p, label_files[k][1]) for k, (c, p) in sorted(images.items())]
