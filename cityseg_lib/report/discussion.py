"""Sections 6 and 7 of the report, the discussion: conclusions and reflections, computed from the numbers.

A conclusion that one setting is better than another is stated only when the paired comparison
of :mod:`.evidence` resolves it; otherwise the sentence says the difference is unresolved.
"""

from __future__ import annotations

import math

import numpy as np

from cityseg_lib.report.context import (FLAT_GAIN, ReportContext, devices, full_or_train, majority_baseline,
                                        val_class_pixels)
from cityseg_lib.report.cost import ratio_text, side_by_side, side_by_side_how, side_by_side_ratio, speed_ratio
from cityseg_lib.report.evidence import Comparison, finding, interval, interval_text, seeds_split
from cityseg_lib.report.headline_json import headline, seed_scores
from cityseg_lib.report.format import count, first_up, join, pct, pts
from cityseg_lib.report.front import all_runs
from cityseg_lib.report.loss_section import loss_reference, loss_summary
from cityseg_lib.report.ranking import ranking_scores
from cityseg_lib.report.results_section import scoring_resolution_text
from cityseg_lib.report.training_section import gain_pct, seeds_length, settled
from cityseg_lib.report.variants_section import optimizer_claim, resolution_claim


def not_learnt(ctx: ReportContext) -> list[str]:
    """Headline models not shown to reach twice the constant-prediction mIoU: the low end of their
    95% interval (the score itself where a run has no per-image matrices) is at or below it."""
    _, floor = majority_baseline(val_class_pixels(ctx))

    def low(label: str) -> float:
        iv = interval(ctx, ctx.main_runs[label])
        return iv.low if iv is not None else full_or_train(ctx.main[label])

    return [k for k in ctx.main if low(k) <= 2 * floor]


def _sentences(comps: list[Comparison]) -> str:
    return " ".join(c.sentence() for c in comps)


def _seed_notes(comps: list[Comparison]) -> str:
    """The single-run caveats of a topic's comparisons, each once, with a leading space ("" if none)."""
    notes = list(dict.fromkeys(c.seed_note() for c in comps if c.seed_note()))
    return "".join(f" {n}" for n in notes)


def baseline_verdict(comps: list[Comparison]) -> str:
    """Whether the enhanced models beat the baseline, from the resolved comparisons only."""
    against = [c for c in comps if c.name_b == "SimpleFCN"]
    ahead = [c.name_a for c in against if c.resolved and c.diff.difference > 0]
    behind = [c.name_a for c in against if c.resolved and c.diff.difference < 0]
    if against and len(ahead) == len(against):
        return "The skip connections and the deeper encoders pay off, as the reference study argued."
    if behind:
        return (f"{join(behind)} {'is' if len(behind) == 1 else 'are'} worse than the baseline beyond the noise: the "
                "reference's expectation that both enhanced models improve on it does not hold in this build.")
    rest = len(against) - len(ahead)
    if ahead:
        return (f"Only {join(ahead)} clearly improves on the baseline; the other "
                + ("difference is" if rest == 1 else f"{rest} differences are") + " unresolved.")
    split = seeds_split(against)
    if split:
        return (f"No enhanced model is resolved from the baseline ({join(split)}: "
                f"{'its interval excludes' if len(split) == 1 else 'their intervals exclude'} zero, but the seeds "
                "disagree), so this build neither confirms nor contradicts the reference's expectation.")
    return ("No enhanced model differs from the baseline beyond the noise of this validation set, so this build "
            "neither confirms nor contradicts the reference's expectation.")


