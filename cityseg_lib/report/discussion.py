"""Sections 6 and 7 of the report, the discussion: conclusions and reflections, computed from the numbers."""

from __future__ import annotations

import math

import numpy as np

from .. import study
from .context import ReportContext, devices, majority_baseline, val_class_pixels
from .format import LOSS_LABELS, MODEL_LABELS, join, pct, pts, signed_pts, tuned_label
from .sweep import sweep_results
from .training import loss_summary, loss_verdict, scheduler_runs


def _full_or_train(rec: dict) -> float:
    return rec["miou_full_res"] if not math.isnan(rec["miou_full_res"]) else rec["miou"]


def _not_learnt(ctx: ReportContext) -> list[str]:
    """Headline models that do not reach twice the constant-prediction mIoU."""
    _, floor = majority_baseline(val_class_pixels(ctx))
    return [k for k, r in ctx.main.items() if _full_or_train(r) <= 2 * floor]


def conclusions(ctx: ReportContext) -> list[str]:
    """Statements derived from the measured numbers (the ranking and comparisons are computed)."""
    out = []
    recs = ctx.main
    ranked = sorted(recs, key=lambda k: _full_or_train(recs[k]), reverse=True)
    out.append("**Ranking.** By validation mIoU under the official full-resolution protocol: "
               + " > ".join(f"{k} ({pct(_full_or_train(recs[k]))})" for k in ranked) + ".")
    base = recs["SimpleFCN"]
    gains = {k: _full_or_train(recs[k]) - _full_or_train(base) for k in ctx.untuned if k != "SimpleFCN"}
    ahead = [k for k, g in gains.items() if g > 0]
    behind = [k for k, g in gains.items() if g <= 0]
    s = []
    if ahead:
        s.append(f"{join(ahead)} beat{'s' if len(ahead) == 1 else ''} the SimpleFCN baseline by "
                 f"{join([pts(gains[k]) for k in ahead])}{' respectively' if len(ahead) > 1 else ''}")
    if behind:
        s.append(join([f"{k} does not beat it ({pts(gains[k])} behind)" for k in behind]))
    out.append("**Against the baseline.** " + "; ".join(s) + "."
               + (" The skip connections and the deeper encoders pay off, as the reference study argued." if not behind
                  else " The reference's expectation that both enhanced models clearly improve on the baseline does not "
                       "hold in this build."))
    _, floor = majority_baseline(val_class_pixels(ctx))
    learnt = [k for k in recs if k not in _not_learnt(ctx)]
    missing = [k for k in recs if k not in learnt]
    out.append(f"**Learning.** {len(learnt)} of {len(recs)} models score more than twice the mIoU of predicting "
               f"the most frequent class everywhere ({pct(floor)})"
               + ("." if not missing else f"; {join(missing)} {'does' if len(missing) == 1 else 'do'} not."))
    for t in ctx.tuned:
        plain = t.replace(" (tuned)", "")
        if plain in recs:
            d = _full_or_train(recs[t]) - _full_or_train(recs[plain])
            out.append(f"**Sweep, {plain}.** The sweep's parameters {'improved' if d > 0 else 'did not improve'} "
                       f"{plain}: {pct(_full_or_train(recs[t]))} tuned against {pct(_full_or_train(recs[plain]))} "
                       f"with the default settings ({signed_pts(d)}).")
    a, b, separated = loss_verdict(ctx)
    ls = loss_summary(ctx)
    out.append(f"**Loss.** {LOSS_LABELS.get(a, a).capitalize()} gave the highest mean mIoU over "
               f"{len(ls[a]['seeds'])} seeds ({pct(ls[a]['mean'])}, next {LOSS_LABELS.get(b, b)} {pct(ls[b]['mean'])}); "
               + ("the seed ranges do not overlap, so the ordering is robust to the seed."
                  if separated else "the seed ranges overlap, so this ordering is not established by these runs."))
    runs = scheduler_runs(ctx)
    ms, mc = (study.load_metrics(runs[k]["run"])["val_loss"].min() for k in ("StepLR", "constant"))
    out.append(f"**Scheduler.** {'StepLR' if ms < mc else 'A constant learning rate'} reached the lower validation "
               f"loss ({min(ms, mc):.4f} against {max(ms, mc):.4f}).")
    aug = {m: study.run_record(r) for m, r in ctx.results["03"]["augment_runs"].items()}
    best_aug = max(aug, key=lambda m: _full_or_train(aug[m]))
    out.append(f"**Augmentation.** The best augmentation mode was `{best_aug}` ({pct(_full_or_train(aug[best_aug]))}"
               + (f", against {pct(_full_or_train(aug['none']))} without)." if best_aug != "none" and "none" in aug else ")."))
    drops = {k: study.run_record(v) for k, v in ctx.results["04"]["runs"].items()}
    if "swin2_jnet" in drops and "swin2_jnet_no_dropout" in drops:
        d = drops["swin2_jnet"]["miou"] - drops["swin2_jnet_no_dropout"]["miou"]
        out.append(f"**Dropout.** Swin2-JNet with dropout {drops['swin2_jnet']['dropout']:g} scored "
                   f"{'higher' if d > 0 else 'lower'} than without ({pts(d)} at the training size).")
    if "swin2_jnet" in drops and "swin2_jnet_no_batchnorm" in drops:
        d = drops["swin2_jnet"]["miou"] - drops["swin2_jnet_no_batchnorm"]["miou"]
        out.append(f"**BatchNorm.** Swin2-JNet with BatchNorm in its decoder scored {'higher' if d > 0 else 'lower'} "
                   f"than without ({pct(drops['swin2_jnet']['miou'])} against {pct(drops['swin2_jnet_no_batchnorm']['miou'])}"
                   " at the training size, one run each).")
    diffs = [r["miou_full_res"] - r["miou"] for r in recs.values() if not math.isnan(r["miou_full_res"])]
    if diffs:
        mean = float(np.mean(diffs))
        spread = (f"by less than 0.05 points for every model" if max(abs(d) for d in diffs) < 5e-4 else
                  f"by {signed_pts(mean)} on average (from {signed_pts(min(diffs))} to {signed_pts(max(diffs))})")
        out.append(f"**Resolution.** Scoring at the labels' full resolution instead of the training size changes mIoU "
                   f"{spread}: up-sampled logits "
                   + ("recover the label detail well." if abs(mean) < 0.01 else
                      "cannot restore detail lost by down-scaling." if mean < 0 else
                      "are smoother than the nearest-neighbour down-scaled training masks."))
    fastest = max(ctx.untuned, key=lambda k: recs[k]["train_images_per_s"] or 0)
    slowest = min(ctx.untuned, key=lambda k: recs[k]["train_images_per_s"] or 0)
    fast, slow = recs[fastest]["train_images_per_s"], recs[slowest]["train_images_per_s"]
    ratio = fast / max(slow, 1e-9)
    speeds = ", ".join(f"{k} {recs[k]['train_images_per_s']:.1f}" for k in ctx.untuned)
    out.append("**Cost.** " + (f"{fastest} trains {ratio:.1f}x faster than {slowest}" if ratio >= 1.2 else
                               "The three architectures train at about the same speed")
               + f" ({speeds} images/s on {devices(ctx)}); parameters and FLOPs per image are in Table 4.")
    return out


