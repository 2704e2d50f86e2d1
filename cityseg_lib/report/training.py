"""Section 4 of the report, the training method: augmentation, losses, learning-rate schedule, early stopping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import plots, study
from .context import ReportContext
from .format import AUGMENT_LABELS, LOSS_LABELS, figure_caption, join, pct, pts, size_hw


def augmentation_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for mode, run in ctx.results["03"]["augment_runs"].items():
        rec = study.run_record(run)
        rows.append({"augmentation": AUGMENT_LABELS.get(mode, mode), "train images / epoch": rec["train_images"],
                     "best val loss": round(rec["best_val_loss"], 4), "best epoch": rec["best_epoch"],
                     "val mIoU (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res (%)": round(100 * rec["miou_full_res"], 1)})
    return pd.DataFrame(rows)


def augmentation_text(ctx: ReportContext) -> str:
    recs = {m: study.run_record(r) for m, r in ctx.results["03"]["augment_runs"].items()}
    key = "miou_full_res" if all(not math.isnan(r["miou_full_res"]) for r in recs.values()) else "miou"
    ranked = sorted(recs, key=lambda m: recs[m][key], reverse=True)
    best, none = ranked[0], recs.get("none")
    cfg = study.load_run_config(next(iter(ctx.results["03"]["augment_runs"].values())))
    parts = [
        f"Every image is resized to {size_hw(cfg.image_size)} before training (bilinear for the image, nearest "
        "neighbour for the mask), and the loss is computed at that size. For the full-resolution scores the "
        "logits are up-sampled to the label's own size before the arg-max, as the official protocol requires.",
        f"The augmentation experiment trains the U-Net three times with the same settings: without augmentation, "
        f"with each training image replaced by a randomly flipped (p = {cfg.hflip_p}) and cropped (area "
        f"{cfg.crop_scale[0]:.0%} to {cfg.crop_scale[1]:.0%}, resized back) copy, and with the transformed copies "
        "added to the originals (twice the images per epoch). Table 5 lists the outcome.",
    ]
    order = " > ".join(f"{m} ({pct(recs[m][key])})" for m in ranked)
    verdict = (f"Training without augmentation did best ({order}), as in the reference study, where the "
               "transforms only made validation worse." if best == "none" else
               f"Here `{best}` did best ({order}), {pts(recs[best][key] - none[key])} above no augmentation"
               " — unlike the reference study, which found augmentation unhelpful on the full dataset"
               + (" (with this little data and so few epochs, variety seems to matter more)." if ctx.synthetic else ".")
               if none else f"Ranking: {order}.")
    parts.append(verdict + " The main models are trained without augmentation, as in the reference.")
    return "\n\n".join(parts)


def loss_summary(ctx: ReportContext) -> dict[str, dict]:
    """Per loss: the seeds' best-checkpoint val mIoU (training size and full res) and spread."""
    out = {}
    for loss, runs in ctx.results["05"]["runs"].items():
        recs = [study.run_record(r) for r in runs]
        m = np.array([r["miou"] for r in recs])
        f = np.array([r["miou_full_res"] for r in recs])
        last = np.array([study.load_metrics(r["run"])["val_miou"].iloc[-1] for r in recs])
        out[loss] = {"seeds": [r["seed"] for r in recs], "miou": m.tolist(), "mean": float(m.mean()),
                     "std": float(m.std(ddof=1)) if len(m) > 1 else 0.0, "min": float(m.min()), "max": float(m.max()),
                     "full_res_mean": float(np.nanmean(f)) if np.isfinite(f).any() else math.nan,
                     "last_epoch_mean": float(last.mean())}
    return out


def loss_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for loss, s in loss_summary(ctx).items():
        rows.append({"training loss": LOSS_LABELS.get(loss, loss), "seeds": len(s["seeds"]),
                     "val mIoU mean (%)": round(100 * s["mean"], 1), "std (points)": round(100 * s["std"], 1),
                     "min (%)": round(100 * s["min"], 1), "max (%)": round(100 * s["max"], 1),
                     "full res mean (%)": round(100 * s["full_res_mean"], 1),
                     "last-epoch mean (%)": round(100 * s["last_epoch_mean"], 1)})
    return pd.DataFrame(rows)


