"""Section 4 of the report, the training method: learning-rate schedule, early stopping.

(The augmentation experiment is :mod:`.augmentation_section`, re-exported here; the loss comparison
is :mod:`.loss_section`.) Statements comparing two settings come from the
paired comparisons of :mod:`.evidence`: a setting "helps" only when its interval excludes zero.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cityseg_lib import plots
from cityseg_lib.report.augmentation_section import augmentation_table, augmentation_text, settled  # noqa: F401
from cityseg_lib.report.cells import difference_cell, finding_cell, interval_cell, versus_column
from cityseg_lib.report.context import FLAT_GAIN, ReportContext
from cityseg_lib.report.evidence import comparison, pooled_note, val_loss_against_seeds
from cityseg_lib.report.format import OPTIMIZER_LABELS, figure_caption, join, pct


# ----------------------------------------------------------------------------- scheduler


def scheduler_runs(ctx: ReportContext) -> dict[str, dict]:
    """``{"StepLR": record, "constant": record}`` (only StepLR without a constant-LR run)."""
    out = {"StepLR": ctx.record(ctx.reference("U-Net"))}
    if ctx.unet.constant_lr_run:
        out["constant"] = ctx.record(ctx.unet.constant_lr_run)
    return out


def scheduler_table(ctx: ReportContext) -> pd.DataFrame:
    """StepLR (the U-Net reference, :meth:`ReportContext.reference`) and the constant rate; the constant
    rate's paired difference to StepLR (the reference of the same seed, or its seeds pooled) and whether it is a finding."""
    c = comparison(ctx, "steplr_vs_constant_lr")
    versus = versus_column([c], "StepLR") if c else None
    rows = []
    for label, rec in scheduler_runs(ctx).items():
        m = ctx.runs.metrics(rec["run"])
        row = {"learning rate": f"{label} (γ = {rec['gamma']:g}" + (f", every {rec['step_size']} epochs)"
                                                                     if label == "StepLR" else ")"),
               "lowest val loss": round(m["val_loss"].min(), 4), "at epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]),
               "final val loss": round(m["val_loss"].iloc[-1], 4), "final train loss": round(m["train_loss"].iloc[-1], 4),
               "val mIoU (%)": round(100 * rec["miou"], 1),
               "val mIoU full res % [95% CI]": interval_cell(ctx, rec["run"])}
        if versus:  # the comparison is StepLR minus constant: the constant row shows constant minus StepLR
            main = label == "StepLR"
            row[versus], row["finding"] = (("–", "–") if main else (difference_cell(c, -1), finding_cell(c)))
        rows.append(row)
    return pd.DataFrame(rows)


def _optimizers_used(ctx: ReportContext) -> str:
    """``"All models use AdamW"`` from the headline runs' configs (or which model uses which)."""
    used = {label: ctx.runs.config(run).optimizer for label, run in ctx.main_runs.items()}
    names = sorted(set(used.values()))
    if len(names) == 1:
        return f"All models use {OPTIMIZER_LABELS.get(names[0], names[0])}"
    return "The models use " + join([f"{OPTIMIZER_LABELS.get(o, o)} ({join([k for k, v in used.items() if v == o])})"
                                     for o in names])


def scheduler_text(ctx: ReportContext) -> str:
    runs = scheduler_runs(ctx)
    cfg = ctx.runs.config(ctx.reference("U-Net"))
    main = ctx.runs.config(ctx.unet.main_run)
    if ctx.two_recipes:
        schedule = (f"The learning rate is multiplied by γ = {main.gamma:g} every {main.step_size} epochs of the main "
                    f"runs' {main.epochs} and by γ = {cfg.gamma:g} every {cfg.step_size} of the ablations' {cfg.epochs} (StepLR)"
                    + ("; the reference decays every 10 epochs of 20-epoch runs." if min(main.step_size, cfg.step_size) < 10
                       else "."))
    else:
        schedule = (f"The learning rate is multiplied by γ = {cfg.gamma:g} every {cfg.step_size} epochs (StepLR)"
                    + (f"; the reference decays every 10 epochs of 20-epoch runs, and with only {cfg.epochs} epochs this "
                       f"profile scales the step down to {cfg.step_size} so the decay happens at all." if cfg.step_size < 10
                       else "."))
    parts = [
        f"{_optimizers_used(ctx)} (initial learning rate {cfg.lr:g}, weight decay {cfg.weight_decay:g}). " + schedule
        + " Figure 6 compares " + ("the ablations' schedule" if ctx.two_recipes else "this schedule")
        + " with a constant learning rate, everything else equal.",
    ]
    if "constant" not in runs:
        return parts[0] + " (This build trained no constant-learning-rate run.)"
    ms, mc = ctx.runs.metrics(runs["StepLR"]["run"]), ctx.runs.metrics(runs["constant"]["run"])
    c = comparison(ctx, "steplr_vs_constant_lr")
    seeds = ctx.ablation_runs("U-Net")
    parts.append(val_loss_against_seeds(ctx, seeds, runs["constant"]["run"], "the step schedule",
                                        "the constant learning rate")
                 + " In full-resolution mIoU: " + (c.sentence() + pooled_note([c]) if c else "not compared."))
    after = [sentence for label, m in (("StepLR", ms), ("constant", mc)) if (sentence := after_minimum(label, m))]
    if after:
        parts.append(" ".join(after))
    else:
        parts.append("Neither run's validation loss had turned upwards by the last epoch, so this schedule is too "
                     "short to show the over-fitting the reference observed after about 10 to 20 epochs; the "
                     "comparison here is about convergence speed only.")
    return "\n\n".join(parts)


