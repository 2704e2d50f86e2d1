"""The two claims of the reference that its study never tested, now measured on the U-Net:

* Section 3.3 says AdamW beats Adam and Adamax: the main U-Net trained with each optimiser;
* Section 3.1 says training at the reduced size gives results "almost identical" to the full
  resolution: the main U-Net trained at a larger size in the same proportion, both scored at the
  labels' full resolution (official protocol).

Each comparison is a paired difference on the same validation images with its 95% interval
(:mod:`.evidence`), and the sentences say "unresolved" when the interval includes zero.
"""

from __future__ import annotations

import pandas as pd

from cityseg_lib import plots
from cityseg_lib.report.context import ReportContext
from cityseg_lib.report.cost import interval_or_dash, ratio_text, speed_ratio
from cityseg_lib.report.evidence import comparison, interval_cell, pooled_note
from cityseg_lib.report.format import figure_caption, size_hw

__all__ = ["OPTIMIZER_LABELS", "optimizer_table", "optimizer_text", "fig_optimizers", "resolution_runs",
           "resolution_table", "resolution_text", "fig_resolution"]

OPTIMIZER_LABELS = {"adamw": "AdamW", "adam": "Adam", "adamax": "Adamax"}


def _row(ctx: ReportContext, label: str, run: str) -> dict:
    rec, m = ctx.record(run), ctx.runs.metrics(run)
    return {"run": label, "lowest val loss": round(m["val_loss"].min(), 4),
            "at epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]), "final train loss": round(m["train_loss"].iloc[-1], 4),
            "val mIoU full res % [95% CI]": interval_cell(ctx, run),
            "train time (s)": round(rec.get("train_time_s") or 0.0, 1),
            "train images/s [95% CI]": _speed(ctx, run)}


def _speed(ctx: ReportContext, run: str) -> str:
    """``"81.7 (76.0-88.8)"``: the run's median training images/s with its interval over epochs."""
    speed = ctx.record(run).get("train_images_per_s")
    return "–" if not speed else f"{speed:.1f} ({interval_or_dash(ctx, run)})"


def optimizer_table(ctx: ReportContext) -> pd.DataFrame:
    return pd.DataFrame([_row(ctx, OPTIMIZER_LABELS.get(o, o), r) for o, r in ctx.unet.optimizer_runs.items()])


def optimizer_text(ctx: ReportContext) -> str:
    runs = ctx.unet.optimizer_runs
    if len(runs) < 2:
        return "This build trained the U-Net with one optimiser only, so the reference's claim is not tested here."
    cfg = ctx.runs.config(ctx.unet.main_run)
    comps = [c for o in runs if (c := comparison(ctx, f"optimizer_{cfg.optimizer}_vs_{o}"))]
    return (f"The main U-Net was trained with {', '.join(OPTIMIZER_LABELS.get(o, o) for o in runs)}, everything else "
            f"equal (initial learning rate {cfg.lr:g}, weight decay {cfg.weight_decay:g}: decoupled for AdamW, added to "
            "the gradient for Adam and Adamax, as torch defines them). " + " ".join(c.sentence() for c in comps)
            + pooled_note(comps))


def fig_optimizers(ctx: ReportContext, number: int) -> tuple:
    frames = {OPTIMIZER_LABELS.get(o, o): ctx.runs.metrics(r) for o, r in ctx.unet.optimizer_runs.items()}
    return plots.learning_curves(frames), figure_caption(
        number, "Training and validation loss and validation mIoU of the U-Net per epoch with each optimiser.")


def resolution_runs(ctx: ReportContext) -> dict[str, str]:
    """``{"HxW": run}``: the main U-Net and the larger-size run (only the main one without it)."""
    out = {}
    for run in filter(None, (ctx.unet.main_run, ctx.unet.resolution_run)):
        out[size_hw(ctx.runs.config(run).image_size)] = run
    return out


def resolution_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for size, run in resolution_runs(ctx).items():
        rows.append(_row(ctx, f"U-Net trained at {size}", run))
    return pd.DataFrame(rows)


def resolution_text(ctx: ReportContext) -> str:
    runs = resolution_runs(ctx)
    if len(runs) < 2:
        return "This build trained the U-Net at one size only, so the reference's claim is not tested here."
    (small, a), (large, b) = list(runs.items())
    c = comparison(ctx, "resolution_large_vs_main")
    r = speed_ratio(ctx, a, b)  # images/s at the small size over the large: time per image, large over small
    cost = ("" if r is None else
            f" Training at {large} took {ratio_text(r)} as long per image." if r.resolved else
            f" Training at {large} was not measurably slower per image: {ratio_text(r)} as long.")
    return (f"The reference trains at a reduced size and reports results 'almost identical' to the full resolution. "
            f"Here the main U-Net ({small}) is compared with the same model trained at {large}, both scored at the "
            f"labels' full resolution. {c.sentence() + pooled_note([c]) if c else ''}{cost}")


def fig_resolution(ctx: ReportContext, number: int) -> tuple:
    frames = {f"trained at {s}": ctx.runs.metrics(r) for s, r in resolution_runs(ctx).items()}
    return plots.learning_curves(frames), figure_caption(
        number, "Training and validation loss and validation mIoU (at each run's training size) of the U-Net "
        "trained at two sizes.")