def conclusions(ctx: ReportContext) -> list[str]:
    """Statements derived from the measured numbers and their intervals."""
    out = []
    recs = ctx.main
    # a model trained with several seeds ranks by their mean, as its comparisons pool them; its main
    # (first-seed) run's score and interval are the ones Table 10 shows
    seeds = {k: seed_scores(ctx, k) for k in recs}
    score = ranking_scores(ctx)  # the architectures; the tuned single runs are judged against their base
    ranked = sorted(score, key=score.get, reverse=True)

    def entry(k: str) -> str:
        main = interval_text(ctx, ctx.main_runs[k])
        n = len(seeds[k]["seed_miou"])
        return f"{k} {main}" if n < 2 else f"{k} {pct(score[k])} as the mean of {n} seeds, its first seed {main}"

    several = any(len(seeds[k]["seed_miou"]) > 1 for k in ranked)
    tuned = [k for k in recs if k not in score]
    seed_of = {k: ctx.record(ctx.main_runs[k]).get("seed") for k in tuned}
    out.append("**Ranking.** The architectures by validation mIoU under the official full-resolution protocol"
               + (", a model trained with several seeds by their mean" if several else "")
               + " (95% bootstrap intervals over validation images): " + "; ".join(entry(k) for k in ranked)
               + ". Which of two neighbours is better is settled only by the comparisons below."
               + ("" if not tuned else
                  " " + join([f"{k} {interval_text(ctx, ctx.main_runs[k])}" for k in tuned])
                  + f" {'ran once, with seed ' if len(tuned) == 1 else 'ran once each, with seed '}"
                  + join(sorted({str(v) for v in seed_of.values()}))
                  + ": a single run is judged against its base model's run of the same seed (Sweep, below), "
                    "not ranked against a mean of seeds."))
    arch = finding(ctx, "architecture")
    out.append("**Architectures.** " + _sentences(arch) + " " + baseline_verdict(arch))
    _, floor = majority_baseline(val_class_pixels(ctx))
    missing = not_learnt(ctx)
    out.append(f"**Learning.** {len(recs) - len(missing)} of {len(recs)} models score more than twice the mIoU of "
               f"predicting the most frequent class everywhere ({pct(floor)}), down to the low end of their 95% "
               "interval" + ("." if not missing else f"; {join(missing)} {'is' if len(missing) == 1 else 'are'} not "
                                                    "shown to."))
    for c in finding(ctx, "tuning"):
        effect = (" The sweep's parameters are not shown to help." if not c.resolved else
                  " The sweep's parameters help." if c.diff.difference > 0 else
                  " The sweep's parameters make it worse: the winner of rungs on a fraction of the training images "
                  "need not be the best setting for the full data (Section 4.5).")
        out.append(f"**Sweep, {c.name_b}.** " + c.sentence() + effect + _seed_notes([c]))
    losses = finding(ctx, "loss")
    if losses:
        out.append("**Loss.** " + _sentences(losses) + " " + loss_reference(ctx))
    sched = finding(ctx, "scheduler")
    if sched:
        out.append("**Scheduler.** " + _sentences(sched) + _seed_notes(sched))
    aug = finding(ctx, "augmentation")
    if aug:  # each mode's difference with its interval, then what they settle
        out.append("**Augmentation.** " + _sentences(aug) + " "
                   + settled(aug, "Against the original images, ", ("helps", "help"), ("hurts", "hurt"),
                             "No augmentation mode is resolved from training without it.") + _seed_notes(aug))
    for topic, name in (("dropout", "Dropout"), ("batchnorm", "BatchNorm")):
        for c in finding(ctx, topic):
            out.append(f"**{name}.** " + c.sentence() + _seed_notes([c]))
    opts = finding(ctx, "optimizer")
    if opts:  # the reference's claim (AdamW beats Adam and Adamax) judged by both differences together
        claim = optimizer_claim(ctx)
        out.append("**Optimiser.** " + _sentences(opts) + (" " + claim if claim else "") + _seed_notes(opts))
    for c in finding(ctx, "resolution"):
        claim = resolution_claim(ctx, c)
        out.append("**Training resolution.** " + c.sentence() + (" " + claim if claim else "") + _seed_notes([c]))
    scoring = scoring_resolution_text(ctx)
    if scoring:
        out.append("**Scoring resolution.** " + scoring)
    out.append("**Cost.** " + cost_sentence(ctx))
    return out


