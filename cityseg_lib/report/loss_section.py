"""Section 4.2 of the report, the loss comparison: the U-Net trained with each loss over several seeds.

Per loss, the spread over seeds (:func:`cityseg_lib.evaluate.uncertainty.seed_spread`, the one
seed statistic of the project); between losses, paired differences pooled over seeds
(:mod:`.evidence`). A loss "wins" only when that difference is resolved.
"""

from __future__ import annotations

import math

import pandas as pd

from cityseg_lib import plots
from cityseg_lib.evaluate.uncertainty import seed_spread
from cityseg_lib.evaluate.wording import format_spread
from cityseg_lib.report.context import ReportContext, StoredRuns
from cityseg_lib.report.evidence import finding, seeds_split
from cityseg_lib.report.format import LOSS_LABELS, figure_caption, join

__all__ = ["seed_summary", "seed_table", "loss_summary", "loss_table", "loss_reference", "loss_ranking", "loss_text", "fig_loss_comparison"]


def seed_summary(runs: dict[str, list[str]], reader=None) -> dict[str, dict]:
    """Per key (a loss): the seeds' spread of the kept checkpoint's val mIoU, at the training size
    (``miou``), at full resolution (``full_res``) and at the last epoch (``last_epoch``)."""
    reader = reader or StoredRuns()
    out = {}
    for key, rs in runs.items():
        recs = [reader.record(r) for r in rs]
        full = [r["miou_full_res"] for r in recs]
        out[key] = {"seeds": [r["seed"] for r in recs], "miou": seed_spread([r["miou"] for r in recs]),
                    "full_res": seed_spread(full) if not any(math.isnan(v) for v in full) else None,
                    "last_epoch": seed_spread([float(reader.metrics(r)["val_miou"].iloc[-1]) for r in rs])}
    return out


def loss_summary(ctx: ReportContext) -> dict[str, dict]:
    key = ("loss_summary",)
    if key not in ctx._memo:
        ctx._memo[key] = seed_summary(ctx.losses.runs, ctx.runs)
    return ctx._memo[key]


def _main_spread(s: dict) -> dict:
    return s["full_res"] or s["miou"]


def seed_table(summary: dict[str, dict]) -> pd.DataFrame:
    """:func:`seed_summary` as a table: one row per loss, percentages rounded."""
    rows = []
    for loss, s in summary.items():
        m, f = s["miou"], s["full_res"]
        rows.append({"training loss": LOSS_LABELS.get(loss, loss), "seeds": m["n"],
                     "val mIoU mean (%)": round(100 * m["mean"], 1), "std (points)": round(100 * m["std"], 1),
                     "min (%)": round(100 * m["min"], 1), "max (%)": round(100 * m["max"], 1),
                     "full res mean (%)": round(100 * f["mean"], 1) if f else math.nan,
                     "last-epoch mean (%)": round(100 * s["last_epoch"]["mean"], 1)})
    return pd.DataFrame(rows)


def loss_table(ctx: ReportContext) -> pd.DataFrame:
    return seed_table(loss_summary(ctx))


def loss_ranking(ctx: ReportContext) -> list[str]:
    """Losses by mean full-resolution mIoU over seeds, best first."""
    s = loss_summary(ctx)
    return sorted(s, key=lambda k: _main_spread(s[k])["mean"], reverse=True)


