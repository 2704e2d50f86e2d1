"""The two claims of the reference that its study never tested, now measured on the U-Net:

* Section 3.3 says AdamW beats Adam and Adamax: the U-Net reference (the main U-Net, or with two
  recipes the U-Net of the ablation recipe, :meth:`ReportContext.reference`) trained with each optimiser;
* Section 3.1 says training at the reduced size gives results "almost identical" to the full
  resolution: that U-Net trained again at notebook 03's ``resolution_size`` (larger or smaller
  than its size: the words take the direction from the two runs' configs; None skips
  the experiment), both scored at the labels' full resolution (official protocol).

Each comparison is a paired difference on the same validation images with its 95% interval
(:mod:`.evidence`), and the sentences say "unresolved" when the interval includes zero.
"""

from __future__ import annotations

import pandas as pd

from cityseg_lib import plots
from cityseg_lib.report.context import ReportContext
from cityseg_lib.report.cost import (REFERENCE_UNET, RESOLUTION_UNET, interval_or_dash, ratio_text, side_by_side_how,
                                     side_by_side_ratio, speed_ratio)
from cityseg_lib.report.cells import difference_cell, finding_cell, interval_cell, versus_column
from cityseg_lib.report.evidence import Comparison, comparison, pooled_note, resolution_sizes, seeds_split
from cityseg_lib.report.format import OPTIMIZER_LABELS, figure_caption, first_up, join, size_hw, size_relation

__all__ = ["OPTIMIZER_LABELS", "optimizer_table", "optimizer_text", "optimizer_claim", "fig_optimizers",
           "resolution_runs", "resolution_table", "resolution_caption", "resolution_text", "resolution_claim",
           "fig_resolution"]


def _ref(ctx: ReportContext) -> str:
    """The run both experiments vary: the U-Net's ablation reference (its main run with one recipe)."""
    return ctx.reference("U-Net")


def _ref_name(ctx: ReportContext, lower: bool = False) -> str:
    """``"The main U-Net"``, or with two recipes ``"The U-Net of the ablation recipe"``."""
    name = "The U-Net of the ablation recipe" if ctx.two_recipes else "The main U-Net"
    return name[0].lower() + name[1:] if lower else name


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
    main = ctx.runs.config(_ref(ctx)).optimizer
    return {o: c for o in ctx.unet.optimizer_runs if o != main
            and (c := comparison(ctx, f"optimizer_{main}_vs_{o}")) is not None}


def optimizer_table(ctx: ReportContext) -> pd.DataFrame:
    """One row per optimiser; its paired difference to the main optimiser (AdamW), with the main
    configuration's run of the same seed (or its seeds pooled), and whether that difference is a finding."""
    comps = _optimizer_comparisons(ctx)
    main = OPTIMIZER_LABELS.get(ctx.runs.config(_ref(ctx)).optimizer, "the main optimiser")
    column = versus_column(list(comps.values()), main)
    # the comparisons are main minus each other optimiser: a row shows its own minus the main one (the
    # main optimiser has no comparison: a dash)
    return pd.DataFrame([_row(ctx, OPTIMIZER_LABELS.get(o, o), r, (column, comps.get(o), -1) if comps else None)
                         for o, r in ctx.unet.optimizer_runs.items()])


def optimizer_claim(ctx: ReportContext) -> str:
    """What the comparisons say of the reference's claim that AdamW beats Adam and Adamax: supported
    only by differences whose intervals exclude zero (and whose seeds agree)."""
    comps = _optimizer_comparisons(ctx)
    main = ctx.runs.config(_ref(ctx)).optimizer
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
    cfg = ctx.runs.config(_ref(ctx))
    comps = list(_optimizer_comparisons(ctx).values())
    claim = optimizer_claim(ctx)
    return (f"{_ref_name(ctx)} was trained with {', '.join(OPTIMIZER_LABELS.get(o, o) for o in runs)}, everything else "
            f"equal (initial learning rate {cfg.lr:g}, weight decay {cfg.weight_decay:g}: decoupled for AdamW, added to "
            "the gradient for Adam and Adamax, as torch defines them). " + " ".join(c.sentence() for c in comps)
            + pooled_note(comps) + (" " + claim if claim else ""))


def fig_optimizers(ctx: ReportContext, number: int) -> tuple:
    frames = {OPTIMIZER_LABELS.get(o, o): ctx.runs.metrics(r) for o, r in ctx.unet.optimizer_runs.items()}
    return plots.learning_curves(frames), figure_caption(
        number, "Training and validation loss and validation mIoU of the U-Net per epoch with each optimiser.")


def resolution_runs(ctx: ReportContext) -> dict[str, str]:
    """``{"HxW": run}``: the main U-Net and the training-size run (only the main one without it)."""
    out = {size_hw(ctx.runs.config(_ref(ctx)).image_size): _ref(ctx)}
    if ctx.unet.resolution_run:
        size = size_hw(ctx.runs.config(ctx.unet.resolution_run).image_size)
        out[size if size not in out else f"{size}, again"] = ctx.unet.resolution_run
    return out


def _relation(ctx: ReportContext) -> str | None:
    """How the training-size run's size stands to the main run's (:func:`size_relation`); None when skipped."""
    sizes = resolution_sizes(ctx)
    return None if sizes is None else size_relation(sizes[1], sizes[0])


def _hw(size) -> str:
    return "x".join(map(str, size))