def reflections(ctx: ReportContext) -> str:
    recs = ctx.main
    parts = []
    if ctx.synthetic:
        parts.append(
            "**What these numbers can and cannot say.** The data is synthetic and the budget tiny (a couple of CPU "
            "cores, minutes per model), so the absolute scores are far below what the same code reaches on Cityscapes "
            "and the ranking may not transfer: a pretrained Swin V2 encoder in particular is run here from random "
            "weights at a fraction of its size, removing the transfer-learning advantage the reference relied on. "
            "What the build does establish is that every stage (data checks, training, early stopping, the sweep, "
            "full-resolution evaluation, this report) works end to end"
            + (" and that every model learns: each scores at least twice the constant-prediction floor."
               if not _not_learnt(ctx) else
               f"; {join(_not_learnt(ctx))} did not get past twice the constant-prediction floor with this budget.")
        )
    ls = loss_summary(ctx)
    spread = max(s["max"] - s["min"] for s in ls.values())
    parts.append(
        f"**Seeds.** The same configuration trained with different seeds varied by up to {pts(spread)} of mIoU in the "
        "loss comparison. Single-run differences of that size elsewhere in this report (augmentation, dropout, "
        "scheduler) are therefore suggestive at best; only the loss comparison was repeated."
    )
    not_converged = [k for k, r in recs.items() if r["best_epoch"] == r["epochs_run"]]
    if not_converged:
        parts.append(
            f"**Training length.** {join(not_converged)} still improved in {'its' if len(not_converged) == 1 else 'their'} "
            f"last epoch, so {'its score is' if len(not_converged) == 1 else 'their scores are'} limited by the schedule "
            "rather than by the architecture; comparisons between models trained this briefly favour the ones that "
            "converge fastest."
        )
    sweeps = sweep_results(ctx)
    if sweeps:
        held, failed = [], []
        for model in sweeps:
            t, plain = tuned_label(model), MODEL_LABELS.get(model, model)
            if t in recs and plain in recs:
                d = _full_or_train(recs[t]) - _full_or_train(recs[plain])
                (held if d > 0 else failed).append(f"{plain} ({signed_pts(d)})")
        verdict = []
        if held:
            verdict.append(f"it held up for {join(held)}")
        if failed:
            verdict.append(f"not for {join(failed)}")
        parts.append(
            "**Sweep.** Successive halving judges candidates on short, small-data rungs, which favours settings that "
            "learn fast early over ones that win late. Trained with the main schedule, the winners' settings were "
            "compared with the defaults: " + ("; ".join(verdict) or "no tuned model was trained") + "."
        )
    parts.append(
        "**Next steps.** Repeat the architecture comparison over seeds as was done for the losses; report a confidence "
        "interval for every headline number; and on real data, evaluate the coarse labels as extra training data, "
        "which the reference left unexplored."
    )
    return "\n\n".join(parts)
