"""How the report ranks its headline models, and what it may call the top one.

The three architectures rank by their seed means (their comparisons pool the seeds). A sweep-tuned
model ran once, with one seed: against a mean of seeds it would be credited with that seed's luck,
so it is not ranked with them but judged against its base model's run of the same seed, and is the
top model only when it beats that base beyond the noise. Whether the top model's lead over the
runner-up is resolved is said with its name (:func:`top_model_phrase`).
"""

from __future__ import annotations

from cityseg_lib.report.context import ReportContext, full_or_train
from cityseg_lib.report.evidence import comparisons
from cityseg_lib.report.headline_json import seed_scores

__all__ = ["ranking_scores", "best_model", "top_model_phrase"]


def ranking_scores(ctx: ReportContext) -> dict[str, float]:
    """``{label: score}`` of the three architectures, by which the report ranks them: a model trained
    with several seeds by their mean full-resolution mIoU (its comparisons pool them), else its one
    run's. The sweep-tuned models are not ranked with them: each ran once, with one seed, and is
    judged against its base model's run of that seed (a single run against a mean of seeds would
    credit it with its seed's luck)."""
    out = {}
    for k in ctx.untuned:
        seeds = seed_scores(ctx, k)
        out[k] = seeds["seed_mean"] if len(seeds["seed_miou"]) > 1 else full_or_train(ctx.main[k])
    return out


def best_model(ctx: ReportContext) -> str:
    """The architecture ranked first (:func:`ranking_scores`), or its tuned version where the sweep's
    parameters improved it beyond the noise (with one recipe only: with two, the tuned model is the
    ablation recipe's); whether its lead is resolved is :func:`top_model_phrase`'s
    to say."""
    scores = ranking_scores(ctx)
    top = max(scores, key=scores.get)
    if ctx.two_recipes:  # the tuned models trained with the shorter ablation recipe: none can stand in for a main run
        return top
    tuned = next((c for c in comparisons(ctx) if c.topic == "tuning" and c.name_b == top), None)
    return tuned.name_a if tuned is not None and tuned.resolved and tuned.diff.difference > 0 else top


def top_model_phrase(ctx: ReportContext) -> str:
    """``"the top-ranked model, U-Net"``, with what the comparisons say of its place: ahead of the
    runner-up beyond the noise (no caveat), or not separated from it (a ranking by point estimates
    alone is no finding)."""
    scores = ranking_scores(ctx)
    ranked = sorted(scores, key=scores.get, reverse=True)
    best = best_model(ctx)
    if len(ranked) < 2:
        return f"the top-ranked model, {best}"
    top, runner = ranked[0], ranked[1]
    c = next((c for c in comparisons(ctx) if {c.name_a, c.name_b} == {top, runner}), None)
    caveat = ("" if c is not None and c.resolved else
              f" (not separated from {runner}, ranked second: Section 6)" if c is not None else
              f" (by point estimate: not compared with {runner}, ranked second, directly)")
    return f"the top-ranked model, {best}{caveat}"