def cost_sentence(ctx: ReportContext) -> str:
    """The fastest against the slowest architecture, a difference only when its interval excludes 1:
    from the side-by-side timing when the report made one, else from the speeds the runs recorded
    (then said to carry the machine's load as well)."""
    sbs = side_by_side(ctx)
    if sbs and all(k in sbs["times"] for k in ctx.untuned):
        med = {k: float(np.median(sbs["times"][k])) for k in ctx.untuned}
        fastest, slowest = min(ctx.untuned, key=med.get), max(ctx.untuned, key=med.get)
        r = side_by_side_ratio(ctx, slowest, fastest)
        speeds = ", ".join(f"{k} {1 / med[k]:.1f}" for k in ctx.untuned)
        tail = (f" (median images/s {speeds}; Table 4). The speeds the runs recorded while training also carry what "
                "else the machine ran then.")
        if r is None:  # one round: medians without an interval, no claim of a difference
            return (f"{first_up(side_by_side_how(ctx))}, one round gives no interval, so the architectures' "
                    "training speeds are not compared" + tail)
        if r.resolved:
            return f"{first_up(side_by_side_how(ctx))}, {fastest} trains {ratio_text(r)} as fast as {slowest}" + tail
        return (f"{first_up(side_by_side_how(ctx))}, the architectures' training speeds are not separated: "
                f"{fastest} against {slowest} {ratio_text(r)}" + tail)
    recs = ctx.main
    fastest = max(ctx.untuned, key=lambda k: recs[k]["train_images_per_s"] or 0)
    slowest = min(ctx.untuned, key=lambda k: recs[k]["train_images_per_s"] or 0)
    speeds = ", ".join(f"{k} {recs[k]['train_images_per_s'] or 0:.1f}" for k in ctx.untuned)
    tail = f" ({speeds} images/s on {devices(ctx)}); parameters and FLOPs per image are in Table 4."
    r = speed_ratio(ctx, ctx.main_runs[fastest], ctx.main_runs[slowest])
    if r is None:  # runs without per-epoch timings: the medians only, no claim of a difference
        return "Median training speed, without per-epoch timings to give an interval" + tail
    if r.resolved:
        return (f"As the runs recorded it while training, {fastest} trained {ratio_text(r)} as fast as {slowest}, "
                "a ratio that carries what else the machine ran then as well as the models" + tail)
    return (f"The timing noise of this build does not separate the architectures' training speeds: {fastest} "
            f"against {slowest} {ratio_text(r)}" + tail)


_TOPIC_WORDS = {"architecture": "architectures", "augmentation": "augmentation", "scheduler": "scheduler",
                "dropout": "dropout", "batchnorm": "BatchNorm", "tuning": "tuning", "optimizer": "optimisers",
                "resolution": "training resolution"}


def training_length(ctx: ReportContext) -> str:
    """Which headline runs stopped mid-descent, which ended on a flattened curve, in the numbers'
    words (the last epoch's gain against :data:`FLAT_GAIN`), then the repeated seeds' (:func:`seeds_length`);
    empty when every best epoch came earlier and no model was repeated."""
    recs, gains = ctx.main, ctx.last_gain
    at_last = [k for k, r in recs.items() if r["best_epoch"] == r["epochs_run"]]
    seeds = seeds_length(ctx)
    if not at_last:
        return seeds
    descending = [k for k in at_last if gains[k] > FLAT_GAIN]
    flat = [k for k in at_last if gains[k] <= FLAT_GAIN]
    single = [k for k in at_last if math.isnan(gains[k])]
    out = []
    if descending:
        one = len(descending) == 1
        out.append(
            f"{join(descending)} still lowered the validation loss in {'its' if one else 'their'} last epoch by "
            f"{join([gain_pct(gains[k]) for k in descending])}{'' if one else ' respectively'}, more than "
            f"{pct(FLAT_GAIN, 0)}: {'it' if one else 'they'} stopped "
            f"mid-descent, so {'its score is' if one else 'their scores are'} limited by the schedule rather than by "
            "the architecture, and comparisons between models trained this briefly favour the ones that converge "
            "fastest.")
    if flat:
        one = len(flat) == 1
        out.append(
            f"{join(flat)} had {'its' if one else 'their'} best epoch last, but that epoch lowered the validation loss "
            f"by at most {pct(FLAT_GAIN, 0)} ({join([gain_pct(gains[k]) for k in flat])}): the "
            f"{'curve had' if one else 'curves had'} flattened.")
    if single:
        out.append(f"{join(single)} trained a single epoch, so {'its' if len(single) == 1 else 'their'} curve "
                   "cannot show whether it had flattened.")
    return " ".join(out + ([seeds] if seeds else []))


def _seed_mious(ctx, label: str) -> list[float]:
    """Full-resolution mIoU of each seed of a headline model (``headline.json``'s ``seed_miou``)."""
    return list(headline(ctx)["models"][ctx.main_keys[label]].get("seed_miou") or [])


