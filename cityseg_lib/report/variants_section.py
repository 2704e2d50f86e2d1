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
from cityseg_lib.report.cost import (LARGER_UNET, interval_or_dash, ratio_text, side_by_side_how,
                                     side_by_side_ratio, speed_ratio)
from cityseg_lib.report.cells import difference_cell, finding_cell, interval_cell, versus_column
from cityseg_lib.report.evidence import Comparison, comparison, pooled_note, seeds_split
from cityseg_lib.report.format import OPTIMIZER_LABELS, figure_caption, first_up, join, size_hw

__all__ = ["OPTIMIZER_LABELS", "optimizer_table", "optimizer_text", "optimizer_claim", "fig_optimizers",
           "resolution_runs", "resolution_table", "resolution_text", "resolution_claim", "fig_resolution"]



def _row(ctx: ReportContext, label: str, run: str, versus: tuple[str, Comparison | None, int] | None = None) -> dict:
    """One run's row; ``versus`` = (column name, comparison, sign): the paired difference of this run
    against the main configuration (``sign`` -1 when the comparison is main minus this run)."""
    rec, m = ctx.record(run), ctx.runs.metrics(run)
    row = {"run": label, "lowest val loss": round(m["val_loss"].min(), 4),
           "at epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]), "final train loss": round(m["train_loss"].iloc[-1], 4),
           "val mIoU full res % [95% CI]": interval_cell(ctx, run)}
    if versus is not None:
        column, c, sign = versus
        row[column], row["finding"] = difference_cell(c, sign), finding_cell(c)
    row.update({"train time (s)": round(rec.get("train_time_s") or 0.0, 1), "train images/s [95% CI]": _speed(ctx, run)})
    return row


def _speed(ctx: ReportContext, run: str) -> str:
    """``"81.7 (76.0-88.8)"``: the run's median training images/s with its interval over epochs."""
    speed = ctx.record(run).get("train_images_per_s")
    return "–" if not speed else f"{speed:.1f} ({interval_or_dash(ctx, run)})"


def _optimizer_comparisons(ctx: ReportContext) -> dict[str, Comparison]:
    """``{optimiser: comparison main optimiser - it}`` for every other optimiser the U-Net trained with."""
    main = ctx.runs.config(ctx.unet.main_run).optimizer
    return {o: c for o in ctx.unet.optimizer_runs if o != main
            and (c := comparison(ctx, f"optimizer_{main}_vs_{o}")) is not None}


def optimizer_table(ctx: ReportContext) -> pd.DataFrame:
    """One row per optimiser; its paired difference to the main optimiser (AdamW), with the main
    configuration's run of the same seed (or its seeds pooled), and whether that difference is a finding."""
    comps = _optimizer_comparisons(ctx)
    main = OPTIMIZER_LABELS.get(ctx.runs.config(ctx.unet.main_run).optimizer, "the main optimiser")
    column = versus_column(list(comps.values()), main)
    # the comparisons are main minus each other optimiser: a row shows its own minus the main one (the
    # main optimiser has no comparison: a dash)
    return pd.DataFrame([_row(ctx, OPTIMIZER_LABELS.get(o, o), r, (column, comps.get(o), -1) if comps else None)
                         for o, r in ctx.unet.optimizer_runs.items()])


def optimizer_claim(ctx: ReportContext) -> str:
    """What the comparisons say of the reference's claim that AdamW beats Adam and Adamax: supported
    only by differences whose intervals exclude zero (and whose seeds agree)."""
    comps = _optimizer_comparisons(ctx)
    main = ctx.runs.config(ctx.unet.main_run).optimizer
    if main != "adamw" or not comps:
        return ""
    name = {o: OPTIMIZER_LABELS.get(o, o) for o in comps}
    ahead = [name[o] for o, c in comps.items() if c.resolved and c.diff.difference > 0]
    behind = [name[o] for o, c in comps.items() if c.resolved and c.diff.difference < 0]
    open_ = [name[o] for o, c in comps.items() if not c.resolved]
    if behind:
        return (f"This build contradicts the reference's claim: {join(behind)} "
                f"{'beats' if len(behind) == 1 else 'beat'} AdamW beyond the sampling noise"
                + (f", while AdamW beats {join(ahead)}." if ahead else "."))
    if not open_:
        return f"This build supports the reference's claim: AdamW beats {join(ahead)} beyond the sampling noise."
    if ahead:
        return (f"This build supports the reference's claim only in part: AdamW beats {join(ahead)} beyond the "
                f"sampling noise, but its difference to {join(open_)} is unresolved.")
    return (f"{'Neither difference is' if len(open_) == 2 else 'None of the differences is'} resolved, so this "
            f"build neither supports nor contradicts the reference's claim that AdamW beats {join(open_)}."
            if len(open_) > 1 else
            f"The difference is unresolved, so this build neither supports nor contradicts the reference's claim "
            f"that AdamW beats {join(open_)}.")


