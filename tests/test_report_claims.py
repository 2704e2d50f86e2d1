"""Claims the report must not make beyond its numbers, one test per branch, on the hand-made
contexts of :mod:`test_report_text` (no training, no files): the banner's "the models learn", the
"best" model, "within the noise" against split seeds, counts and verbs that follow what ran, the
runs' own provenance, and numbers printed so that their side of a threshold never flips.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cityseg_lib.evaluate import uncertainty
from cityseg_lib.evaluate.uncertainty import Difference, paired_difference
from cityseg_lib.evaluate.wording import fixed_point, verdict
from cityseg_lib.report import cost, discussion, evidence, front, loss_section, ranking, results_section, training_section
from cityseg_lib.report import architecture_section
from cityseg_lib.report.context import ReportContext, trained_on
from test_report_text import DESCENDING, FLAT, Lab, context, matrices, one_image_better, seeded, with_last_epochs


def test_the_banner_says_the_models_learn_only_when_the_learning_check_holds(monkeypatch):
    assert "and that the models learn (each beats twice the constant-prediction floor)" in front.title_block(context())
    _, floor = discussion.majority_baseline(discussion.val_class_pixels(context()))
    real = discussion.interval

    def straddling(c, run):  # SimpleFCN's interval reaches below twice the floor
        iv = real(c, run)
        return replace(iv, low=2 * floor - 1e-4) if run == "simple_fcn" else iv

    monkeypatch.setattr(discussion, "interval", straddling)
    banner = front.title_block(context())
    assert "the models learn" not in banner
    assert "runs but SimpleFCN is not shown to learn past twice the constant-prediction floor;" in banner


def test_the_top_model_is_named_best_only_as_far_as_its_comparisons_go():
    # U-Net ahead of SimpleFCN on one image only (unresolved), Swin2-JNet and the tuned U-Net level
    ctx = context(unet=one_image_better(70, 90), fcn=70, swin=70, tuned=70)
    assert ranking.best_model(ctx) == "U-Net"
    phrase = ranking.top_model_phrase(ctx)
    assert phrase.startswith("the top-ranked model, U-Net (") and "best" not in phrase
    assert "ranked second" in phrase
    assert "best model" not in results_section.confusion_text(ctx)
    # a resolved lead over the runner-up carries no caveat; ranked like the conclusions (seed means)
    ctx = context(arch_seeds={"fcn": [50, 50, 50], "unet": [60, 60, 60], "swin": [80, 80, 80]}, tuned=55)
    assert ranking.best_model(ctx) == "Swin2-JNet"
    assert ranking.top_model_phrase(ctx) == "the top-ranked model, Swin2-JNet"
    # the tuned single run is not ranked against means: it is the top model only when it beats its base
    assert "U-Net (tuned)" not in ranking.ranking_scores(ctx)
    better = context(arch_seeds={"fcn": [50, 50, 50], "unet": [80, 80, 80], "swin": [60, 60, 60]}, tuned=90)
    assert evidence.comparison(better, "unet_tuned_vs_unet").resolved
    assert ranking.best_model(better) == "U-Net (tuned)"
    assert ranking.top_model_phrase(better) == "the top-ranked model, U-Net (tuned)"
    scores = ranking.ranking_scores(ctx)
    line = next(x for x in discussion.conclusions(ctx) if x.startswith("**Ranking.**"))
    ranked = sorted(scores, key=scores.get, reverse=True)
    assert [line.index(k + " ") for k in ranked] == sorted(line.index(k + " ") for k in ranked)


def test_an_interval_beyond_the_image_noise_with_split_seeds_is_never_called_within_the_noise():
    ctx = context(arch_seeds={"fcn": [60, 60, 60], "unet": [95, 55, 55], "swin": [95, 55, 55]})
    arch = evidence.finding(ctx, "architecture")
    against = [c for c in arch if c.name_b == "SimpleFCN"]
    assert all(c.diff.excludes_zero and c.diff.seeds_agree is False for c in against)
    verdict_text = discussion.baseline_verdict(arch)
    assert "beyond the noise" not in verdict_text
    assert verdict_text.startswith("No enhanced model is resolved from the baseline (U-Net and Swin2-JNet: their "
                                   "intervals exclude zero, but the seeds disagree)")
    # augmentation: 'replace' lies below its own seed's run but between the main seeds
    ctx = context(arch_seeds={"unet": [70, 74, 66]}, replace=68, augment=70)
    text = training_section.augmentation_text(ctx)
    assert "beyond the sampling noise" not in text
    assert "No augmentation mode is resolved from training on the original images ('replace' augmentation: its " \
           "interval excludes zero, but the seeds disagree)" in text


def test_verbs_agree_with_how_many_modes_they_sum_up():
    ctx = context(replace=80, augment=80)  # both modes above no augmentation
    assert "'replace' augmentation and 'augment' augmentation help." in training_section.augmentation_text(ctx)
    ctx = context(replace=80)
    assert "'replace' augmentation helps." in training_section.augmentation_text(ctx)


def test_provenance_gives_each_runs_commit_and_device_not_the_report_machines():
    ctx = context()
    assert front.runs_commits(ctx) == f"all {len(front.all_runs(ctx))} runs trained at this commit"
    table = front.provenance_table(ctx).set_index("item")["value"]
    assert table["commit"].startswith("c0ffee (this report); all ")
    assert table["device"].startswith("the headline runs trained on CPU (2 cores), float32, 1 torch CPU thread(s)")
    assert front.runs_commits(replace(ctx, env={**ctx.env, "commit": "newer"})) == (
        f"all {len(front.all_runs(ctx))} runs trained at c0ffee (reused: this report was built at a later commit)")
    # runs reused from an earlier commit, trained on a GPU box; the report is built on a laptop
    ctx = context()
    for run in front.all_runs(ctx)[:3]:
        ctx.runs.records[run]["commit"] = "beef01"
    for run in ctx.main_runs.values():  # before ctx.main reads them
        ctx.runs.records[run].update(device="cuda", device_name="NVIDIA H100 80GB HBM3", cpu_count=16)
    n = len(front.all_runs(ctx))
    assert front.runs_commits(ctx) == (f"the {n} runs were trained at more than one commit: {n - 3} at c0ffee; "
                                       "3 at beef01")
    assert discussion.devices(ctx) == "NVIDIA H100 80GB HBM3"
    device = front.provenance_table(ctx).set_index("item")["value"]["device"]
    assert device.startswith("the headline runs trained on NVIDIA H100 80GB HBM3;") and "thread" not in device
    assert device.endswith("this report was built on CPU (x86_64), 2 cores")
    assert "**Device:** NVIDIA H100 80GB HBM3 &nbsp;" in front.title_block(ctx)  # a record without its precision
    ctx = context()
    for run in ctx.main_runs.values():  # records that state it (every run trained since cpu_bf16)
        ctx.runs.records[run].update(device="cuda:0", device_name="NVIDIA H100 80GB HBM3", precision="bf16")
    assert "**Device:** NVIDIA H100 80GB HBM3, bf16 autocast &nbsp;" in front.title_block(ctx)


def test_the_report_states_the_precision_the_runs_trained_in():
    """CPU runs in float32 (every run before cpu_bf16 had no other), or under bf16 autocast, with
    whether their CPU had AMX; runs of both kinds are each named."""
    assert "**Device:** CPU (2 cores), float32 &nbsp;" in front.title_block(context())

    def with_records(**records) -> ReportContext:
        ctx = context()
        for label, run in ctx.main_runs.items():  # before ctx.main reads them
            ctx.runs.records[run].update(records.get(label, records["all"]))
        return ctx

    ctx = with_records(all={"precision": "bf16", "cpu_amx": True})
    assert "**Device:** CPU (2 cores), bf16 autocast (AMX) &nbsp;" in front.title_block(ctx)
    device = front.provenance_table(ctx).set_index("item")["value"]["device"]
    assert device.startswith("the headline runs trained on CPU (2 cores), bf16 autocast (AMX), 1 torch CPU thread(s)")
    assert "images per second on CPU (2 cores), bf16 autocast (AMX), 1 torch thread (" in (
        architecture_section.model_table_note(ctx))
    ctx = with_records(all={"precision": "bf16", "cpu_amx": True}, **{"U-Net": {"precision": "float32"}},
                       SimpleFCN={"precision": "bf16", "cpu_amx": False})
    assert trained_on(ctx) == ("CPU (2 cores), bf16 autocast (AMX); CPU (2 cores), bf16 autocast (no AMX); "
                                          "CPU (2 cores), float32")


def test_the_loss_section_counts_the_losses_that_ran():
    ctx = context(losses={"cross_entropy": [80, 81], "dice": [50, 52]})
    text = loss_section.loss_text(ctx)
    assert text.startswith("Two training losses were compared on the U-Net: pixel-wise cross-entropy")
    assert "Both ignore the void label." in text and "Three" not in text and "IoU (soft Jaccard)" not in text
    assert loss_section.loss_reference(ctx) == (
        "This agrees with the reference study: cross-entropy beat Dice, here beyond the noise of the validation "
        "images and with every seed agreeing.")
    three = context(losses={"cross_entropy": [80, 81], "iou": [50, 51], "dice": [80, 80]})
    assert loss_section.loss_text(three).startswith("Three training losses were compared")
    assert "All three ignore the void label." in loss_section.loss_text(three)
    assert loss_section.loss_reference(three).startswith("Cross-entropy beat IoU (soft Jaccard) beyond the noise; "
                                                         "the other difference is unresolved")


def test_the_noise_paragraph_claims_only_the_seeds_that_ran():
    once = context(losses={"cross_entropy": [70], "iou": [70], "dice": [72]})
    text = discussion.reflections(once)
    assert "No configuration of this build was trained with more than one seed, so the seed noise is not " \
           "measured" in text
    assert "varied by" not in text and "as was done for" not in text
    assert "Repeat the single-run comparisons over seeds, so that" in text
    seeded_losses = discussion.reflections(context(losses={"cross_entropy": [70, 74], "iou": [70, 70]}))
    assert "varied by up to " in seeded_losses and "in the loss comparison" in seeded_losses


def test_a_flattened_seed_is_said_to_have_flattened_too_only_after_flattened_main_runs():
    ctx = with_last_epochs(seeded({"unet_seed1": FLAT, "unet_seed2": FLAT, "simple_fcn_seed1": FLAT}),
                           {"U-Net": DESCENDING})
    text = training_section.seeds_length(ctx)
    assert text.startswith("The other seeds of SimpleFCN and U-Net had flattened:")
    assert "flattened too" in training_section.seeds_length(
        seeded({"unet_seed1": FLAT, "unet_seed2": FLAT, "simple_fcn_seed1": FLAT}))


@pytest.mark.parametrize("gain, shown", [(0.0104, "1.04%"), (0.00996, "0.996%"), (0.01, "1.0%"), (0.034, "3.4%"),
                                         (0.0, "0.0%")])
def test_a_last_epoch_gain_is_never_printed_on_the_wrong_side_of_the_rule(gain, shown):
    assert training_section.gain_pct(gain) == shown


def test_a_resolved_speed_ratio_never_prints_a_bound_of_one():
    SpeedRatio = cost.SpeedRatio
    assert cost.ratio_text(SpeedRatio(1.02, 1.004, 1.04, 5, 5)) == "1.020x (95% CI 1.004-1.040x over the runs' epochs)"
    assert cost.ratio_text(SpeedRatio(1.003, 1.001, 1.004, 5, 5)) == "1.003x (95% CI 1.001-1.004x over the runs' epochs)"
    unresolved = cost.ratio_text(SpeedRatio(1.02, 0.99, 1.05, 5, 5))
    assert unresolved == "1.02x (95% CI 0.99-1.05x over the runs' epochs)"


def test_points_are_fixed_point_to_their_first_significant_digit():
    assert fixed_point(0.0) == "0.0" and fixed_point(-0.0) == "0.0" and fixed_point(-0.00001) == "-0.00001"
    assert fixed_point(1e-7 * 100) == "0.00001" and fixed_point(12.345) == "12.3" and fixed_point(-0.04) == "-0.04"
    d = Difference(a=0.5, b=0.5, difference=1e-7, low=-1e-7, high=1e-6, resolved=False)
    assert "e-" not in verdict(d, "A", "B")


def test_an_estimate_on_the_other_side_of_its_interval_is_not_a_finding(monkeypatch):
    a, b = matrices(70), matrices(71)  # a scores lower than b on every image
    assert paired_difference(a, b, n_boot=200).resolved
    monkeypatch.setattr(uncertainty, "interval_of_samples", lambda *args, **kw: (0.001, 0.02))
    d = paired_difference(a, b, n_boot=200)
    assert d.difference < 0 < d.low and not d.resolved
    assert "beats" not in verdict(d, "A", "B")


def test_the_cost_sentence_of_a_one_round_timing_claims_no_difference():
    ctx = context()
    times = {k: np.array([0.1]) for k in ctx.untuned}
    ctx._memo[("side_by_side",)] = {"times": times, "rounds": 1, "steps": 3, "device": "CPU"}
    line = discussion.cost_sentence(ctx)
    assert "one round gives no interval, so the architectures' training speeds are not compared" in line


def test_the_baseline_verdict_names_only_what_resolved():
    both = discussion.baseline_verdict(evidence.finding(context(fcn=50, unet=70, swin=80), "architecture"))
    assert both == "The skip connections and the deeper encoders pay off, as the reference study argued."
    one = discussion.baseline_verdict(evidence.finding(context(fcn=50, unet=70, swin=one_image_better(50, 90)),
                                                       "architecture"))
    assert one == "Only U-Net clearly improves on the baseline; the other difference is unresolved."
    worse = discussion.baseline_verdict(evidence.finding(context(fcn=70, unet=50, swin=80), "architecture"))
    assert worse.startswith("U-Net is worse than the baseline beyond the noise")
    none = discussion.baseline_verdict(evidence.finding(context(fcn=70, unet=70, swin=70), "architecture"))
    assert none.startswith("No enhanced model differs from the baseline beyond the noise")


def test_the_loss_reference_without_cross_entropy_tests_nothing():
    ctx = context(losses={"iou": [70, 70], "dice": [80, 80]})
    assert loss_section.loss_reference(ctx) == ("Cross-entropy was not part of this comparison, so the reference's "
                                                "finding is not tested.")
    assert loss_section.loss_text(ctx).startswith("Two training losses were compared on the U-Net: a soft IoU")


# ----------------------------------------------------------------------------- sizes, modes and rungs that ran


def _sized(main_size, other_size=None, hits=90):
    """The default context whose main U-Net (3 seeds) trained at ``main_size`` and, unless None, a
    training-size run at ``other_size`` that scores ``hits``."""
    ctx = context(arch_seeds={"unet": [70, 70, 70]})
    for run in ctx.seed_runs("U-Net"):
        ctx.runs.configs[run] = replace(ctx.runs.configs[run], image_size=tuple(main_size))
    if other_size is not None:
        lab = Lab()
        lab.runs = ctx.runs
        h, w = other_size
        ctx.unet.resolution_run = lab.run(f"unet_{h}x{w}", matrices(hits), image_size=tuple(other_size))
    return ctx


def _markdown(stem: str, heading: str) -> str:
    import nbformat

    from cityseg_lib.paths import source_root

    nb = nbformat.read(str(source_root() / "notebooks" / f"{stem}.ipynb"), as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "markdown" and heading in c.source)


def test_the_training_size_words_follow_the_two_runs_sizes():
    """A second U-Net run smaller than the main one is never called the larger one (Table 13, the
    text, the conclusions, the captions); a skipped experiment is said to be skipped, not described."""
    from cityseg_lib.report import variants_section

    smaller = _sized((64, 128), (48, 96))  # the smaller run scores higher on every image
    c = evidence.comparison(smaller, "resolution_large_vs_main")
    assert (c.name_a, c.name_b) == ("U-Net trained at the smaller size (48x96)",
                                    "U-Net trained at the main run's size (64x128)")
    text = variants_section.resolution_text(smaller)
    assert ("the main U-Net (64x128 (HxW)) is compared with the same model trained at 48x96 (HxW), a smaller size in "
            "the same proportion") in text
    assert "So at this scale the smaller training size (48x96) scores measurably higher than the larger one " \
           "(64x128)." in text
    line = next(x for x in discussion.conclusions(smaller) if x.startswith("**Training resolution.**"))
    assert "larger size" not in line and "profile's size" not in line
    assert "larger" not in variants_section.resolution_caption(smaller) and "48x96" in \
        variants_section.resolution_caption(smaller)
    assert "vs 64x128, seed 0 (points)" in variants_section.resolution_table(smaller).columns
    larger = _sized((36, 72), (72, 144))
    assert evidence.comparison(larger, "resolution_large_vs_main").name_a == "U-Net trained at the larger size (72x144)"
    assert "So at this scale the larger training size (72x144) scores measurably higher than the smaller one " \
           "(36x72), where the reference found the two almost identical." in variants_section.resolution_text(larger)
    skipped = _sized((64, 128))
    assert evidence.finding(skipped, "resolution") == []
    assert variants_section.resolution_text(skipped).startswith("The training-size experiment was skipped in this "
                                                                "build")
    caption = variants_section.resolution_caption(skipped)
    assert "two sizes" not in caption and "skipped" in caption
    assert "two sizes" not in variants_section.fig_resolution(skipped, 13)[1].data
    same = _sized((64, 128), (64, 128))  # a second run at the main run's own size tests nothing about the size
    assert evidence.finding(same, "resolution") == []
    assert "at the main run's size" in variants_section.resolution_text(same)
    # the notebooks' markdown cannot compute, so it names no direction
    for stem, heading in (("07_report", "### Training resolution"), ("03_unet", "## Training resolution")):
        words = _markdown(stem, heading)
        assert "larger" not in words and "smaller" not in words and "same proportion" not in words


def test_the_augmentation_text_describes_only_the_modes_that_ran():
    """One mode: no comparison is claimed; two: those two described, with the verb and count agreeing."""
    one = context()
    one.unet.augment_runs = {"none": one.unet.main_run}
    text = training_section.augmentation_text(one)
    assert "in one augmentation mode only, without augmentation, so no augmentation mode is compared here" in text
    assert "1 modes" not in text and "replaced" not in text and "added" not in text
    assert "differs" not in text and "Ranked" not in text
    two = context(augment=80)
    two.unet.augment_runs = {"none": two.unet.main_run, "augment": "unet_aug_augment"}
    text = training_section.augmentation_text(two)
    assert ("in two modes: without augmentation and with randomly flipped (p = 0.5) and cropped (area 50% to 100%, "
            "resized back) copies added to the originals (twice the images per epoch).") in text
    assert "replaced" not in text and "'augment' augmentation helps." in text
    no_reference = context()
    no_reference.unet.augment_runs = {"replace": "unet_aug_replace", "augment": "unet_aug_augment"}
    text = training_section.augmentation_text(no_reference)
    assert "No mode ran without augmentation, so none is compared with training on the original images." in text
    assert "beyond the sampling noise" not in text


def _plan(*rungs) -> list[dict]:
    """Rungs of (trials, kept, train images, epochs); the last is the final one."""
    return [{"rung": i, "trials": t, "kept": k, "train images": n, "epochs": e, "final": i == len(rungs) - 1}
            for i, (t, k, n, e) in enumerate(rungs)]


def test_the_sweep_text_follows_its_rung_plan():
    """The smoke plan keeps 3 of 5 and then 2 of 3 on 2, 3 and 6 images: no 'half', no 'twice'."""
    from cityseg_lib.report import sweep_section

    ctx = context()
    ctx.sweep.sweeps = {"unet": {"plan": _plan((5, 3, 2, 1), (3, 2, 3, 1), (2, 1, 6, 1)), "n_train": 6, "trials": 10,
                                 "image_epochs": 31, "grid": {}, "table2": {}}}
    text = sweep_section.sweep_text(ctx)
    assert ("the first trains every combination for 1 epoch on 2 of the 6 training images; after each rung the "
            "candidates with the lowest validation loss go on: 3 of 5 to a rung on 3 images, then 2 of 3 to the "
            "last rung, on all 6 images.") in text
    assert "half" not in text and "twice" not in text
    ctx.sweep.sweeps["unet"].update(plan=_plan((2, 1, 6, 2)), trials=2, image_epochs=24)
    text = sweep_section.sweep_text(ctx)
    assert "in 1 rung: it trains every combination for 2 epochs on all 6 training images." in text
    assert "1 rungs" not in text and "go on" not in text
    words = _markdown("07_report", "### 4.5")
    assert "half" not in words and "twice" not in words