def _synthetic_caveat(ctx: ReportContext) -> str:
    """What a build on the generated data can and cannot say, from its own device, run times and
    Swin2-JNet encoder (pretrained or not)."""
    times = [t for r in all_runs(ctx) if (t := ctx.runs.summary(r).get("train_time_s"))]
    budget = (f", a median {np.median(times) / 60:.1f} minutes of training per run on {devices(ctx)}" if times else
              f", on {devices(ctx)}")
    swin = ctx.runs.config(ctx.swin.main_run).model_options
    scratch = not swin.get("weights") and not swin.get("pretrained", True)
    params = count(ctx.stats("Swin2-JNet")["params"])
    encoder = (f" Swin2-JNet in particular runs its Swin V2 encoder from random weights ({params} parameters in all), "
               "without the pretraining the reference relied on." if scratch else "")
    learnt = not_learnt(ctx)
    return (f"The data is synthetic and the budget small{budget}, so the absolute scores say nothing about "
            f"accuracy on Cityscapes, and the ranking of the models may not transfer to it.{encoder} What the build "
            "does establish is that every stage (data checks, training, early stopping, the sweep, full-resolution "
            "evaluation, this report) works end to end"
            + (" and that every model learns: each scores more than twice the constant-prediction floor, even at "
               "the low end of its 95% interval." if not learnt else
               f"; {join(learnt)} {'is' if len(learnt) == 1 else 'are'} not shown to get past twice the "
               "constant-prediction floor with this budget."))


def reflections(ctx: ReportContext) -> str:
    parts = []
    if ctx.synthetic:
        parts.append("**What these numbers can and cannot say.** " + _synthetic_caveat(ctx))
    ls = loss_summary(ctx)
    # full-resolution mIoU for both, as the comparisons use (a loss without per-image scores: training size)
    loss_spread = [(s["full_res"] or s["miou"])["max"] - (s["full_res"] or s["miou"])["min"] for s in ls.values()
                   if (s["full_res"] or s["miou"])["n"] > 1]
    arch_spread = [max(v) - min(v) for v in (_seed_mious(ctx, label) for label in ctx.untuned) if len(v) > 1]
    topics = ("architecture", "augmentation", "scheduler", "dropout", "batchnorm", "tuning", "optimizer", "resolution")
    comps = [c for t in topics for c in finding(ctx, t)]
    single = [c for c in comps if c.single_run]
    single_topics = [t for t in topics if any(c.topic == t for c in single)]
    unresolved = [c for c in single if not c.resolved]
    spreads = ([f"up to {pts(max(loss_spread))} of mIoU in the loss comparison"] if loss_spread else []) + (
        [f"up to {pts(max(arch_spread))} in the architecture comparison"] if arch_spread else [])
    seed_noise = (f"The same configuration trained with different seeds varied by {' and '.join(spreads)}, and the "
                  if spreads else "No configuration of this build was trained with more than one seed, so the seed "
                  "noise is not measured; the ")
    parts.append(
        f"**Two kinds of noise.** {seed_noise}bootstrap intervals show how much every score moves with the choice "
        "of validation images. The paired intervals account for the second only"
        + (" (a comparison pooled over seeds also needs every seed to agree)" if spreads else "")
        + (f"; single-run comparisons ({join([_TOPIC_WORDS.get(t, t) for t in single_topics])}) leave the single "
           "run's seed noise out" + (f", and {len(unresolved)} of them are unresolved even so." if unresolved else ".")
           if single else ".")
    )
    length = training_length(ctx)
    if length:
        parts.append(f"**Training length.** {length}")
    tuning = finding(ctx, "tuning")
    if tuning:
        held = [c.name_b for c in tuning if c.resolved and c.diff.difference > 0]
        hurt = [c.name_b for c in tuning if c.resolved and c.diff.difference < 0]
        effects = ([f"improved {join(held)}"] if held else []) + ([f"made {join(hurt)} worse"] if hurt else [])
        runs = list(dict.fromkeys(c.runs_phrase() for c in tuning if c.resolved and c.runs_phrase()))
        parts.append(
            "**Sweep.** Successive halving judges candidates on rungs that see a fraction of the training images, "
            "which can favour settings that learn fast on little data over ones that win on all of it. "
            + ("Trained with the ablation recipe on all the images the rungs drew from, and compared with that "
               "recipe's runs, the winners' settings " if ctx.two_recipes else
               "Trained with the main schedule on all the images, the winners' settings ")
            + (f"{' and '.join(effects)} beyond the noise of the validation set"
               + (f" ({'; '.join(runs)})." if runs else ".")
               if effects else "changed no model measurably: no difference to the default settings is resolved.")
        )
    done = (["the architectures"] if arch_spread else []) + (["the losses"] if loss_spread else [])
    repeat = ("Repeat the single-run comparisons over seeds" + (f" as was done for {' and '.join(done)}" if done else "")
              if single else "Repeat the comparisons with more seeds")
    parts.append(
        f"**Next steps.** {repeat}, so that their intervals cover the seed noise too; and on real data, evaluate the "
        "coarse labels as extra training data, which the reference left unexplored."
    )
    return "\n\n".join(parts)