def after_minimum(label: str, m: pd.DataFrame, tol: float = FLAT_GAIN) -> str:
    """What a run's validation loss did after its lowest epoch, in words that claim no more than the
    curve shows ("" when it ended within ``tol`` of its minimum):

    * every later epoch above the minimum by more than ``tol`` (two epochs or more) while the
      training loss fell: a steady rise, the start of over-fitting;
    * the same without a falling training loss: the run does not settle, which is not over-fitting;
    * a later epoch back within ``tol`` of the minimum: the loss swings from epoch to epoch (the
      noise of large steps), and the run shows no over-fitting;
    * one epoch after the minimum: too short to tell a rise from noise.
    """
    val, train = m["val_loss"].to_numpy(float), m["train_loss"].to_numpy(float)
    best = int(np.argmin(val))
    low, later = val[best], val[best + 1:]
    if len(later) == 0 or later[-1] <= low * (1 + tol):
        return ""
    epoch = int(m["epoch"].iloc[best])
    head = f"After its lowest validation loss ({low:.4f} at epoch {epoch}) the {label} run's "
    if len(later) == 1:
        return (head + f"last epoch rose to {later[-1]:.4f}: one epoch, too short to tell a rise from the epoch-to-epoch "
                "noise.")
    falling = train[-1] < train[best]
    if (later > low * (1 + tol)).all():
        return (head + f"validation loss stayed above it (between {later.min():.4f} and {later.max():.4f}, "
                f"{later[-1]:.4f} at the end) while " + (
                    f"the training loss kept falling ({train[best]:.4f} to {train[-1]:.4f}): the start of the "
                    "over-fitting the scheduler is meant to slow down." if falling else
                    f"the training loss did not fall ({train[best]:.4f} to {train[-1]:.4f}): the run does not settle, "
                    "which is not over-fitting."))
    return (head + f"validation loss swung between {later.min():.4f} and {later.max():.4f} ({later[-1]:.4f} at the end), "
            f"coming back to within {tol:.0%} of its minimum, while the training loss went from {train[best]:.4f} to "
            f"{train[-1]:.4f}: epoch-to-epoch noise, not a steady rise, so this run shows no over-fitting.")


def fig_scheduler(ctx: ReportContext, number: int = 6) -> tuple:
    runs = scheduler_runs(ctx)
    step = runs["StepLR"]
    frames = {f"StepLR (γ={step['gamma']:g}/{step['step_size']} ep)": ctx.runs.metrics(step["run"])}
    if "constant" in runs:
        frames["constant LR"] = ctx.runs.metrics(runs["constant"]["run"])
    return plots.scheduler_comparison(frames), figure_caption(
        number, "Training (dashed) and validation (solid) cross-entropy of the U-Net with a step-decayed and a "
        "constant learning rate (lower panel: the learning rate); the star marks each run's lowest validation loss.")


# ----------------------------------------------------------------------------- early stopping


def gain_pct(g: float) -> str:
    """A last-epoch gain in percent, one decimal, or more where one decimal would put it on the
    other side of :data:`FLAT_GAIN` as printed (1.04% is "more than 1%", never "1.0%")."""
    d, s = 1, pct(g)
    while d < 4 and not math.isnan(g) and g != FLAT_GAIN and s == pct(FLAT_GAIN, d):
        d += 1
        s = pct(g, d)
    return s


def _gain_cell(g: float) -> float:
    return math.nan if math.isnan(g) else float(gain_pct(g).rstrip("%")) + 0.0