def optimizer_text(ctx: ReportContext) -> str:
    runs = ctx.unet.optimizer_runs
    if len(runs) < 2:
        return "This build trained the U-Net with one optimiser only, so the reference's claim is not tested here."
    cfg = ctx.runs.config(ctx.unet.main_run)
    comps = list(_optimizer_comparisons(ctx).values())
    claim = optimizer_claim(ctx)
    return (f"The main U-Net was trained with {', '.join(OPTIMIZER_LABELS.get(o, o) for o in runs)}, everything else "
            f"equal (initial learning rate {cfg.lr:g}, weight decay {cfg.weight_decay:g}: decoupled for AdamW, added to "
            "the gradient for Adam and Adamax, as torch defines them). " + " ".join(c.sentence() for c in comps)
            + pooled_note(comps) + (" " + claim if claim else ""))


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
    """The main U-Net and the larger-size run; the larger one's paired difference to the main
    configuration (its run of the same seed, or its seeds pooled), and whether that difference is a finding."""
    c = comparison(ctx, "resolution_large_vs_main") if ctx.unet.resolution_run else None
    column = versus_column([c], "the profile's size") if c else None
    rows = []
    for size, run in resolution_runs(ctx).items():
        versus = None if column is None else (column, c if run == ctx.unet.resolution_run else None, 1)
        rows.append(_row(ctx, size, run, versus))
    return pd.DataFrame(rows).rename(columns={"run": "U-Net trained at"})


def resolution_claim(c: Comparison | None) -> str:
    """What the paired difference says of the reference's 'almost identical' (reduced size against
    the larger one): a difference only when its interval excludes zero and the seeds agree."""
    if c is None or c.diff is None:
        return ""
    if not c.resolved and seeds_split([c]):
        return ("The interval excludes zero, but not every seed pair agrees in sign, so the difference is "
                "unresolved: consistent with the reference's 'almost identical', not a proof of it.")
    if not c.resolved:
        return ("The difference is within the sampling noise, consistent with the reference's 'almost identical' "
                "(not a proof of it: an unresolved difference can still be real).")
    if c.diff.difference > 0:
        return ("So at this scale the larger training size scores measurably higher, where the reference found the "
                "two almost identical.")
    return "So at this scale the profile's reduced size scores measurably higher than the larger one."


def resolution_text(ctx: ReportContext) -> str:
    runs = resolution_runs(ctx)
    if len(runs) < 2:
        return "This build trained the U-Net at one size only, so the reference's claim is not tested here."
    (small, a), (large, b) = list(runs.items())
    c = comparison(ctx, "resolution_large_vs_main")
    side = side_by_side_ratio(ctx, LARGER_UNET, "U-Net")  # seconds per image, large over small, side by side
    r = side or speed_ratio(ctx, a, b)  # else images/s as recorded, small over large: the same ratio
    how = (first_up(side_by_side_how(ctx)) + ", " if side else
           "As the runs recorded it (with whatever else the machine ran then), ")
    cost = ("" if r is None else
            f" {how}training at {large} took {ratio_text(r)} as long per image." if r.resolved else
            f" {how}training at {large} was not measurably slower per image: {ratio_text(r)} as long.")
    claim = resolution_claim(c)
    return (f"The reference trains at a reduced size and reports results 'almost identical' to the full resolution. "
            f"Here the main U-Net ({small}) is compared with the same model trained at {large}, both scored at the "
            f"labels' full resolution. {c.sentence() + pooled_note([c]) if c else ''}"
            f"{' ' + claim if claim else ''}{cost}")


def fig_resolution(ctx: ReportContext, number: int) -> tuple:
    frames = {f"trained at {s}": ctx.runs.metrics(r) for s, r in resolution_runs(ctx).items()}
    return plots.learning_curves(frames), figure_caption(
        number, "Training and validation loss and validation mIoU (at each run's training size) of the U-Net "
        "trained at two sizes.")
