"""How sure the report's numbers are: intervals of the headline scores and paired comparisons.

Every headline mIoU comes with its 95% bootstrap interval over validation images, and every
comparison of the study (architectures, tuning, losses, augmentation, scheduler, dropout,
BatchNorm) is a paired difference on the same images, pooled over seeds where they repeat
(:mod:`cityseg_lib.evaluate.uncertainty`). The prose calls a difference a finding only when it is
``resolved`` (interval excludes zero and the seeds agree). The tables, the sentences and
``reports/PROFILE/headline.json`` (:mod:`.headline_json`) all read the numbers computed here, once per context.
Scores are the official full-resolution ones (the per-image matrices of every finished run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cityseg_lib.evaluate.uncertainty import Difference, Interval, bootstrap_ci, class_iou_intervals, compare_groups
from cityseg_lib.evaluate.wording import format_interval, verdict
from cityseg_lib.models.names import display_name
from cityseg_lib.report.context import ReportContext
from cityseg_lib.report.format import LOSS_LABELS, OPTIMIZER_LABELS, join, pct, size_relation, tuned_label

__all__ = ["Comparison", "interval", "compare", "comparisons", "comparison", "finding", "pooled_note", "seeds_split",
           "interval_text", "class_intervals", "val_loss_against_seeds", "resolution_sizes", "resolution_names"]


@dataclass(frozen=True)
class Comparison:
    """One comparison of the study: ``a - b`` in full-resolution mIoU, with its interval."""

    key: str  # headline.json key, e.g. "unet_vs_simple_fcn"
    topic: str  # architecture, tuning, loss, augmentation, scheduler, dropout, batchnorm
    name_a: str
    name_b: str
    diff: Difference | None  # None: no per-image matrices, or the runs saw different images

    @property
    def resolved(self) -> bool:
        return bool(self.diff is not None and self.diff.resolved)

    @property
    def single_run(self) -> bool:
        """One side ran once (or nothing is paired): that run's own seed noise is not in the interval."""
        return self.diff is None or min(self.diff.n_seeds_a, self.diff.n_seeds_b) < 2

    def runs_phrase(self) -> str:
        """How many runs the two sides hold: ``"one run each"``, ``"one run against 3 seeds"``, ``""``
        (both sides repeated, or nothing paired)."""
        if not self.single_run or self.diff is None:
            return ""
        n = max(self.diff.n_seeds_a, self.diff.n_seeds_b)
        return "one run each" if n == 1 else f"one run against {n} seeds"

    def seed_note(self) -> str:
        """The caveat a single run adds to the verdict, from the run counts ("" when both sides repeat)."""
        phrase = self.runs_phrase()
        if not phrase:
            return ""
        if phrase == "one run each":
            return "One run each: the seed noise is not in this interval."
        return f"{phrase[:1].upper()}{phrase[1:]}: the single run's own seed noise is not in this interval."

    def sentence(self) -> str:
        """The computed verdict (:func:`cityseg_lib.evaluate.wording.verdict`)."""
        if self.diff is None:
            return (f"{self.name_a} vs {self.name_b}: no paired per-image scores, so the difference cannot be "
                    "assessed.")
        return verdict(self.diff, self.name_a, self.name_b)


def seeds_split(comps: list[Comparison]) -> list[str]:
    """``name_a`` of each unresolved comparison whose interval excludes zero: beyond the sampling
    noise of the validation images, but its seeds disagree (or a single run does not lie beyond every
    seed of the other side), so the prose must not call it "within the noise"."""
    return [c.name_a for c in comps if not c.resolved and c.diff is not None and c.diff.excludes_zero
            and c.diff.seeds_agree is False]


def _memo(ctx: ReportContext, key: tuple, make):
    if key not in ctx._memo:
        ctx._memo[key] = make()
    return ctx._memo[key]


def interval(ctx: ReportContext, run: str) -> Interval | None:
    """95% bootstrap interval of a run's full-resolution mIoU (None without per-image matrices)."""
    def make():
        per_image = ctx.runs.per_image(run)
        return None if per_image is None else bootstrap_ci(per_image, n_boot=ctx.n_boot)

    return _memo(ctx, ("interval", run), make)