def early_stopping_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, rec in ctx.main.items():
        m = ctx.runs.metrics(ctx.main_runs[label])
        best_row = m[m["epoch"] == rec["best_epoch"]]
        rows.append({"model": label, "epochs run": rec["epochs_run"], "best epoch": rec["best_epoch"],
                     "best val loss": round(rec["best_val_loss"], 4),
                     "val mIoU at best (%)": round(100 * float(best_row["val_miou"].iloc[0]), 1) if len(best_row) else math.nan,
                     "val mIoU at last (%)": round(100 * float(m["val_miou"].iloc[-1]), 1),
                     "last-epoch gain (%)": _gain_cell(ctx.last_gain[label])})
        if any(ctx.seed_gains.values()):
            rows[-1]["other seeds' last-epoch gain (%)"] = " / ".join(
                gain_pct(g).rstrip("%").replace("-0.0", "0.0") for _, g in ctx.seed_gains[label]) or "–"
    return pd.DataFrame(rows)


def seeds_length(ctx: ReportContext, where: str = "") -> str:
    """The repeated seeds' last epochs in words (:attr:`ReportContext.seed_gains` against
    :data:`FLAT_GAIN`): which seeds stopped mid-descent, else that all had flattened, with the
    largest gain; ``where`` names the table that shows them. Empty when no headline model was repeated."""
    repeated = [label for label, gains in ctx.seed_gains.items() if gains]
    known = [(label, s, g) for label in repeated for s, g in ctx.seed_gains[label] if not math.isnan(g)]
    if not known:
        return ""
    ref = f" ({where})" if where else ""
    descending = [(label, s, g) for label, s, g in known if g > FLAT_GAIN]
    if descending:
        one = len(descending) == 1
        models = join([label for label in repeated if any(d[0] == label for d in descending)])
        return (f"Of the repeated seeds, {join([f'{label} seed {s} ({gain_pct(g)})' for label, s, g in descending])} "
                f"still lowered the validation loss by more than {pct(FLAT_GAIN, 0)} in {'its' if one else 'their'} "
                f"last epoch{ref}: {'it' if one else 'they'} stopped mid-descent, so the seed spread of {models} "
                "also reflects the schedule's length.")
    top = max(g for _, _, g in known)
    how = (f"none of their last epochs lowered the validation loss by more than {gain_pct(top)}" if top > 0 else
           "none of their last epochs lowered the validation loss below the best epoch before it")
    # "too" only where the main runs of those models had flattened as well
    too = " too" if all(not ctx.last_gain[label] > FLAT_GAIN for label in repeated) else ""
    return f"The other seeds of {join(repeated)} had flattened{too}: {how}{ref}."


def early_stopping_text(ctx: ReportContext) -> str:
    early = [k for k, r in ctx.main.items() if r["best_epoch"] < r["epochs_run"]]
    descending = [k for k in ctx.main if k not in early and ctx.last_gain[k] > FLAT_GAIN]
    flat = [k for k in ctx.main if k not in early and ctx.last_gain[k] <= FLAT_GAIN]
    text = ("Every run keeps the weights of the epoch with the lowest validation loss (`best.pt`), and all "
            "scores in this report are those of that checkpoint. ")
    if early:
        text += (f"For {join(early)} that epoch came before the last one, so the kept model differs from the "
                 "final one (Table 8).")
    else:
        text += ("In this build every model's best epoch was its last (Table 8): none had started to over-fit, "
                 "so early stopping changed nothing.")
    if flat:
        text += (f" For {'every model' if len(flat) == len(ctx.main) else join(flat)} the last epoch was the best, "
                 f"but it lowered the validation loss by at most {pct(FLAT_GAIN, 0)} (the table's last column): the "
                 f"{'curves' if len(flat) > 1 else 'curve'} had flattened.")
    if descending:
        text += (f" For {join(descending)} the last epoch still lowered the validation loss by more than "
                 f"{pct(FLAT_GAIN, 0)} (the table's last column), so longer training would probably still help "
                 f"{'it' if len(descending) == 1 else 'them'}.")
        text += constant_rate_text(ctx, descending)
    seeds = seeds_length(ctx, "the table's column of other seeds")
    return text + (" " + seeds if seeds else "")


def constant_rate_text(ctx: ReportContext, labels: list[str]) -> str:
    """Which of the still-descending headline runs ``labels`` never decayed their learning rate
    (gamma 1, or no step inside the run): for them no schedule could have flattened the curve; a
    tuned run's rate is its sweep's choice. Empty when all decayed."""
    constant = [k for k in labels if (cfg := ctx.runs.config(ctx.main_runs[k])).gamma == 1 or cfg.step_size >= cfg.epochs]
    if not constant:
        return ""
    one = len(constant) == 1
    chosen = ((", its sweep's choice" if one else ", their sweeps' choice")
              if all(ctx.main_keys[k].endswith("_tuned") for k in constant) else "")
    return (f" {join(constant)} trained at a constant learning rate (gamma 1{chosen}), so nothing in "
            f"{'its' if one else 'their'} schedule slowed the descent before the last epoch.")
