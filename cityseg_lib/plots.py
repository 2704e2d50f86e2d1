"""Figures of the study. Each function takes plain data (arrays, DataFrames, dicts) and returns a
``matplotlib.figure.Figure``.

Figures are built without ``pyplot`` (no global state, nothing shown twice in a notebook); in
Jupyter the returned figure displays itself (``display(fig)`` or as a cell's last expression).
Colours of classes are the official Cityscapes palette (:data:`cityseg_lib.labels.TRAIN_ID_COLORS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .labels import CLASS_NAMES, IGNORE_INDEX, TRAIN_ID_COLORS, train_ids_to_color

__all__ = [
    "overlay",
    "sample_grid",
    "split_city_bars",
    "class_frequency_bars",
    "class_cooccurrence",
    "learning_curves",
    "loss_comparison",
    "scheduler_comparison",
    "confusion_heatmap",
    "qualitative_grid",
    "per_class_iou_bars",
    "metric_bars",
    "sweep_brackets",
]

_DPI = 100


def _enable_notebook_display() -> None:
    """In IPython, show a returned ``Figure`` as a PNG (pyplot-free figures get no formatter otherwise)."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"})


_enable_notebook_display()


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


def sample_grid(frames: Sequence[Mapping], alpha: float = 0.55) -> Figure:
    """Figure 1: each frame with its coarse (a) and fine (b) mask overlaid.

    ``frames``: dicts with ``id``, ``image`` (H, W, 3) uint8, ``fine`` and ``coarse`` (H, W)
    trainIds (``coarse`` may be None), as from :func:`cityseg_lib.study.load_frames`.
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


def _grouped_bars(ax, groups: int, span: float) -> tuple[list[np.ndarray], float]:
    """One tick per class on ``ax``; bar centres of each of ``groups`` side-by-side series, and their width."""
    x = np.arange(len(CLASS_NAMES))
    ax.set_xticks(x, CLASS_NAMES, rotation=45, ha="right", fontsize=8)
    width = span / max(groups, 1)
    return [x + (i - (groups - 1) / 2) * width for i in range(groups)], width


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


def learning_curves(metrics: Mapping[str, "pd.DataFrame"], best_epochs: Mapping[str, int] | None = None) -> Figure:  # noqa: F821
    """Train/val loss and val mIoU per epoch of several runs (``{label: metrics.csv frame}``).

    Losses of runs trained with different losses are not comparable across runs; the mIoU is.
    A marker shows each run's best (lowest val loss) epoch, the checkpoint that is kept.
    """
    fig = _figure(11, 3.4)
    ax_loss, ax_miou = fig.subplots(1, 2)
    for i, (label, df) in enumerate(metrics.items()):
        color = f"C{i}"
        ax_loss.plot(df["epoch"], df["train_loss"], "--", color=color, label=f"{label} train")
        ax_loss.plot(df["epoch"], df["val_loss"], "-", color=color, label=f"{label} val")
        ax_miou.plot(df["epoch"], 100 * df["val_miou"], "-o", ms=3, color=color, label=label)
        if best_epochs and label in best_epochs:
            row = df[df["epoch"] == best_epochs[label]]
            if len(row):
                ax_miou.plot(row["epoch"], 100 * row["val_miou"], "*", ms=12, color=color)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Training (dashed) and validation loss", fontsize=10)
    ax_loss.legend(fontsize=7, ncol=2)
    ax_miou.set_xlabel("epoch")
    ax_miou.set_ylabel("val mIoU (%)")
    ax_miou.set_title("Validation mIoU (star: kept checkpoint)", fontsize=10)
    ax_miou.legend(fontsize=7)
    return fig


def loss_comparison(curves: Mapping[str, Sequence["pd.DataFrame"]], metric: str = "val_miou") -> Figure:  # noqa: F821
    """Figure 5: validation IoU per epoch for each training loss, mean over seeds with the
    min-max band of the seeds and each seed as a thin line.

    ``curves``: ``{loss label: [metrics.csv frame of each seed]}``.
    """
    fig = _figure(8, 3.8)
    ax = fig.subplots()
    for i, (label, frames) in enumerate(curves.items()):
        color = f"C{i}"
        epochs = min(len(df) for df in frames)
        values = np.stack([100 * df[metric].to_numpy()[:epochs] for df in frames])
        x = frames[0]["epoch"].to_numpy()[:epochs]
        for row in values:
            ax.plot(x, row, "-", lw=0.6, alpha=0.45, color=color)
        ax.plot(x, values.mean(0), "-o", ms=3, lw=2, color=color, label=f"{label} (mean of {len(frames)} seeds)")
        if len(frames) > 1:
            ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val mIoU (%)")
    ax.set_title("Validation IoU per epoch by training loss (band: min-max over seeds)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def scheduler_comparison(runs: Mapping[str, "pd.DataFrame"]) -> Figure:  # noqa: F821
    """Figure 6: training and validation loss per epoch of a StepLR run and a constant-LR run
    (``{label: metrics.csv frame}``); the learning rate of each in a small panel below."""
    fig = _figure(8, 4.6)
    ax, ax_lr = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    for i, (label, df) in enumerate(runs.items()):
        color = f"C{i}"
        ax.plot(df["epoch"], df["train_loss"], "--", color=color, label=f"{label}: train")
        ax.plot(df["epoch"], df["val_loss"], "-o", ms=3, color=color, label=f"{label}: val")
        best = df["val_loss"].idxmin()
        ax.plot(df.loc[best, "epoch"], df.loc[best, "val_loss"], "*", ms=13, color=color)
        ax_lr.step(df["epoch"], df["lr"], where="post", color=color, label=label)
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("Training and validation loss, StepLR vs constant learning rate (star: lowest val loss)", fontsize=10)
    ax.legend(fontsize=8)
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("epoch")
    return fig


def confusion_heatmap(matrix: np.ndarray, title: str = "", class_names: Sequence[str] = CLASS_NAMES) -> Figure:
    """Row-normalised confusion matrix (rows: ground truth, columns: prediction) as a heatmap; the
    diagonal is each class's recall. ``matrix``: (C, C) already normalised, NaN rows allowed."""
    import seaborn as sns

    m = np.asarray(matrix, dtype=float)
    fig = _figure(9, 7.6)
    ax = fig.subplots()
    labels = np.where(np.isnan(m) | (100 * m < 0.5), "", np.vectorize(lambda v: f"{100 * v:.0f}")(np.nan_to_num(m)))
    sns.heatmap(100 * m, ax=ax, cmap="Blues", vmin=0, vmax=100, square=True, annot=labels, fmt="",
                annot_kws={"fontsize": 6}, xticklabels=class_names, yticklabels=class_names,
                cbar_kws={"label": "% of the ground-truth class", "shrink": 0.7})
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def qualitative_grid(images: Sequence[np.ndarray], truth: Sequence[np.ndarray],
                     predictions: Mapping[str, Sequence[np.ndarray]], ids: Sequence[str] | None = None) -> Figure:
    """Columns: frames. Rows: image, ground truth (ignored pixels black), then each model's
    prediction in the class colours (one row per model, so many models stay legible)."""
    rows = ["image", "ground truth", *predictions]
    n = len(images)
    h, w = images[0].shape[:2]
    col_w = min(3.6, 11.0 / n)
    fig = _figure(col_w * n + 1.2, col_w * h / w * len(rows) + 1.0)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for c in range(n):
        panels = [images[c], train_ids_to_color(truth[c])] + [train_ids_to_color(p[c]) for p in predictions.values()]
        for r, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(rows[r], fontsize=9)
            if r == 0 and ids is not None:
                ax.set_title(ids[c], fontsize=7)
    _legend(fig, _present(list(truth) + [p for preds in predictions.values() for p in preds]), ncol=7)
    return fig