def loss_verdict(ctx: ReportContext) -> tuple[str, str, bool]:
    """(best loss, runner-up, whether the gap exceeds both seed ranges' overlap)."""
    s = loss_summary(ctx)
    ranked = sorted(s, key=lambda k: s[k]["mean"], reverse=True)
    if len(ranked) < 2:
        return ranked[0], ranked[0], False
    a, b = ranked[0], ranked[1]
    separated = s[a]["min"] > s[b]["max"]  # every seed of the best beats every seed of the runner-up
    return a, b, separated


def loss_text(ctx: ReportContext) -> str:
    s = loss_summary(ctx)
    seeds = len(next(iter(s.values()))["seeds"])
    ranked = sorted(s, key=lambda k: s[k]["mean"], reverse=True)
    a, b, separated = loss_verdict(ctx)
    order = " > ".join(f"{LOSS_LABELS.get(k, k)} ({pct(s[k]['mean'])} ± {100 * s[k]['std']:.1f})" for k in ranked)
    cfg = study.load_run_config(ctx.results["05"]["runs"][a][0])
    parts = [
        "Three training losses were compared on the U-Net: pixel-wise cross-entropy (every labelled pixel weighs "
        "the same), a soft IoU (Jaccard) loss that optimises a differentiable version of the metric, and the Dice "
        "loss, which averages a per-class overlap score and so gives rare classes as much weight as common ones. "
        "All three ignore the void label.",
        f"Each loss was trained with {seeds} seeds ({join([str(x) for x in s[a]['seeds']])}; {cfg.epochs} epochs, "
        f"{size_hw(cfg.image_size)}), so that a difference can be compared with the spread between seeds. "
        f"Ranked by mean validation mIoU of the kept checkpoint: {order} (mean ± standard deviation over seeds, "
        "training size).",
    ]
    gap = s[a]["mean"] - s[b]["mean"]
    if round(100 * gap, 1) == 0:
        parts.append(f"{LOSS_LABELS.get(a, a).capitalize()} and {LOSS_LABELS.get(b, b)} tie at this precision, so these "
                     "runs do not separate them.")
    elif separated:
        parts.append(
            f"{LOSS_LABELS.get(a, a).capitalize()} is ahead of {LOSS_LABELS.get(b, b)} by {pts(gap)}, and its worst seed "
            f"({pct(s[a]['min'])}) beats the best seed of {LOSS_LABELS.get(b, b)} ({pct(s[b]['max'])}): the ranking is "
            "not one run's luck."
        )
    else:
        parts.append(
            f"{LOSS_LABELS.get(a, a).capitalize()} leads {LOSS_LABELS.get(b, b)} by only {pts(gap)}, and their seed ranges "
            f"overlap ({pct(s[a]['min'])}–{pct(s[a]['max'])} against {pct(s[b]['min'])}–{pct(s[b]['max'])}), so these "
            "runs do not separate the two."
        )
    ref = ("This agrees with the reference study, where cross-entropy also beat both overlap losses."
           if a == "cross_entropy" else
           "The reference study found cross-entropy best; here it is not, "
           + ("and the gap is outside the seed spread." if separated else "but the gap is within the seed spread."))
    parts.append(ref)
    return "\n\n".join(parts)


def fig_loss_comparison(ctx: ReportContext, number: int = 5) -> tuple:
    curves = {LOSS_LABELS.get(loss, loss): [study.load_metrics(r) for r in runs]
              for loss, runs in ctx.results["05"]["runs"].items()}
    seeds = len(next(iter(ctx.results["05"]["runs"].values())))
    return plots.loss_comparison(curves), figure_caption(
        number, f"Validation mIoU (training size) per epoch of the U-Net trained with each loss: bold line the mean "
        f"of {seeds} seeds, thin lines the single seeds, band their minimum to maximum.")


def scheduler_runs(ctx: ReportContext) -> dict[str, dict]:
    r3 = ctx.results["03"]["runs"]
    return {"StepLR": study.run_record(r3["unet"]), "constant": study.run_record(r3["unet_constant_lr"])}


def scheduler_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, rec in scheduler_runs(ctx).items():
        m = study.load_metrics(rec["run"])
        rows.append({"learning rate": f"{label} (γ = {rec['gamma']:g}" + (f", every {rec['step_size']} epochs)"
                                                                            if label == "StepLR" else ")"),
                     "lowest val loss": round(m["val_loss"].min(), 4), "at epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]),
                     "final val loss": round(m["val_loss"].iloc[-1], 4), "final train loss": round(m["train_loss"].iloc[-1], 4),
                     "val mIoU (%)": round(100 * rec["miou"], 1)})
    return pd.DataFrame(rows)


