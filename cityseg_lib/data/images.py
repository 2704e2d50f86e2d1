"""Reading Cityscapes PNGs with errors that name the file at fault."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import LABEL_ID_TO_TRAIN_ID

__all__ = ["read_image", "read_label_ids", "read_train_ids", "image_size", "MAX_LABEL_ID"]

#: Largest labelId in the official table; anything above is not a Cityscapes label.
MAX_LABEL_ID = 33


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()  # force decoding: a truncated or corrupt PNG fails here, not later
    except FileNotFoundError:
        raise CitysegError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CitysegError(f"{path}: unreadable or corrupt PNG ({e})") from None
    return im


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(W, H) from the PNG header only, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError, ValueError) as e:
        raise CitysegError(f"{path}: unreadable or corrupt PNG ({e})") from None


def read_image(path: str | os.PathLike, orient: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB.

    16-bit grayscale (PIL modes ``I;16*``, or ``I`` within 0..65535) is scaled to 8 bits: PIL's own
    conversion clips it at 255, a white frame. Float images (mode ``F``) have no agreed range and
    are refused, naming the file. ``orient``: turn the pixels as the file's EXIF Orientation tag says
    (a camera's JPEG stored sideways, shown upright by every viewer), so a prediction lies on the
    image as its user sees it; for ``predict``. Datasets are read as stored (their labels were drawn
    on the stored pixels; Cityscapes PNGs carry no such tag)."""
    path = Path(path)
    im = _open(path)
    if orient:
        im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):
        gray = np.asarray(im, dtype=np.int64)
        if gray.size and (gray.min() < 0 or gray.max() > 65535):
            raise CitysegError(f"{path}: {im.mode} image with values outside 0..65535; save it as 8- or 16-bit")
        gray = ((gray * 255 + 32767) // 65535).astype(np.uint8)  # rounded: 65535 -> 255, 257 -> 1
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "F":
        raise CitysegError(f"{path}: floating-point image (mode F); save it as an 8- or 16-bit PNG or JPEG")
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.array(im)  # writable, so torch.from_numpy needs no copy and warns of nothing


def read_label_ids(path: str | os.PathLike, check: bool = True) -> np.ndarray:
    """(H, W) uint8 official labelIds; ``check`` rejects ids outside the official table."""
    path = Path(path)
    im = _open(path)
    if im.mode not in ("L", "P", "I", "I;16"):
        raise CitysegError(f"{path}: label PNG has mode {im.mode}, expected 8-bit labelIds (mode L)")
    arr = np.asarray(im)
    if check:
        top = int(arr.max()) if arr.size else 0
        if top > MAX_LABEL_ID or arr.min() < 0:
            raise CitysegError(f"{path}: labelId {top} is outside the official Cityscapes table (0..{MAX_LABEL_ID})")
    return arr.astype(np.uint8, copy=False)


def read_train_ids(path: str | os.PathLike) -> np.ndarray:
    """(H, W) uint8 trainIds (0..18, 255 = ignore) from a labelIds PNG."""
    return LABEL_ID_TO_TRAIN_ID[read_label_ids(path)]
