"""Figures of training (Sections 3 and 4): learning curves, losses over seeds, schedules, metric bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from cityseg_lib.plots.common import _figure


def learning_curves(metrics: Mapping[str, "pd.DataFrame"], best_epochs: Mapping[str, int] | None = None) -> Figure:  # noqa: F821
    """Train/val loss and val mIoU per epoch of several runs (``{label: metrics.csv frame}``).

    Losses of runs trained with different losses are not comparable across runs; the mIoU is.
    A marker shows each run's best (lowest val loss) epoch, the checkpoint that is kept, when
    ``best_epochs`` gives it; the mIoU panel's title mentions the star only when one is drawn.
    """
    fig = _figure(11, 3.4)
    ax_loss, ax_miou = fig.subplots(1, 2)
    starred = False
    for i, (label, df) in enumerate(metrics.items()):
        color = f"C{i}"
        ax_loss.plot(df["epoch"], df["train_loss"], "--", color=color, label=f"{label} train")
        ax_loss.plot(df["epoch"], df["val_loss"], "-", color=color, label=f"{label} val")
        ax_miou.plot(df["epoch"], 100 * df["val_miou"], "-o", ms=3, color=color, label=label)
        if best_epochs and label in best_epochs:
            row = df[df["epoch"] == best_epochs[label]]
            if len(row):
                ax_miou.plot(row["epoch"], 100 * row["val_miou"], "*", ms=12, color=color)
                starred = True
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Training (dashed) and validation loss", fontsize=10)
    ax_loss.legend(fontsize=7, ncol=2)
    ax_miou.set_xlabel("epoch")
    ax_miou.set_ylabel("val mIoU (%)")
    ax_miou.set_title("Validation mIoU" + (" (star: kept checkpoint)" if starred else ""), fontsize=10)
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
        # each seed's thin line in full (a seed that stopped early ends early); the mean and band
        # only over the epochs every seed reached, where they are a mean of all the seeds
        epochs = min(len(df) for df in frames)
        values = np.stack([100 * df[metric].to_numpy()[:epochs] for df in frames])
        x = frames[0]["epoch"].to_numpy()[:epochs]
        for df in frames:
            ax.plot(df["epoch"], 100 * df[metric], "-", lw=0.6, alpha=0.45, color=color)
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
    ax_lr.set_ylabel("learning rate (log)")
    ax_lr.set_xlabel("epoch")
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
