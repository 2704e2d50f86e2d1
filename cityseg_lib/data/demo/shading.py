"""Shading of a rendered demo frame: per-material tone, texture noise and lighting."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from cityseg_lib.data.demo.canvas import MAT, MATERIALS, Canvas

__all__ = ["shade", "noise"]


_MAT_TABLE = np.array(list(MATERIALS.values()), dtype=np.float32)  # (M, 4)


def noise(rng, step: int, W: int, H: int) -> np.ndarray:
    """Smooth noise: a coarse uniform grid, bilinear-upsampled to (H, W) float32, std ~0.5."""
    small = (rng.random((H // step + 3, W // step + 3), dtype=np.float32) - 0.5) * 2.5
    big = Image.fromarray(small).resize(((W // step + 3) * step, (H // step + 3) * step), Image.BILINEAR)
    return np.asarray(big)[step:step + H, step:step + W]


def shade(cv: Canvas, rng, tone, hood: tuple[float, float]) -> np.ndarray:
    """Turn the part map into an (H, W, 3) uint8 photo: colours, textures, shadows, hood, blur.

    Luminance is modulated per material by fine grain (also the sensor noise: it goes through
    the blur like real noise goes through demosaicing), clumpy medium noise and large blotches,
    then applied in 7-bit fixed point (uint16 is ~2x faster than float32 on these 6M values).
    """
    H, W = cv.H, cv.W
    P = np.asarray(cv.parts)
    bright, contrast, tint = tone
    colors = np.asarray(cv.colors, dtype=np.float32)
    colors = np.clip(((colors - 128) * contrast + 128) * bright * tint, 0, 255).astype(np.uint16)
    mats = np.take(np.asarray(cv.mats, dtype=np.uint8), P)
    amp = _MAT_TABLE.T.copy()  # (4, M)
    lum = rng.random((H, W), dtype=np.float32)
    lum -= 0.5
    lum *= np.take(amp[0] * 3.5, mats)
    lum += np.take(amp[1], mats) * noise(rng, 4, W, H)
    lum += np.take(amp[2], mats) * noise(rng, max(4, H // 20), W, H)
    lum += 1.0
    shadow = np.asarray(cv.shadow)
    if shadow.any():
        lum *= 1.0 - shadow * np.take(amp[3] / np.float32(255), mats)
    lum *= 128
    np.clip(lum, 0, 255, out=lum)  # factor < 2, so 255 * 255 still fits uint16
    rgb = np.take(colors, P, axis=0)
    rgb *= lum.astype(np.uint16)[..., None]
    rgb >>= 7
    np.minimum(rgb, 255, out=rgb)
    rgb = rgb.astype(np.uint8)
    # ego hood: a dim mirror image of the street above it
    top, bulge = hood
    y0 = int(top)
    if y0 < H:
        ys = np.arange(y0, H)[:, None]
        xs = np.arange(W)[None, :]
        edge = top + bulge * ((xs - W / 2) / (W / 2)) ** 2
        src = np.clip((2 * edge - ys - 1).astype(np.int64), 0, H - 1)
        refl = rgb[src, np.broadcast_to(xs, src.shape)].astype(np.float32)
        fade = (np.clip(1.0 - (ys - edge) / (0.25 * H), 0.0, 1.0) * 0.3).astype(np.float32)[..., None]
        block = rgb[y0:]
        mixed = (block * (1 - fade) + refl * fade).astype(np.uint8)
        ego = (mats[y0:] == MAT["ego"])[..., None]
        rgb[y0:] = np.where(ego, mixed, block)
    # optics: a [1 2 1]/4 blur (box radius 0.5) at full size, half of it below 1024 px width
    img = Image.fromarray(rgb).filter(ImageFilter.BoxBlur(0.5 if W >= 1024 else 0.3))
    return np.asarray(img)
