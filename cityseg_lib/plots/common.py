"""What every figure shares: a pyplot-free ``Figure``, class colours, overlays and legends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cityseg_lib.data.labels import CLASS_NAMES, IGNORE_INDEX, TRAIN_ID_COLORS, train_ids_to_color

_DPI = 100


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _class_rgb(i: int) -> tuple[float, float, float]:
    return tuple(c / 255 for c in TRAIN_ID_COLORS[i])


def overlay(image: np.ndarray, train_ids: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``image`` (H, W, 3) uint8 blended with the class colours of ``train_ids`` (H, W); ignored
    pixels (255) keep the image."""
    color = train_ids_to_color(train_ids).astype(np.float32)
    out = image.astype(np.float32)
    valid = train_ids != IGNORE_INDEX
    out[valid] = (1 - alpha) * out[valid] + alpha * color[valid]
    return out.round().clip(0, 255).astype(np.uint8)


def _legend(fig: Figure, ids: Sequence[int], ncol: int = 10) -> None:
    handles = [Patch(color=_class_rgb(i), label=CLASS_NAMES[i]) for i in ids]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(ncol, len(handles)), fontsize=8, frameon=False)


def _present(arrays: Sequence[np.ndarray]) -> list[int]:
    found: set[int] = set()
    for a in arrays:
        if a is not None:
            found |= {int(v) for v in np.unique(a) if v != IGNORE_INDEX}
    return sorted(found)


def _grouped_bars(ax, groups: int, span: float) -> tuple[list[np.ndarray], float]:
    """One tick per class on ``ax``; bar centres of each of ``groups`` side-by-side series, and their width."""
    x = np.arange(len(CLASS_NAMES))
    ax.set_xticks(x, CLASS_NAMES, rotation=45, ha="right", fontsize=8)
    width = span / max(groups, 1)
    return [x + (i - (groups - 1) / 2) * width for i in range(groups)], width