def scheduler_text(ctx: ReportContext) -> str:
    runs = scheduler_runs(ctx)
    step, const = runs["StepLR"], runs["constant"]
    ms, mc = study.load_metrics(step["run"]), study.load_metrics(const["run"])
    cfg = study.load_run_config(step["run"])
    parts = [
        f"All models use AdamW (initial learning rate {cfg.lr:g}, decoupled weight decay {cfg.weight_decay:g}). "
        f"The learning rate is multiplied by γ = {cfg.gamma:g} every {cfg.step_size} epochs (StepLR)"
        + (f"; the reference decays every 10 epochs of 20-epoch runs, and with only {cfg.epochs} epochs this "
           f"profile scales the step down to {cfg.step_size} so the decay happens at all." if cfg.step_size < 10 else ".")
        + " Figure 6 compares this schedule with a constant learning rate (γ = 1), everything else equal.",
    ]
    lows = {"the step schedule": ms["val_loss"].min(), "the constant learning rate": mc["val_loss"].min()}
    (win, lo), (lose, hi) = sorted(lows.items(), key=lambda kv: kv[1])
    parts.append(f"{win[0].upper() + win[1:]} reached the lower validation loss: {lo:.4f} against {hi:.4f} for "
                 f"{lose}, a difference of {hi - lo:.4f}.")
    rising = []
    for label, m in (("StepLR", ms), ("constant", mc)):
        if m["val_loss"].iloc[-1] > m["val_loss"].min() * 1.01:
            rising.append(f"{label} (lowest at epoch {int(m.loc[m['val_loss'].idxmin(), 'epoch'])}, "
                          f"{m['val_loss'].iloc[-1]:.4f} at the end)")
    if rising:
        parts.append("Validation loss rose again after its minimum for " + join(rising)
                     + ": the start of the over-fitting the scheduler is meant to slow down.")
    else:
        parts.append("Neither run's validation loss had turned upwards by the last epoch, so this schedule is too "
                     "short to show the over-fitting the reference observed after about 10 to 20 epochs; the "
                     "comparison here is about convergence speed only.")
    return "\n\n".join(parts)


def fig_scheduler(ctx: ReportContext, number: int = 6) -> tuple:
    runs = scheduler_runs(ctx)
    step = runs["StepLR"]
    frames = {f"StepLR (γ={step['gamma']:g}/{step['step_size']} ep)": study.load_metrics(step["run"]),
              "constant LR": study.load_metrics(runs["constant"]["run"])}
    return plots.scheduler_comparison(frames), figure_caption(
        number, "Training (dashed) and validation (solid) cross-entropy of the U-Net with a step-decayed and a "
        "constant learning rate (lower panel); the star marks each run's lowest validation loss.")


def early_stopping_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, rec in ctx.main.items():
        m = study.load_metrics(rec["run"])
        best_row = m[m["epoch"] == rec["best_epoch"]]
        rows.append({"model": label, "epochs run": rec["epochs_run"], "best epoch": rec["best_epoch"],
                     "best val loss": round(rec["best_val_loss"], 4),
                     "val mIoU at best (%)": round(100 * float(best_row["val_miou"].iloc[0]), 1) if len(best_row) else math.nan,
                     "val mIoU at last (%)": round(100 * float(m["val_miou"].iloc[-1]), 1)})
    return pd.DataFrame(rows)


def early_stopping_text(ctx: ReportContext) -> str:
    early = [k for k, r in ctx.main.items() if r["best_epoch"] < r["epochs_run"]]
    base = ("Every run keeps the weights of the epoch with the lowest validation loss (`best.pt`), and all "
            "scores in this report are those of that checkpoint. ")
    if early:
        last = [k for k in ctx.main if k not in early]
        return base + (f"For {join(early)} that epoch came before the last one, so the kept model differs from the "
                       f"final one (Table 8)" + (f"; for {join(last)} the last epoch was the best." if last else "."))
    return base + ("In this build every model's best epoch was its last (Table 8): none had started to over-fit, "
                   "so early stopping changed nothing and longer training would probably still help.")
