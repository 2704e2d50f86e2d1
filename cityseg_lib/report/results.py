"""Section 5 of the report, the results: scores, per-class IoU, confusions, predictions, dropout and BatchNorm."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import plots, study
from ..labels import CLASS_NAMES
from .context import ReportContext, majority_baseline, val_class_pixels
from .format import figure_caption, join, pct, signed_pts


def results_table(ctx: ReportContext) -> pd.DataFrame:
    size = ctx.main["SimpleFCN"]["image_size"]
    rows = []
    for label, rec in ctx.main.items():
        rows.append({"model": label,
                     f"val mIoU @{size[0]}x{size[1]} (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res, official (%)": round(100 * rec["miou_full_res"], 1),
                     f"pixel accuracy @{size[0]}x{size[1]} (%)": round(100 * rec["pixel_accuracy"], 1),
                     "pixel accuracy full res (%)": round(100 * rec["pixel_accuracy_full_res"], 1),
                     "best epoch": rec["best_epoch"], "best val loss": round(rec["best_val_loss"], 4)})
    name, base = majority_baseline(val_class_pixels(ctx))
    rows.append({"model": f"constant '{name}' (reference floor)", f"val mIoU @{size[0]}x{size[1]} (%)": round(100 * base, 1),
                 "val mIoU full res, official (%)": round(100 * base, 1)})
    return pd.DataFrame(rows)


def per_class_table(ctx: ReportContext, full_res: bool = True) -> pd.DataFrame:
    key = "val_full_res" if full_res else "val"
    data = {}
    for label, rec in ctx.main.items():
        s = study.load_summary(rec["run"])
        scores = s.get(key) or s["val"]
        data[label] = [round(100 * scores["class_iou"].get(n, math.nan), 1) for n in CLASS_NAMES]
    df = pd.DataFrame(data, index=list(CLASS_NAMES))
    df.index.name = "class"
    return df.reset_index()


def fig_per_class(ctx: ReportContext, number: int = 8) -> tuple:
    ious = {label: study.load_summary(rec["run"])["val"]["class_iou"] for label, rec in ctx.main.items()}
    return plots.per_class_iou_bars(ious), figure_caption(
        number, "Per-class IoU on the validation split at the training size (missing bar: the class never appears "
        "in the validation labels nor in the predictions).")


def best_model(ctx: ReportContext) -> str:
    key = "miou_full_res" if all(not math.isnan(r["miou_full_res"]) for r in ctx.main.values()) else "miou"
    return max(ctx.main, key=lambda k: ctx.main[k][key])


def fig_confusion(ctx: ReportContext, number: int = 9) -> tuple:
    from ..metrics import normalized_confusion

    label = best_model(ctx)
    s = study.load_summary(ctx.main[label]["run"])
    mat = s.get("confusion_matrix_full_res") or s["confusion_matrix"]
    where = "at full resolution" if s.get("confusion_matrix_full_res") else "at the training size"
    return plots.confusion_heatmap(normalized_confusion(np.asarray(mat))), figure_caption(
        number, f"Row-normalised confusion matrix of the best model, {label}, on the validation split {where} "
        "(rows: ground truth; the diagonal is each class's recall; void predictions are not shown).")


def fig_qualitative(ctx: ReportContext, number: int = 10, n: int = 3) -> tuple:
    runs = {label: rec["run"] for label, rec in ctx.main.items()}
    frames = study.predict_frames(runs, ctx.data_root, n=n)
    return plots.qualitative_grid(frames["images"], frames["truth"], frames["predictions"], frames["ids"]), figure_caption(
        number, f"{len(frames['ids'])} validation frames (columns) at the training size: the image, the ground truth "
        "(ignored pixels black) and the prediction of each model (rows).")


def confusion_text(ctx: ReportContext) -> str:
    from ..metrics import normalized_confusion

    label = best_model(ctx)
    s = study.load_summary(ctx.main[label]["run"])
    mat = np.asarray(s.get("confusion_matrix_full_res") or s["confusion_matrix"], dtype=float)
    norm = normalized_confusion(mat)
    off = norm.copy()
    np.fill_diagonal(off, np.nan)
    pairs = []
    flat = np.nan_to_num(off, nan=-1).ravel()
    for idx in np.argsort(flat)[::-1][:3]:
        t, p = divmod(int(idx), norm.shape[1])
        if flat[idx] > 0:
            pairs.append(f"{CLASS_NAMES[t]} taken for {CLASS_NAMES[p]} ({pct(flat[idx])} of its pixels)")
    recall = np.diag(norm)
    valid = ~np.isnan(recall)
    worst = [CLASS_NAMES[i] for i in np.argsort(np.where(valid, recall, np.inf))[:3] if valid[i]]
    return (f"The confusion matrix of the best model, {label} (Figure 9), shows where its errors go. The largest "
            f"confusions are {join(pairs) or 'negligible'}; the classes it recovers least are {join(worst)}. "
            "Confusions concentrate between classes that share colour and texture or that are thin, which the "
            "down-scaled input blurs into their surroundings.")


def dropout_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, run in ctx.results["04"]["runs"].items():
        rec = study.run_record(run)
        rows.append({"variant": ctx.results["04"].get("labels", {}).get(label, label),
                     "dropout": rec["dropout"], "best val loss": round(rec["best_val_loss"], 4),
                     "best epoch": rec["best_epoch"], "val mIoU (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res (%)": round(100 * rec["miou_full_res"], 1)})
    return pd.DataFrame(rows)


def dropout_text(ctx: ReportContext) -> str:
    r4 = ctx.results["04"]
    runs = {k: study.run_record(v) for k, v in r4["runs"].items()}
    main = runs.get("swin2_jnet")
    nodrop = runs.get("swin2_jnet_no_dropout")
    parts = []
    if main and nodrop:
        d = main["miou"] - nodrop["miou"]
        loss_with, loss_without = main["best_val_loss"], nodrop["best_val_loss"]
        agree = (loss_with < loss_without) == (d > 0)
        parts.append(
            f"Swin2-JNet was trained with dropout {main['dropout']:g} in every decoder block and without it (Table 12). "
            f"Dropout changed the validation mIoU by {signed_pts(d)} ({pct(main['miou'])} with, {pct(nodrop['miou'])} "
            f"without) and the lowest validation loss from {loss_without:.4f} to {loss_with:.4f}; "
            + ("both measures agree." if agree else "the two measures disagree, so the effect is within noise.")
        )
    if "swin2_jnet_no_batchnorm" in runs:
        nb = runs["swin2_jnet_no_batchnorm"]
        parts.append(f"Without BatchNorm the decoder reached {pct(nb['miou'])} val mIoU against {pct(main['miou'])} with it.")
    elif not r4.get("batchnorm_switch", False):
        parts.append("The model code has no switch to remove the decoder's BatchNorm, so only the dropout half of the "
                     "reference's regularisation claim is tested here; BatchNorm stays on in every run.")
    return "\n\n".join(parts)