def per_class_iou_bars(class_iou: Mapping[str, Mapping[str, float]]) -> Figure:
    """Per-class IoU of several models: ``{label: {class: iou}}`` (NaN = class absent)."""
    labels = list(class_iou)
    fig = _figure(11, 3.8)
    ax = fig.subplots()
    positions, width = _grouped_bars(ax, len(labels), 0.85)
    for i, label in enumerate(labels):
        values = [100 * class_iou[label].get(n, np.nan) for n in CLASS_NAMES]
        ax.bar(positions[i], values, width, label=label, color=f"C{i}")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=min(len(labels), 4))
    ax.set_title("Per-class IoU on the validation split (training size)", fontsize=10)
    return fig


def metric_bars(values: Mapping[str, float], errors: Mapping[str, float] | None = None, ylabel: str = "val mIoU (%)",
                title: str = "") -> Figure:
    """A small bar chart of one metric per variant (e.g. the augmentation modes), in percent."""
    labels = list(values)
    fig = _figure(max(4.0, 1.3 * len(labels) + 1), 3.0)
    ax = fig.subplots()
    err = [100 * errors[k] for k in labels] if errors else None
    ax.bar(labels, [100 * values[k] for k in labels], yerr=err, color=[f"C{i}" for i in range(len(labels))], capsize=4)
    for i, k in enumerate(labels):
        ax.text(i, 100 * values[k], f"{100 * values[k]:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def sweep_brackets(sweeps: Mapping[str, object]) -> Figure:
    """The halving brackets of one or more sweeps side by side: ``{title: sweep folder}``.

    Each panel is :func:`cityseg_lib.sweep.plot_brackets`: validation loss of every candidate
    per rung, lines ending where a candidate was dropped, the winner highlighted.
    """
    from .sweep import plot_brackets, read_trials

    fig = _figure(6.0 * len(sweeps), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(sweeps), squeeze=False)[0])
    for ax, (title, folder) in zip(axes, sweeps.items()):
        plot_brackets(read_trials(folder), ax=ax)
        ax.set_title(f"{title}: {ax.get_title()}", fontsize=10)
    return fig
