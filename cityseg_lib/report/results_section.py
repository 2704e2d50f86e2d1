"""Section 5 of the report, the results: scores with intervals, per-class IoU, confusions, predictions,
how sure each comparison is, and dropout and BatchNorm."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cityseg_lib import plots
from cityseg_lib.data.labels import CLASS_NAMES
from cityseg_lib.evaluate.intervals import expanded_level
from cityseg_lib.evaluate.uncertainty import paired_difference
from cityseg_lib.report.context import ReportContext, majority_baseline, val_class_pixels
from cityseg_lib.report.cells import difference_cell, finding_cell, interval_cell, train_size_cell, versus_column
from cityseg_lib.report.evidence import class_intervals, comparison, pooled_note, val_loss_against_seeds
from cityseg_lib.report.headline_json import differences_table, headline, points
from cityseg_lib.report.ranking import best_model, top_model_phrase
from cityseg_lib.report.format import figure_caption, join, pct, pts, signed_pts, size_hw


def results_table(ctx: ReportContext) -> pd.DataFrame:
    """Table 10: the headline models, each mIoU with its 95% interval over the validation images, at
    the training size and under the official protocol (the latter headline.json's numbers)."""
    size = ctx.main["SimpleFCN"]["image_size"]
    at_size, full = f"val mIoU @{size[0]}x{size[1]} % [95% CI]", "val mIoU full res, official % [95% CI]"
    if ctx.two_recipes:  # the tuned models train with the ablation recipe: another size
        at_size = "val mIoU at the training size % [95% CI]"
    models = headline(ctx)["models"]
    rows = []
    for label, rec in ctx.main.items():
        h, run = models[ctx.main_keys[label]], ctx.main_runs[label]
        recipe = {"recipe": ctx.recipe_of(run)} if ctx.two_recipes else {}
        rows.append({"model": label, **recipe, at_size: train_size_cell(ctx, run), full: interval_cell(ctx, run),
                     "pixel accuracy full res (%)": points(h["pixel_accuracy"]), "seeds": len(h["seeds"]),
                     "mean over seeds (%)": points(h["seed_mean"]), "sd over seeds (points)": points(h["seed_sd"]),
                     "best epoch": rec["best_epoch"], "best val loss": round(rec["best_val_loss"], 4)})
    name, base = majority_baseline(val_class_pixels(ctx))
    rows.append({"model": f"constant '{name}' (reference floor)", at_size: f"{100 * base:.1f}",
                 full: f"{100 * base:.1f}"})
    return pd.DataFrame(rows)


def results_note(ctx: ReportContext) -> str:
    h = headline(ctx)
    n = next((m["n_images"] for m in h["models"].values() if m["n_images"]), None)
    tail = 100 * (1 - expanded_level(0.95, n)) / 2 if n else math.nan
    return (f"Each interval is a 95% bootstrap interval over the {n} validation images ({h['n_boot']} resamples of "
            f"the per-image confusion matrices), expanded for the few images: its ends are the resamples' "
            f"{tail:.1f}% and {100 - tail:.1f}% quantiles (Student's t with {n - 1} degrees of freedom instead of "
            "the normal), because plain 2.5%-97.5% intervals cover the truth less often than 95% "
            "on a small validation set. It shows how much the score would move on another validation set "
            "of this size, not how much another training seed would change it; the mean and standard deviation "
            "over the seeds each model was trained with show that (the main run is the first seed). Comparisons "
            "of models pool all their seeds." if n else
            "These runs stored no per-image matrices, so no intervals are given.")


def scoring_resolution_text(ctx: ReportContext) -> str:
    """What scoring at the labels' full resolution instead of the training size changes: each main
    model's paired difference (full resolution minus training size, the same frames resampled
    together) with its 95% interval; a change is named only where its interval excludes zero. Runs
    without training-size per-image matrices give the differences without intervals. Empty when
    no model was scored at full resolution."""
    diffs = {k: r["miou_full_res"] - r["miou"] for k, r in ctx.main.items() if not math.isnan(r["miou_full_res"])}
    if not diffs:
        return ""
    values = list(diffs.values())
    mean = float(np.mean(values))
    head = "Scoring at the labels' full resolution instead of the training size changes mIoU "
    pairs = {k: ctx.runs.scoring_pair(ctx.main_runs[k]) for k in diffs}
    if any(p is None for p in pairs.values()):  # runs from before the training-size matrices were kept
        spread = ("by less than 0.05 points for every model" if max(abs(d) for d in values) < 5e-4 else
                  f"by {signed_pts(mean)} on average (from {signed_pts(min(values))} to {signed_pts(max(values))})")
        return (head + spread + ". These runs kept no per-image matrices at the training size, so the change has "
                "no interval and this build draws no conclusion from it.")
    paired = {k: paired_difference(full, train, n_boot=ctx.n_boot) for k, (train, full) in pairs.items()}
    cells = "; ".join(f"{k} {difference_cell(d)}" for k, d in paired.items())
    mean = float(np.mean([d.difference for d in paired.values()]))  # on the frames both files hold
    text = (f"{head}by {signed_pts(mean)} on average. Per model, in points with the paired 95% interval over the "
            f"validation images: {cells}.")
    lower = {k: d for k, d in paired.items() if d.high < 0}
    higher = {k: d for k, d in paired.items() if d.low > 0}
    if not lower and not higher:
        return text + (" No interval excludes zero: at this validation size no model is shown to score differently "
                       "at full resolution, so scoring at the training size is not shown to lose label detail (nor "
                       "shown not to: an unresolved difference can still be real).")

    def by(group: dict) -> str:
        sizes = sorted(abs(d.difference) for d in group.values())
        low, high = pts(sizes[0]), pts(sizes[-1])
        return f"by {low}" if low == high else f"by {low.split()[0]} to {high}"

    parts = []
    if lower:
        parts.append(f"{join(list(lower))} {'scores' if len(lower) == 1 else 'score'} measurably lower at full "
                     f"resolution, {by(lower)}, as expected if up-sampled logits cannot restore the detail lost by "
                     "down-scaling.")
    if higher:
        parts.append(f"{join(list(higher))} {'scores' if len(higher) == 1 else 'score'} measurably higher at full "
                     f"resolution, {by(higher)}; a possible cause is that its up-sampled logits are smoother than the "
                     "nearest-neighbour down-scaled masks they are scored against at the training size.")
    return text + " " + " ".join(parts)


def per_class_table(ctx: ReportContext, full_res: bool = True) -> pd.DataFrame:
    key = "val_full_res" if full_res else "val"
    data = {}
    for label, rec in ctx.main.items():
        s = ctx.runs.summary(ctx.main_runs[label])
        scores = s.get(key) or s["val"]
        data[label] = [round(100 * scores["class_iou"].get(n, math.nan), 1) for n in CLASS_NAMES]
    df = pd.DataFrame(data, index=list(CLASS_NAMES))
    df.index.name = "class"
    return df.reset_index()


def fig_per_class(ctx: ReportContext, number: int = 8) -> tuple:
    """Per-class IoU of the main models under the official protocol, each bar with its 95% bootstrap
    interval over the validation images (at the training size, without intervals, for runs that
    stored no per-image matrices)."""
    ious, intervals = {}, {}
    for label, run in ctx.main_runs.items():
        found = class_intervals(ctx, run)
        if found is None:
            ious[label] = ctx.runs.summary(run)["val"]["class_iou"]
            continue
        value, low, high = found
        ious[label] = dict(zip(CLASS_NAMES, value))
        intervals[label] = (low, high)
    full = len(intervals) == len(ious)
    fig = plots.per_class_iou_bars(ious, intervals, "Per-class IoU on the validation split (" + (
        "official full-resolution protocol, 95% bootstrap intervals)" if full else "training size)"))
    return fig, figure_caption(
        number, "Per-class IoU on the validation split " + (
            "under the official full-resolution protocol (Table 11), each bar with its 95% bootstrap interval over "
            "the validation images" if full else "at the training size") +
        " (n/a: the class never appears in the validation labels nor in that model's predictions).")


def fig_confusion(ctx: ReportContext, number: int = 9) -> tuple:
    from cityseg_lib.train.metrics import normalized_confusion

    label = best_model(ctx)
    s = ctx.runs.summary(ctx.main_runs[label])
    mat = s.get("confusion_matrix_full_res") or s["confusion_matrix"]
    where = "at full resolution" if s.get("confusion_matrix_full_res") else "at the training size"
    return plots.confusion_heatmap(normalized_confusion(np.asarray(mat))), figure_caption(
        number, f"Row-normalised confusion matrix of {top_model_phrase(ctx)}, on the validation split {where} "
        "(rows: ground truth; the diagonal is each class's recall; void predictions are not shown).")


def fig_qualitative(ctx: ReportContext, number: int = 10, n: int = 3) -> tuple:
    from cityseg_lib import runstore
    from cityseg_lib.evaluate.predict import predict_frames

    frames = predict_frames({label: runstore.resolve(run) for label, run in ctx.main_runs.items()}, ctx.data_root, n=n)
    return plots.qualitative_grid(frames["images"], frames["truth"], frames["predictions"], frames["ids"]), figure_caption(
        number, f"{len(frames['ids'])} validation frames (columns) at the training size: the image, the ground truth "
        "(ignored pixels black) and the prediction of each model (rows).")


def confusion_text(ctx: ReportContext) -> str:
    from cityseg_lib.train.metrics import normalized_confusion

    label = best_model(ctx)
    s = ctx.runs.summary(ctx.main_runs[label])
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
    # classes whose recall rounds to 0.0%: name them all (naming three of eleven tied at zero as "the
    # least recovered" would pick them by their index); otherwise the three lowest
    missed = [CLASS_NAMES[i] for i in range(len(recall)) if valid[i] and recall[i] < 0.0005]
    worst = missed if len(missed) >= 3 else [CLASS_NAMES[i] for i in np.argsort(np.where(valid, recall, np.inf))[:3]
                                             if valid[i]]
    gt = mat.sum(1)  # ground-truth pixels of each class (the void column counts: a miss is still the class's)
    share = gt / gt.sum() if gt.sum() > 0 else np.zeros_like(gt)
    present = share > 0
    idx = [CLASS_NAMES.index(c) for c in worst]
    worst_share = float(share[idx].mean()) if idx else 0.0
    mean_share = float(share[present].mean()) if present.any() else 0.0
    h, w = ctx.runs.config(ctx.main_runs[label]).image_size
    small = "" if not idx else (
        f" These hold {pct(worst_share, 2)} of the labelled validation pixels per class, against {pct(mean_share, 2)} "
        "for the average class present" + (
            f" (about {worst_share * h * w:.0f} of the {h * w:,} pixels of a {size_hw((h, w))} training input): the "
            "errors fall on the small classes." if worst_share < mean_share else
            ": the errors are not confined to the small classes."))
    return (f"The confusion matrix of {top_model_phrase(ctx)} (Figure 9) shows where {label}'s errors go. The largest "
            f"confusions are {join(pairs) or 'negligible'}; " + (
                f"it recovers less than 0.05% of the pixels of {len(worst)} classes: {join(worst)}."
                if worst is missed else f"the classes it recovers least are {join(worst)}.") + small)


def fig_differences(ctx: ReportContext, number: int = 11) -> tuple:
    rows = [{"label": f"{c['a']} − {c['b']}", **c} for c in headline(ctx)["comparisons"].values()
            if c["difference"] is not None]
    if not rows:
        return None, "*No paired per-image scores: the comparisons cannot be assessed.*"
    return plots.differences_plot(rows), figure_caption(
        number, "Every comparison of the study as a difference in full-resolution val mIoU with its 95% paired "
        "bootstrap interval (pooled over seeds where both sides repeat; a variant trained once against the run of its "
        "own seed); filled: resolved (the interval excludes zero and the seeds agree), hollow grey: unresolved.")


def comparisons_table(ctx: ReportContext) -> pd.DataFrame:
    return differences_table(ctx)


def _swin_variants(ctx: ReportContext) -> dict[str, str]:
    """``{label: run}`` of the Swin2-JNet regularisation variants."""
    ref = ctx.reference("Swin2-JNet")  # what the variants vary: the main run, or the ablation recipe's run
    d = ctx.record(ref)["dropout"]
    out = {f"dropout {d:g}, BatchNorm": ref}
    if ctx.swin.no_dropout_run:
        out["no dropout, BatchNorm"] = ctx.swin.no_dropout_run
    if ctx.swin.no_batchnorm_run:
        out[f"dropout {d:g}, no BatchNorm"] = ctx.swin.no_batchnorm_run
    return out


def dropout_table(ctx: ReportContext) -> pd.DataFrame:
    """The Swin2-JNet reference (:meth:`ReportContext.reference`) and its regularisation variants; each
    variant's paired difference to the reference configuration (its run of the same seed, or its seeds pooled: the comparisons are main minus variant)
    and the finding."""
    comps = {ctx.swin.no_dropout_run: comparison(ctx, "dropout_vs_no_dropout"),
             ctx.swin.no_batchnorm_run: comparison(ctx, "batchnorm_vs_no_batchnorm")}
    versus = versus_column(list(comps.values()), "the ablation reference" if ctx.two_recipes else "the main model")
    rows = []
    for label, run in _swin_variants(ctx).items():
        rec = ctx.record(run)
        c = comps.get(run) if run != ctx.reference("Swin2-JNet") else None
        rows.append({"variant": label, "dropout": rec["dropout"], "best val loss": round(rec["best_val_loss"], 4),
                     "best epoch": rec["best_epoch"], "val mIoU (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res % [95% CI]": interval_cell(ctx, run),
                     versus: difference_cell(c, -1), "finding": finding_cell(c)})
    return pd.DataFrame(rows)


def dropout_text(ctx: ReportContext) -> str:
    parts = []
    main = ctx.record(ctx.reference("Swin2-JNet"))
    drop = comparison(ctx, "dropout_vs_no_dropout")
    if drop:
        seeds = ctx.ablation_runs("Swin2-JNet")
        parts.append(
            f"Swin2-JNet was trained with dropout {main['dropout']:g} in every decoder block and without it (Table 12"
            + ("; both with the ablation recipe" if ctx.two_recipes else "") + "). "
            + drop.sentence() + " " + val_loss_against_seeds(ctx, seeds, ctx.swin.no_dropout_run,
                                                              "the model with dropout", "the model without it"))
    bn = comparison(ctx, "batchnorm_vs_no_batchnorm")
    if bn:
        parts.append("Removing the decoder's BatchNorm: " + bn.sentence())
    elif not ctx.swin.batchnorm_switch:
        parts.append("The model code has no switch to remove the decoder's BatchNorm, so only the dropout half of the "
                     "reference's regularisation claim is tested here; BatchNorm stays on in every run.")
    if not parts:
        parts.append("This build trained no regularisation variants of Swin2-JNet.")
    parts[-1] += pooled_note([drop, bn])
    return "\n\n".join(parts)