def class_intervals(ctx: ReportContext, run: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per-class full-resolution IoU of a run with its 95% bootstrap interval, ``(value, low, high)``
    each ``(C,)`` in trainId order (None without per-image matrices); Figure 8 and headline.json."""
    def make():
        per_image = ctx.runs.per_image(run)
        return None if per_image is None else class_iou_intervals(per_image, n_boot=ctx.n_boot)

    return _memo(ctx, ("class_intervals", run), make)


def interval_text(ctx: ReportContext, run: str) -> str:
    """``"31.2% (95% CI 28.0-34.5)"``, or the plain score when the run has no per-image matrices."""
    iv = interval(ctx, run)
    if iv is None:
        return f"{100 * ctx.record(run)['miou_full_res']:.1f}%"
    return format_interval(iv)


def _matched(ctx: ReportContext, runs_a: list[str], runs_b: list[str]) -> tuple[tuple[int, int], int] | None:
    """``((i, j), seed)`` when one side ran once and the other holds a run of the same seed
    (:func:`compare_groups`' ``matched``); None otherwise (both repeated, or no seed in common)."""
    if (len(runs_a) == 1) == (len(runs_b) == 1):
        return None
    single, many = (runs_a, runs_b) if len(runs_a) == 1 else (runs_b, runs_a)
    seed = ctx.record(single[0]).get("seed")
    seeds = [ctx.record(r).get("seed") for r in many]
    if seed is None or seed not in seeds:
        return None
    j = seeds.index(seed)
    return ((0, j) if len(runs_a) == 1 else (j, 0)), int(seed)


def _by_seed(ctx: ReportContext, runs_a: list[str], runs_b: list[str]) -> tuple[list[str], bool]:
    """``runs_b`` in the order of ``runs_a``'s seeds, and whether run i of both lists has the same
    seed (:func:`compare_groups`' ``paired_seeds``): each notebook lists its own seeds (main seed first),
    so position i of two configurations need not be one seed; with other seeds on the two sides (or a
    run without a seed) no run has a partner, and every run of one side is set against every other."""
    seeds_a, seeds_b = ([ctx.record(r).get("seed") for r in runs] for runs in (runs_a, runs_b))
    if None in seeds_a + seeds_b or len(set(seeds_a)) != len(seeds_a) or sorted(seeds_a) != sorted(seeds_b):
        return runs_b, False
    return [runs_b[seeds_b.index(s)] for s in seeds_a], True


def compare(ctx: ReportContext, runs_a: list[str], runs_b: list[str]) -> Difference | None:
    """Paired difference of two configurations (one run per seed each); None when not comparable.
    A configuration that ran once is compared with the other's run of the same seed (:func:`_matched`);
    repeated ones, seed by seed (:func:`_by_seed`)."""
    def make():
        match = _matched(ctx, runs_a, runs_b)
        ordered, paired = (runs_b, True) if match else _by_seed(ctx, runs_a, runs_b)
        a = [ctx.runs.per_image(r) for r in runs_a]
        b = [ctx.runs.per_image(r) for r in ordered]
        if not a or not b or any(m is None for m in a + b):
            return None
        try:
            return compare_groups(a, b, n_boot=ctx.n_boot, matched=match[0] if match else None,
                                  matched_seed=match[1] if match else None, paired_seeds=paired)
        except ValueError:  # different validation images (max_val_images differs): not paired
            return None

    return _memo(ctx, ("compare", tuple(runs_a), tuple(runs_b)), make)


def _pairs(ctx: ReportContext) -> list[tuple[str, str, str, str, list[str], list[str]]]:
    """(key, topic, name a, name b, runs a, runs b) of every comparison the study makes.

    A main configuration enters every comparison with all its seeds. Against another repeated
    configuration they are pooled; against a variant that ran once (tuned, augmentation,
    optimiser, resolution, scheduler, dropout, BatchNorm), the difference is the variant's against
    the run it varies with its own seed (the ablation reference, :meth:`ReportContext.ablation_runs`:
    the main runs when the profile has one recipe) (:func:`compare`: the variant shares that seed's initial weights
    and image order, so against the other seeds that seed's luck would count as the variant's
    effect), and the variant is called better or worse only when it is so against every seed.
    """
    n = {m: display_name(m) for m in ("simple_fcn", "unet", "swin2_jnet")}
    seeds = {m: ctx.seed_runs(n[m]) for m in n}  # every seed of each main configuration
    # what each ablation varies: the architecture trained with the ablation recipe (the main runs with one recipe)
    refs = {m: ctx.ablation_runs(n[m]) for m in n}
    unet = refs["unet"][0]
    out = [("unet_vs_simple_fcn", "architecture", n["unet"], n["simple_fcn"], seeds["unet"], seeds["simple_fcn"]),
           ("swin2_jnet_vs_simple_fcn", "architecture", n["swin2_jnet"], n["simple_fcn"], seeds["swin2_jnet"],
            seeds["simple_fcn"]),
           ("swin2_jnet_vs_unet", "architecture", n["swin2_jnet"], n["unet"], seeds["swin2_jnet"], seeds["unet"])]
    for model, run in ctx.sweep.tuned_runs.items():
        if model in n:
            base = display_name(model) + (" (ablation recipe)" if ctx.two_recipes else "")  # what the tuned run varies
            out.append((f"{model}_tuned_vs_{model}", "tuning", tuned_label(model), base, [run], refs[model]))
    losses = list(ctx.losses.runs)
    ref = "cross_entropy" if "cross_entropy" in losses else (losses[0] if losses else None)
    for loss in losses:
        if loss != ref:
            name = LOSS_LABELS.get(loss, loss)
            out.append((f"loss_{loss}_vs_{ref}", "loss", name[:1].upper() + name[1:], LOSS_LABELS.get(ref, ref),
                        ctx.losses.runs[loss], ctx.losses.runs[ref]))
    aug = ctx.unet.augment_runs
    for mode, run in aug.items():
        if mode != "none" and "none" in aug:
            out.append((f"augment_{mode}_vs_none", "augmentation", f"'{mode}' augmentation", "no augmentation",
                        [run], refs["unet"] if aug["none"] == unet else [aug["none"]]))
    opts = getattr(ctx.unet, "optimizer_runs", {}) or {}
    main_opt = next((o for o, r in opts.items() if r == unet), None)
    for opt, run in opts.items():
        if main_opt and opt != main_opt:
            out.append((f"optimizer_{main_opt}_vs_{opt}", "optimizer",
                        f"U-Net with {OPTIMIZER_LABELS.get(main_opt, main_opt)}",
                        f"U-Net with {OPTIMIZER_LABELS.get(opt, opt)}", refs["unet"], [run]))
    sizes = resolution_sizes(ctx)
    # a second run at the main run's own size tests nothing of the size (the key, older than smaller
    # sizes, stays for headline.json's readers; the names give the direction)
    if sizes and size_relation(sizes[1], sizes[0]) != "same":
        out.append(("resolution_large_vs_main", "resolution", *resolution_names(ctx), [ctx.unet.resolution_run],
                    refs["unet"]))
    if ctx.unet.constant_lr_run:
        out.append(("steplr_vs_constant_lr", "scheduler", "StepLR", "a constant learning rate", refs["unet"],
                    [ctx.unet.constant_lr_run]))
    if ctx.swin.no_dropout_run:
        out.append(("dropout_vs_no_dropout", "dropout", "Swin2-JNet with dropout", "Swin2-JNet without dropout",
                    refs["swin2_jnet"], [ctx.swin.no_dropout_run]))
    if ctx.swin.no_batchnorm_run:
        out.append(("batchnorm_vs_no_batchnorm", "batchnorm", "Swin2-JNet with BatchNorm",
                    "Swin2-JNet without BatchNorm", refs["swin2_jnet"], [ctx.swin.no_batchnorm_run]))
    return out


def resolution_sizes(ctx: ReportContext) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """``((H, W) of the main U-Net, (H, W) of its training-size run)`` from the runs' configs; None
    when the training-size experiment was skipped (notebook 03's ``resolution_size`` None)."""
    run = getattr(ctx.unet, "resolution_run", None)
    if not run:
        return None
    return tuple(ctx.runs.config(ctx.reference(display_name("unet"))).image_size), tuple(ctx.runs.config(run).image_size)


def resolution_names(ctx: ReportContext) -> tuple[str, str]:
    """Names of the training-size run and of the main U-Net in the comparison: ``("U-Net trained at
    the smaller size (48x96)", "U-Net trained at the main run's size (64x128)")``, the direction
    computed from the two runs' sizes (a size larger on one side and smaller on the other has none)."""
    main, other = resolution_sizes(ctx)
    rel, hw = size_relation(other, main), "x".join(map(str, other))
    name = f"U-Net trained at the {rel} size ({hw})" if rel in ("larger", "smaller") else f"U-Net trained at {hw}"
    whose = "the ablation recipe's" if ctx.two_recipes else "the main run's"
    return name, f"U-Net trained at {whose} size ({'x'.join(map(str, main))})"


def comparisons(ctx: ReportContext) -> list[Comparison]:
    """Every comparison of the study, in report order (computed once per context)."""
    def make():
        return [Comparison(key, topic, a, b, compare(ctx, ra, rb)) for key, topic, a, b, ra, rb in _pairs(ctx)]

    return _memo(ctx, ("comparisons",), make)


def comparison(ctx: ReportContext, key: str) -> Comparison | None:
    return next((c for c in comparisons(ctx) if c.key == key), None)


def finding(ctx: ReportContext, topic: str) -> list[Comparison]:
    """The comparisons of one topic (``loss``, ``augmentation``...)."""
    return [c for c in comparisons(ctx) if c.topic == topic]


def pooled_note(comps: list[Comparison | None]) -> str:
    """For a section whose table shows the main run: a sentence (with a leading space) saying how its
    single-run variants were compared with the seeded main configuration (against the run of their own
    seed, which its seeds' range must also exclude; or its seeds pooled, with their mean); "" when none was."""
    pooled = [c for c in comps if c and c.diff and c.single_run and max(c.diff.n_seeds_a, c.diff.n_seeds_b) > 1]
    if not pooled:
        return ""
    d = pooled[0].diff
    spread = d.spread_a if d.n_seeds_a > 1 else d.spread_b
    matched = [c for c in pooled if c.diff.matched_seed is not None]
    if not matched:
        return (f" {'These differences pool' if len(pooled) > 1 else 'The difference pools'} the {spread['n']} seeds "
                f"of the configuration varied (mean {pct(spread['mean'])}); the table shows its first seed.")
    seeds = sorted({c.diff.matched_seed for c in matched})
    one = len(matched) == 1
    return (f" {'Each variant' if not one else 'The variant'} ran once, with seed {join([str(x) for x in seeds])}, "
            "against the run of the configuration it varies with that seed (the same initial weights and order of images); "
            f"a finding must also lie beyond all {spread['n']} of its seeds ({pct(spread['min'])} to "
            f"{pct(spread['max'])}).")


def val_loss_against_seeds(ctx: ReportContext, seeds: list[str], run: str, main: str, variant: str) -> str:
    """One sentence comparing the lowest validation loss of a ``variant`` run with those of the
    ``main`` configuration's seed runs: below or above every seed, or within their spread (then
    the seeds' own variation covers the difference). A validation loss has no per-image interval
    here, so the seeds are its yardstick; with one seed the sentence says there is none."""
    lows = [float(ctx.runs.metrics(r)["val_loss"].min()) for r in seeds]
    value = float(ctx.runs.metrics(run)["val_loss"].min())
    if len(lows) < 2:
        return (f"Lowest validation loss: {value:.4f} for {variant}, {lows[0]:.4f} for {main} (one run each: no "
                "spread over seeds to judge this difference by).")
    lo, hi = min(lows), max(lows)
    spread = f"{len(lows)} seeds: {lo:.4f} to {hi:.4f}"
    if lo <= value <= hi:
        return (f"Lowest validation loss: {value:.4f} for {variant}, within the spread of {main} ({spread}), so the "
                "seeds' own variation covers this difference.")
    side = "below" if value < lo else "above"
    return (f"Lowest validation loss: {value:.4f} for {variant}, {side} every seed of {main} ({spread}; one run of "
            f"{variant}, whose own seed noise is not in this comparison).")
