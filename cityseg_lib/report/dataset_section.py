"""Section 2 of the report, the dataset: split sizes, class statistics and sample figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cityseg_lib import plots
from cityseg_lib.report.context import ReportContext, majority_baseline, val_class_pixels
from cityseg_lib.report.format import figure_caption, join, pct


def split_table(ctx: ReportContext) -> pd.DataFrame:
    r = ctx.data
    rows = []
    for split, info in r.splits.items():
        coarse = r.coarse_counts.get(split)
        rows.append({"split": split, "images": info["images"], "cities": len(info["cities"]),
                     "coarse labels": coarse if coarse is not None else "–"})
    return pd.DataFrame(rows)


def dataset_text(ctx: ReportContext) -> str:
    r = ctx.data
    fine = r.class_stats["fine"]
    pixels = fine["pixels"]
    total = sum(pixels.values()) or 1
    shares = sorted(((v / total, k) for k, v in pixels.items() if v > 0), reverse=True)
    absent = [k for k, v in pixels.items() if v == 0]
    top3 = join([f"{k} ({pct(s)})" for s, k in shares[:3]])
    rare = join([f"{k} ({pct(s, 2)})" for s, k in shares[-3:]])
    per_image = np.asarray(fine["classes_per_image"])
    frames = sum(info["images"] for info in r.splits.values())
    sizes = join(list(r.image_sizes))
    text = [
        f"The dataset of this build lives at `{ctx.data_root_shown}`"
        + (", and it is **synthetic**: frames drawn by `cityseg make-demo-data` in the official folder layout and "
           "label encoding, with made-up city names." if ctx.synthetic else ".")
        + f" Its {frames} frames are {sizes} pixels (width x height); Table 3 counts them per split.",
        f"In the fine training labels the three most frequent classes cover {top3} of the labelled pixels, "
        f"while the rarest present classes are {rare}"
        + (f"; {join(absent)} never occur{'s' if len(absent) == 1 else ''}" if absent else "")
        + f". A training frame holds {per_image.mean():.1f} classes on average (between {per_image.min()} and "
          f"{per_image.max()}). This imbalance matters twice: a model can reach a high pixel accuracy by getting "
          "only the large classes right, which is why the study reports the class-averaged IoU, and the rare, "
          "thin classes are the first to suffer from down-scaled inputs.",
    ]
    coarse = r.class_stats.get("coarse")
    if coarse:
        c_total = sum(coarse["pixels"].values())
        f_lab = fine.get("labelled_share")
        c_lab = coarse.get("labelled_share")
        if f_lab is not None and c_lab is not None:
            text.append(
                f"The coarse annotations label {pct(c_lab)} of the pixels of their frames, against {pct(f_lab)} for the "
                "fine ones: coarse polygons leave object borders unlabelled (Figure 1a), which makes them cheap to draw "
                "and useful as extra weak supervision, but not a substitute for fine labels at evaluation time."
            )
        elif c_total:
            text.append("The coarse polygons leave object borders unlabelled (Figure 1a).")
    name, base = majority_baseline(val_class_pixels(ctx) or pixels)
    text.append(
        f"As a floor for the results: predicting the most frequent class ({name}) everywhere would score "
        f"a mIoU of {pct(base)} on the validation split."
    )
    return "\n\n".join(text)


def fig_samples(ctx: ReportContext, number: int = 1, n: int = 2) -> tuple:
    from cityseg_lib.data.statistics import load_frames

    frames = load_frames(ctx.data_root, "train", n, width=640)
    has_coarse = any(f["coarse"] is not None for f in frames)
    cap = ("Training frames with (a) the coarse and (b) the fine annotation overlaid in the official class "
           "colours; unlabelled pixels show the plain image." if has_coarse else
           "Training frames with the fine annotation overlaid (this dataset has no coarse labels).")
    return plots.sample_grid(frames), figure_caption(number, cap)


def fig_class_frequency(ctx: ReportContext, number: int = 2) -> tuple:
    stats = ctx.data.class_stats
    data = {"fine": stats["fine"]["pixels"]}
    if stats.get("coarse"):
        data["coarse"] = stats["coarse"]["pixels"]
    note = f" (labels read every {stats['fine']['stride']}th pixel)" if stats["fine"].get("stride", 1) > 1 else ""
    return plots.class_frequency_bars(data), figure_caption(
        number, f"Share of the labelled pixels of the {stats['fine']['images']} training frames per class, fine "
        f"(class colours) and coarse (hatched) annotations, log scale{note}.")


def fig_cooccurrence(ctx: ReportContext, number: int = 3) -> tuple:
    fine = ctx.data.class_stats["fine"]
    return plots.class_cooccurrence(np.asarray(fine["cooccurrence"]), fine["classes_per_image"]), figure_caption(
        number, "Left: percentage of training frames that contain both classes (diagonal: frames containing the "
        "class). Right: number of classes per frame.")
