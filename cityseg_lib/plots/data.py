"""Figures of the dataset (Section 2): sample frames with masks, images per city, class frequencies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cityseg_lib.data.labels import CLASS_NAMES
from cityseg_lib.plots.common import _class_rgb, _figure, _grouped_bars, _legend, _present, overlay


def sample_grid(frames: Sequence[Mapping], alpha: float = 0.55) -> Figure:
    """Figure 1: each frame with its coarse (a) and fine (b) mask overlaid.

    ``frames``: dicts with ``id``, ``image`` (H, W, 3) uint8, ``fine`` and ``coarse`` (H, W)
    trainIds (``coarse`` may be None), as from :func:`cityseg_lib.data.statistics.load_frames`.
    """
    n = len(frames)
    has_coarse = any(f.get("coarse") is not None for f in frames)
    cols = 2 if has_coarse else 1
    h, w = frames[0]["image"].shape[:2]
    fig = _figure(5.2 * cols, 5.2 * cols * n * h / w / cols + 0.9)
    axes = np.atleast_2d(fig.subplots(n, cols, squeeze=False))
    titles = ["(a) coarse mask", "(b) fine mask"] if has_coarse else ["fine mask"]
    for r, f in enumerate(frames):
        masks = [f.get("coarse"), f["fine"]] if has_coarse else [f["fine"]]
        for c, mask in enumerate(masks):
            ax = axes[r, c]
            ax.imshow(overlay(f["image"], mask, alpha) if mask is not None else f["image"])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=10)
            if c == 0:
                ax.set_ylabel(f["id"], fontsize=7)
    _legend(fig, _present([m for f in frames for m in (f["fine"], f.get("coarse"))]))
    return fig


def split_city_bars(splits: Mapping[str, Mapping]) -> Figure:
    """Images per city, one bar group per split; ``splits``: ``{split: {"cities": {city: n}}}``."""
    cities = sorted({c for info in splits.values() for c in info["cities"]})
    names = list(splits)
    fig = _figure(max(6.0, 0.35 * len(cities) + 2), 3.2)
    ax = fig.subplots()
    x = np.arange(len(cities))
    width = 0.8 / max(len(names), 1)
    for i, split in enumerate(names):
        counts = [splits[split]["cities"].get(c, 0) for c in cities]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, counts, width, label=f"{split} ({sum(counts)})")
    ax.set_xticks(x, cities, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title("Images per city and split", fontsize=10)
    return fig


def class_frequency_bars(class_pixels: Mapping[str, Mapping[str, int]]) -> Figure:
    """Share of labelled pixels per class (log scale), one bar per annotation kind.

    ``class_pixels``: ``{"fine": {class: pixels}, "coarse": {...}}`` (any subset of kinds).
    """
    kinds = list(class_pixels)
    fig = _figure(10, 3.6)
    ax = fig.subplots()
    positions, width = _grouped_bars(ax, len(kinds), 0.8)
    for i, kind in enumerate(kinds):
        counts = np.array([class_pixels[kind].get(n, 0) for n in CLASS_NAMES], dtype=float)
        share = 100 * counts / max(counts.sum(), 1)
        first = i == 0
        ax.bar(positions[i], np.where(share > 0, share, np.nan), width,
               color=[_class_rgb(j) for j in range(len(CLASS_NAMES))] if first else "0.85",
               edgecolor="black", linewidth=0.4, hatch=None if first else "///")
    handles = [Patch(facecolor="0.5" if i == 0 else "0.85", edgecolor="black", hatch=None if i == 0 else "///",
                     label=f"{kind}{' (class colours)' if i == 0 else ''}") for i, kind in enumerate(kinds)]
    ax.set_yscale("log")
    ax.set_ylabel("% of labelled pixels (log)")
    ax.legend(handles=handles, fontsize=8)
    ax.set_title("Class pixel frequencies", fontsize=10)
    return fig


def class_cooccurrence(cooccurrence: np.ndarray, classes_per_image: Sequence[int]) -> Figure:
    """Left: share of images containing both classes (the diagonal: images containing the class).
    Right: histogram of the number of classes per image."""
    import seaborn as sns

    co = np.asarray(cooccurrence, dtype=float)
    n_images = max(len(classes_per_image), 1)
    fig = _figure(11, 4.6)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[2.2, 1])
    sns.heatmap(100 * co / n_images, ax=ax1, cmap="viridis", vmin=0, vmax=100, square=True,
                xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, cbar_kws={"label": "% of images"})
    ax1.tick_params(labelsize=7)
    ax1.set_title("Class co-occurrence", fontsize=10)
    counts = np.asarray(classes_per_image)
    if counts.size:
        bins = np.arange(counts.min(), counts.max() + 2) - 0.5
        ax2.hist(counts, bins=bins, color="tab:blue", edgecolor="white")
    ax2.set_xlabel("classes in the image")
    ax2.set_ylabel("images")
    ax2.set_title("Classes per image", fontsize=10)
    return fig