def resolution_table(ctx: ReportContext) -> pd.DataFrame:
    """The main U-Net and the training-size run; the latter's paired difference to the main
    configuration (its run of the same seed, or its seeds pooled), and whether that difference is a finding."""
    c = comparison(ctx, "resolution_large_vs_main")
    column = versus_column([c], _hw(resolution_sizes(ctx)[0])) if c else None
    rows = []
    for size, run in resolution_runs(ctx).items():
        versus = None if column is None else (column, c if run == ctx.unet.resolution_run else None, 1)
        rows.append(_row(ctx, size, run, versus))
    return pd.DataFrame(rows).rename(columns={"run": "U-Net trained at"})


def resolution_caption(ctx: ReportContext) -> str:
    """Caption of the training-size table: the sizes that ran (one when the experiment was skipped)."""
    main = size_hw(ctx.runs.config(_ref(ctx)).image_size)
    rel = _relation(ctx)
    if rel is None:
        return (f"{_ref_name(ctx)} at its training size, {main}, alone: the training-size experiment was skipped "
                "(official full-resolution protocol).")
    other = size_hw(resolution_sizes(ctx)[1])
    second = f"at the {rel} size {other}" if rel in ("larger", "smaller") else f"again at {other}"
    return (f"{_ref_name(ctx)} ({main}) and the same model trained {second}, scored under the official "
            "full-resolution protocol.")


def resolution_claim(ctx: ReportContext, c: Comparison | None) -> str:
    """What the paired difference says of the reference's 'almost identical' (a reduced training size
    against a larger one): a difference only when its interval excludes zero and the seeds agree; which
    size is the larger comes from the two runs' configs (:func:`resolution_sizes`)."""
    if c is None or c.diff is None:
        return ""
    if not c.resolved and seeds_split([c]):
        return ("The interval excludes zero, but not every seed pair agrees in sign, so the difference is "
                "unresolved: consistent with the reference's 'almost identical', not a proof of it.")
    if not c.resolved:
        return ("The difference is within the sampling noise, consistent with the reference's 'almost identical' "
                "(not a proof of it: an unresolved difference can still be real).")
    main, other = (_hw(s) for s in resolution_sizes(ctx))
    rel, up = _relation(ctx), c.diff.difference > 0  # up: the training-size run scores higher
    if rel not in ("larger", "smaller"):
        return (f"So at this scale training at {other} scores measurably {'higher' if up else 'lower'} than at "
                f"{main}; neither size is larger on both sides, so this does not test the reference's claim.")
    large, small = (other, main) if rel == "larger" else (main, other)
    if up == (rel == "larger"):
        return (f"So at this scale the larger training size ({large}) scores measurably higher than the smaller one "
                f"({small}), where the reference found the two almost identical.")
    return (f"So at this scale the smaller training size ({small}) scores measurably higher than the larger one "
            f"({large}).")


def resolution_text(ctx: ReportContext) -> str:
    rel = _relation(ctx)
    if rel is None:
        return ("The training-size experiment was skipped in this build (notebook 03's `resolution_size` was None), "
                "so the U-Net trained at one size only and the reference's claim is not tested here.")
    (main_hw, a), (other_hw, b) = list(resolution_runs(ctx).items())
    if rel == "same":
        return (f"The training-size run trained at {'the ablation recipe' if ctx.two_recipes else 'the main run'}'s size "
                f"({main_hw}), so it tests nothing about the "
                "size and the reference's claim is not tested here.")
    main, other = resolution_sizes(ctx)
    shape = "the same proportion" if main[0] * other[1] == main[1] * other[0] else "another proportion"
    what = (f"a {rel} size in {shape}" if rel in ("larger", "smaller") else
            "a size larger on one side and smaller on the other")
    c = comparison(ctx, "resolution_large_vs_main")
    side = side_by_side_ratio(ctx, RESOLUTION_UNET, REFERENCE_UNET if ctx.two_recipes else "U-Net")  # s per image, side by side
    r = side or speed_ratio(ctx, a, b)  # else images/s as recorded, main over that run: the same ratio
    how = (first_up(side_by_side_how(ctx)) + ", " if side else
           "As the runs recorded it (with whatever else the machine ran then), ")
    unresolved = {"larger": "was not measurably slower", "smaller": "was not measurably faster"}.get(
        rel, "took no measurably different time")
    cost = ("" if r is None else
            f" {how}training at {other_hw} took {ratio_text(r)} as long per image." if r.resolved else
            f" {how}training at {other_hw} {unresolved} per image: {ratio_text(r)} as long.")
    claim = resolution_claim(ctx, c)
    # the section's introduction (notebook 07) states the reference's claim; this says what was measured
    return (f"Here {_ref_name(ctx, lower=True)} ({main_hw}) is compared with the same model trained at {other_hw}, {what}, both "
            f"scored at the labels' full resolution. {c.sentence() + pooled_note([c]) if c else ''}"
            f"{' ' + claim if claim else ''}{cost}")


def fig_resolution(ctx: ReportContext, number: int) -> tuple:
    runs = resolution_runs(ctx)
    frames = {f"trained at {s}": ctx.runs.metrics(r) for s, r in runs.items()}
    what = (f"trained at {join(list(runs))}" if len(runs) > 1 else
            f"at its training size, {next(iter(runs))} (the training-size experiment was skipped)")
    return plots.learning_curves(frames), figure_caption(
        number, f"Training and validation loss and validation mIoU (at each run's training size) of the U-Net {what}.")
