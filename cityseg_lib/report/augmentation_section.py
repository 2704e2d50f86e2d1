"""Section 4.1 of the report: the augmentation experiment (Table 5) and its words.

Only the modes that ran are described (from their runs' configs); they are ranked and compared
with training on the original images (:mod:`.evidence`) only when that mode and another ran, and a
mode "helps" only when its interval excludes zero.
"""

from __future__ import annotations

import pandas as pd

from cityseg_lib.report.cells import difference_cell, finding_cell, interval_cell, versus_column
from cityseg_lib.report.context import ReportContext, full_or_train
from cityseg_lib.report.evidence import Comparison, comparison, finding, pooled_note, seeds_split
from cityseg_lib.report.format import AUGMENT_LABELS, join, pct, size_hw

__all__ = ["settled", "augmentation_table", "augmentation_text"]


def settled(comps: list[Comparison], subject: str, positive: tuple[str, str], negative: tuple[str, str],
            none: str) -> str:
    """One sentence summing up comparisons against a reference: which resolved ones go which way.
    ``positive`` and ``negative`` are a verb's singular and plural forms, e.g. ``("helps", "help")``."""
    up = [c.name_a for c in comps if c.resolved and c.diff.difference > 0]
    down = [c.name_a for c in comps if c.resolved and c.diff.difference < 0]
    parts = []
    if up:
        parts.append(f"{join(up)} {positive[len(up) > 1]}")
    if down:
        parts.append(f"{join(down)} {negative[len(down) > 1]}")
    return (subject + "; ".join(parts) + ".") if parts else none


def augmentation_table(ctx: ReportContext) -> pd.DataFrame:
    """One row per augmentation mode; its paired difference against no augmentation (the main U-Net
    run of the same seed, or its seeds pooled: the column says which)."""
    comps = {mode: comparison(ctx, f"augment_{mode}_vs_none") for mode in ctx.unet.augment_runs}
    versus = versus_column(list(comps.values()), "none")
    rows = []
    for mode, run in ctx.unet.augment_runs.items():
        rec, c = ctx.record(run), comps[mode]
        rows.append({"augmentation": AUGMENT_LABELS.get(mode, mode), "train images / epoch": rec["train_images"],
                     "best val loss": round(rec["best_val_loss"], 4), "best epoch": rec["best_epoch"],
                     "val mIoU (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res % [95% CI]": interval_cell(ctx, run),
                     versus: difference_cell(c), "finding": finding_cell(c)})
    return pd.DataFrame(rows)


_NUMBER = {1: "one", 2: "two", 3: "three"}


def _transform(cfg) -> str:
    """``"randomly flipped (p = 0.5) and cropped (area 50% to 100%, resized back)"``, from a run's config."""
    return (f"randomly flipped (p = {cfg.hflip_p}) and cropped (area {cfg.crop_scale[0]:.0%} to "
            f"{cfg.crop_scale[1]:.0%}, resized back)")


#: How the report names a run's mask resize (``TrainConfig.mask_resize``).
_MASK_RESIZE = {"nearest-exact": "at each pixel's centre", "nearest": "at each pixel's top-left corner, half a pixel "
                "off the image (runs trained before 2026-12-05)"}


def _mode_phrases(ctx: ReportContext, runs: dict[str, str]) -> list[str]:
    """What each mode that ran trained on, from its run's config: ``"without augmentation"``..."""
    cfgs = {m: ctx.runs.config(r) for m, r in runs.items()}
    out = []
    for mode, cfg in cfgs.items():
        if mode == "none":
            out.append("without augmentation")
        elif mode == "replace":
            out.append(f"with each training image replaced by a {_transform(cfg)} copy")
        elif mode == "augment":
            told = "replace" in cfgs and _transform(cfgs["replace"]) == _transform(cfg)
            out.append(f"with {'the transformed' if told else _transform(cfg)} copies added to the originals "
                       "(twice the images per epoch)")
        else:
            out.append(f"with augmentation '{mode}'")
    return out


def augmentation_text(ctx: ReportContext) -> str:
    """Input size, then the augmentation modes that ran (only those), ranked and compared with no
    augmentation when both it and another mode ran; one mode alone is said to compare nothing."""
    runs = ctx.unet.augment_runs
    recs = {m: ctx.record(r) for m, r in runs.items()}
    cfg = ctx.runs.config(next(iter(runs.values())))
    phrases, n = _mode_phrases(ctx, runs), len(runs)
    sizes = (size_hw(cfg.image_size) if not ctx.two_recipes else
             f"{size_hw(ctx.runs.config(ctx.unet.main_run).image_size)} for the main runs and {size_hw(cfg.image_size)} "
             "for the ablations")
    parts = [
        f"Every image is resized to {sizes} before training (bilinear for the image, nearest "
        f"neighbour {_MASK_RESIZE[cfg.mask_resize]} for the mask), and the loss is computed at that size. "
        "For the full-resolution scores the "
        "logits are up-sampled to the label's own size before the arg-max, as the official protocol requires.",
        f"The augmentation experiment trains the U-Net with the same settings in {_NUMBER.get(n, str(n))} modes: "
        f"{join(phrases)}. Table 5 lists the outcome." if n > 1 else
        f"The U-Net was trained in one augmentation mode only, {phrases[0]}, so no augmentation mode is compared "
        "here; Table 5 lists that run.",
    ]
    main_aug = sorted({ctx.runs.config(r).augment for r in ctx.main_runs.values()})
    main = ("The main models are trained without augmentation, as in the reference." if main_aug == ["none"] else
            f"The main models are trained with augmentation {join([f'`{m}`' for m in main_aug])}.")
    if n < 2:
        return "\n\n".join(parts + [main])
    comps = finding(ctx, "augmentation")
    scores = {m: full_or_train(recs[m]) for m in runs}
    shown = {m: pct(v) for m, v in scores.items()}
    pooled = next((c.diff.spread_b for c in comps if c.diff and c.diff.n_seeds_b > 1 and c.diff.spread_b
                   and c.diff.matched_seed is None), None)
    if pooled and "none" in runs:
        # the differences pool the main configuration's seeds: rank it by their mean, as they do, so
        # that the order never contradicts them (its first seed alone can rank above a variant that
        # the pooled difference puts ahead of it)
        scores["none"], shown["none"] = pooled["mean"], f"{pct(pooled['mean'])}, mean of {pooled['n']} seeds"
    ranked = sorted(runs, key=lambda m: scores[m], reverse=True)
    order = " > ".join(f"`{m}` ({shown[m]})" for m in ranked)
    parts.append(f"Ranked by full-resolution mIoU: {order}. " + " ".join(c.sentence() for c in comps)
                 + pooled_note(comps))
    if not comps:
        parts.append("No mode ran without augmentation, so none is compared with training on the original images. "
                     + main)
        return "\n\n".join(parts)
    split = seeds_split(comps)
    none = ("No augmentation mode differs from training on the original images beyond the sampling noise of this "
            "validation set" if not split else
            f"No augmentation mode is resolved from training on the original images ({join(split)}: "
            f"{'its interval excludes' if len(split) == 1 else 'their intervals exclude'} zero, but the seeds "
            "disagree)")
    parts.append(settled(
        comps, "Against training on the original images, ", ("helps", "help"), ("hurts", "hurt"),
        none + ", so these runs neither confirm nor contradict the reference, which found augmentation "
        "unhelpful.") + " " + main)
    return "\n\n".join(parts)
