"""Figures of the results (Section 5 and the sweep): confusions, predictions, per-class IoU, brackets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from cityseg_lib.data.labels import CLASS_NAMES, train_ids_to_color
from cityseg_lib.plots.common import _figure, _grouped_bars, _legend, _present


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


def per_class_iou_bars(class_iou: Mapping[str, Mapping[str, float]],
                       intervals: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                       title: str = "Per-class IoU on the validation split (training size)") -> Figure:
    """Per-class IoU of several models: ``{label: {class: iou}}`` (NaN = class absent), with error
    bars from ``intervals`` ``{label: (low (C,), high (C,))}`` in trainId order when given. An
    absent class is written "n/a" where its bar would stand, so it does not read as an IoU of 0."""
    labels = list(class_iou)
    fig = _figure(11, 3.8)
    ax = fig.subplots()
    positions, width = _grouped_bars(ax, len(labels), 0.85)
    for i, label in enumerate(labels):
        values = np.array([100 * class_iou[label].get(n, np.nan) for n in CLASS_NAMES])
        yerr = None
        if intervals and label in intervals:
            low, high = (100 * np.asarray(v, dtype=float) for v in intervals[label])
            yerr = np.nan_to_num(np.vstack([values - low, high - values]).clip(min=0))
        ax.bar(positions[i], values, width, label=label, color=f"C{i}", yerr=yerr,
               error_kw={"elinewidth": 0.6, "capsize": 0, "ecolor": "0.25"})
        # an absent class (NaN) draws no bar, like an IoU of 0: mark it so the two read apart
        for x in positions[i][np.isnan(values)]:
            ax.text(x, 1, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color=f"C{i}")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=min(len(labels), 4))
    ax.set_title(title, fontsize=10)
    return fig


def brackets_panel(ax, trials) -> None:
    """One sweep's brackets on ``ax``: best validation loss of every candidate per rung.

    ``trials``: :func:`cityseg_lib.sweep.read_trials`'s DataFrame. One line per candidate,
    ending where it was dropped, coloured by the last rung it reached (purple: dropped first;
    viridis stops at 0.75, before its pale yellow); the winner in red; a failed trial (val loss
    inf, no point to draw) as a black x on the panel's top edge at its rung, so none vanishes.
    """
    from matplotlib import colormaps

    ok = trials[np.isfinite(trials["best_val_loss"].astype(float))]
    last_rung = int(trials["rung"].max())
    winner = trials.loc[trials["decision"] == "winner", "candidate"]
    winner = winner.iloc[0] if len(winner) else None
    for cand, g in ok.groupby("candidate", sort=True):
        g = g.sort_values("rung")
        reached = int(g["rung"].max())
        if cand == winner:
            ax.plot(g["rung"], g["best_val_loss"], "o-", color="C3", lw=2.5, zorder=3, label=f"winner {cand}")
        else:
            shade = colormaps["viridis"](0.75 * reached / max(last_rung, 1))
            ax.plot(g["rung"], g["best_val_loss"], ".-", color=shade, lw=1.2, alpha=0.85)
        if reached == last_rung:
            ax.annotate(cand, (reached, g["best_val_loss"].iloc[-1]), xytext=(4, 0), textcoords="offset points",
                        fontsize=8, va="center")
    failed = trials[~np.isfinite(trials["best_val_loss"].astype(float))]
    if len(failed):
        ax.plot(failed["rung"], [1.0] * len(failed), "x", color="black", ms=8, clip_on=False,
                transform=ax.get_xaxis_transform(), label=f"failed ({len(failed)})")
    subsets = trials.groupby("rung")["subset"].max()
    ax.set_xticks(list(subsets.index), [f"rung {r}\n{n} img" for r, n in subsets.items()])
    ax.set_xlim(-0.3, last_rung + 0.6)
    ax.set_ylabel("best validation loss")
    ax.set_title(f"halving sweep: {trials.loc[trials['rung'] == 0, 'candidate'].nunique()} candidates", fontsize=10)
    if winner is not None or len(failed):
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)


def sweep_brackets(sweeps: Mapping[str, object]) -> Figure:
    """The halving brackets of one or more sweeps side by side: ``{title: sweep folder}``
    (each panel is :func:`brackets_panel`)."""
    from cityseg_lib.sweep import read_trials

    fig = _figure(6.0 * len(sweeps), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(sweeps), squeeze=False)[0])
    for ax, (title, folder) in zip(axes, sweeps.items()):
        brackets_panel(ax, read_trials(folder))
        ax.set_title(f"{title}: {ax.get_title()}", fontsize=10)
    return fig


def differences_plot(rows: Sequence[Mapping]) -> Figure:
    """Paired differences with their 95% intervals, one row per comparison (a forest plot).

    ``rows``: dicts with ``label``, ``difference``, ``ci_low``, ``ci_high`` (fractions) and
    ``resolved``; resolved rows are drawn solid, unresolved ones hollow and grey.
    """
    n = len(rows)
    fig = _figure(8.0, 0.38 * n + 1.2)
    ax = fig.subplots()
    for i, r in enumerate(rows):
        y = n - 1 - i
        color = "C0" if r["resolved"] else "0.55"
        ax.plot([100 * r["ci_low"], 100 * r["ci_high"]], [y, y], "-", color=color, lw=2)
        ax.plot(100 * r["difference"], y, "o", color=color, mfc=color if r["resolved"] else "white", ms=6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(n), [r["label"] for r in rows][::-1], fontsize=8)
    ax.set_xlabel("difference in val mIoU (points), 95% paired-bootstrap interval")
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="x", alpha=0.3)
    return fig