#: What each loss is, for the loss section's opening sentence.
LOSS_WORDS = {
    "cross_entropy": "pixel-wise cross-entropy (every labelled pixel weighs the same)",
    "iou": "a soft IoU (Jaccard) loss that optimises a differentiable version of the metric",
    "jaccard": "a soft IoU (Jaccard) loss that optimises a differentiable version of the metric",
    "dice": "the Dice loss, which averages a per-class overlap score and so gives rare classes as much weight as "
            "common ones",
}
_NUMBER = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def loss_text(ctx: ReportContext) -> str:
    s = loss_summary(ctx)
    ranked = loss_ranking(ctx)
    first = ranked[0]
    cfg = ctx.runs.config(ctx.losses.runs[first][0])
    order = "; ".join(f"{LOSS_LABELS.get(k, k)} {format_spread(_main_spread(s[k]))}" for k in ranked)
    described = [LOSS_WORDS.get(k, LOSS_LABELS.get(k, k)) for k in ctx.losses.runs]
    n = len(described)
    number = _NUMBER.get(n, str(n))
    every = f"All {number} ignore" if n > 2 else "Both ignore" if n == 2 else "It ignores"
    seeds = s[first]["seeds"]  # one run of each loss: no spread between seeds to compare a difference with
    why = ("so that a difference can be compared with the spread between seeds" if len(seeds) > 1 else
           "one run each, so the spread between seeds is not measured")
    parts = [
        f"{number.capitalize()} training loss{'es were' if n > 1 else ' was'} compared on the U-Net: "
        f"{join(described)}. {every} the void label.",
        f"Each loss was trained with {len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({join([str(x) for x in seeds])}; "
        f"{cfg.epochs} epochs, otherwise {'the U-Net of the ablation recipe' if ctx.two_recipes else 'the main U-Net'} "
        f"of notebook 03), {why}. Mean full-resolution validation mIoU "
        f"over seeds, best first: {order}.",
    ]
    comps = finding(ctx, "loss")
    if comps:
        parts.append(f"Paired on the same validation images{' and pooled over seeds' if len(seeds) > 1 else ''}: "
                     + " ".join(c.sentence() for c in comps))
    parts.append(loss_reference(ctx))
    return "\n\n".join(parts)


def loss_reference(ctx: ReportContext) -> str:
    """How this build's loss comparison relates to the reference (cross-entropy best), from the verdicts."""
    comps = finding(ctx, "loss")
    if not comps or comps[0].name_b != LOSS_LABELS["cross_entropy"]:
        return "Cross-entropy was not part of this comparison, so the reference's finding is not tested."
    beaten = [c.name_a for c in comps if c.resolved and c.diff.difference < 0]
    better = [c.name_a for c in comps if c.resolved and c.diff.difference > 0]
    if better:
        return (f"Unlike the reference study, where cross-entropy was best, {join(better)} "
                f"beat{'s' if len(better) == 1 else ''} it here beyond the sampling noise.")
    if len(beaten) == len(comps):  # resolved: the seeds agreed wherever there were two or more to compare
        seeds = ("with every seed agreeing" if all(c.diff.seeds_agree for c in comps) else
                 "with one run of each loss (the seed noise is not in these intervals)")
        return (f"This agrees with the reference study: cross-entropy beat {join(beaten)}, here beyond the noise of "
                f"the validation images and {seeds}.")
    rest = len(comps) - len(beaten)
    if beaten:
        return (f"Cross-entropy beat {join(beaten)} beyond the noise; the other "
                + ("difference is" if rest == 1 else f"{rest} differences are")
                + " unresolved, so the reference's ranking is only partly confirmed.")
    split = seeds_split(comps)
    why = ("beyond the noise of these runs" if not split else
           f"with every seed agreeing ({join(split)}: the interval excludes zero, but the seeds disagree)")
    return (f"No loss differs from cross-entropy {why}, so they neither confirm nor contradict "
            "the reference study, which found cross-entropy best.")


def fig_loss_comparison(ctx: ReportContext, number: int = 5) -> tuple:
    curves = {LOSS_LABELS.get(loss, loss): [ctx.runs.metrics(r) for r in runs]
              for loss, runs in ctx.losses.runs.items()}
    seeds = len(next(iter(ctx.losses.runs.values())))
    return plots.loss_comparison(curves), figure_caption(
        number, f"Validation mIoU (training size) per epoch of the U-Net trained with each loss: bold line the mean "
        f"of {seeds} seeds, thin lines the single seeds, band their minimum to maximum.")
