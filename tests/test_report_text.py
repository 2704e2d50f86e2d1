"""The report's computed sentences, one test per branch, on hand-made contexts (no training, no files).

A context is the notebooks' typed results plus a :class:`MemoryRuns` holding hand-made runs: each
run is a stack of per-image confusion matrices (what decides every interval and verdict), a
record, a summary and a metrics table derived from it. A "better" run gets more pixels right on
every image (a resolved difference); a run that differs from another on one image only stays
unresolved (the bootstrap often leaves that image out).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd

from cityseg_lib.config import TrainConfig
from cityseg_lib.data.labels import CLASS_NAMES
from cityseg_lib.evaluate.uncertainty import compare_groups, miou_from_matrix, pixel_accuracy_from_matrix
from cityseg_lib.report import (cells, discussion, evidence, front, headline_json, loss_section, results_section,
                                training_section)
from cityseg_lib.report.context import MemoryRuns, ReportContext
from cityseg_lib.report.notebook_results import (BaselineResult, DataResult, LossResult, SweepResult, SwinResult,
                                                 UNetResult)

N_IMAGES, C = 20, len(CLASS_NAMES)


def matrices(hits: float | list[float]) -> np.ndarray:
    """``(N, C, C+1)``: image i holds 100 pixels of classes i%C and (i+7)%C; ``hits`` of each are right."""
    hits = [hits] * N_IMAGES if np.isscalar(hits) else list(hits)
    out = np.zeros((N_IMAGES, C, C + 1), dtype=np.int64)
    for i, h in enumerate(hits):
        for c in (i % C, (i + 7) % C):
            right = int(round(h))
            out[i, c, c] += right
            out[i, c, (c + 1) % C] += 100 - right
    return out


class Lab:
    """Builds hand-made runs into a MemoryRuns."""

    def __init__(self) -> None:
        self.runs = MemoryRuns()

    def run(self, name: str, per_image: np.ndarray, model: str = "unet", best_epoch: int = 5, epochs: int = 5,
            val_losses: list[float] | None = None, speeds: list[float] | None = None, **cfg) -> str:
        total = per_image.sum(0)
        miou, acc = miou_from_matrix(total), pixel_accuracy_from_matrix(total)
        config = TrainConfig(name=name, profile="test", model=model, epochs=epochs, **cfg)
        val_losses = val_losses or [2.0 - 0.1 * e for e in range(epochs)]
        metrics = pd.DataFrame({"epoch": range(1, epochs + 1), "lr": [config.lr] * epochs,
                                "train_loss": [v + 0.05 for v in val_losses], "val_loss": val_losses,
                                "val_miou": [miou * (e + 1) / epochs for e in range(epochs)]})
        metrics.loc[best_epoch - 1, "val_miou"] = miou
        if speeds is not None:  # images/s of each epoch, as fit records them
            metrics["train_images_per_s"] = speeds
        class_iou = {n: 0.5 for n in CLASS_NAMES}
        self.runs.per_images[name] = per_image
        self.runs.configs[name] = config
        self.runs.metric_frames[name] = metrics
        self.runs.summaries[name] = {"val": {"miou": miou, "class_iou": class_iou},
                                     "val_full_res": {"miou": miou, "class_iou": class_iou},
                                     "confusion_matrix": total[:, :C].tolist(), "train_time_s": 60.0}
        self.runs.stats[name] = {"params": 1e6, "flops": 1e9, "input_size": list(config.image_size)}
        self.runs.records[name] = {
            "label": name, "run": name, "name": name, "model": model, "loss": config.loss, "seed": config.seed,
            "augment": config.augment, "lr": config.lr, "gamma": config.gamma, "step_size": config.step_size,
            "weight_decay": config.weight_decay, "dropout": config.model_options.get("dropout", 0.0),
            "image_size": list(config.image_size), "epochs": epochs, "epochs_run": epochs, "best_epoch": best_epoch,
            "best_val_loss": min(val_losses), "miou": miou, "pixel_accuracy": acc, "miou_full_res": miou,
            "pixel_accuracy_full_res": acc, "train_images": 64, "val_images": N_IMAGES, "train_images_per_s": 10.0,
            "peak_memory_mb": 100.0, "train_time_s": 60.0, "device": "cpu", "commit": "c0ffee",
            "device_name": "CPU (x86_64)", "cpu_count": 2}
        if speeds is not None:
            self.runs.records[name]["train_images_per_s"] = float(np.median(speeds))
        return name


def context(fcn=50, unet=70, swin=80, constant=70, replace=70, augment=70, nodrop=80, nobn=80, tuned=70,
            losses=None, best_epochs=None, constant_losses=None, generator=True, arch_seeds=None,
            tuned_config=None) -> ReportContext:
    """A context whose runs score ``hits`` per 100 pixels (a number, or a per-image list);
    ``arch_seeds``: ``{"fcn"|"unet"|"swin": [hits of seed 0, 1, ...]}`` (seed 0 is the main run)."""
    lab = Lab()
    best = best_epochs or {}
    r = {}
    r["fcn"] = lab.run("simple_fcn", matrices(fcn), "simple_fcn", best_epoch=best.get("fcn", 5))
    r["unet"] = lab.run("unet", matrices(unet), best_epoch=best.get("unet", 5))
    r["const"] = lab.run("unet_constant_lr", matrices(constant), gamma=1.0, val_losses=constant_losses)
    r["replace"] = lab.run("unet_aug_replace", matrices(replace), augment="replace")
    r["augment"] = lab.run("unet_aug_augment", matrices(augment), augment="augment")
    r["swin"] = lab.run("swin2_jnet", matrices(swin), "swin2_jnet", best_epoch=best.get("swin", 5),
                        model_options={"dropout": 0.1, "pretrained": False})
    r["nodrop"] = lab.run("swin2_jnet_no_dropout", matrices(nodrop), "swin2_jnet", model_options={"dropout": 0.0})
    r["nobn"] = lab.run("swin2_jnet_no_batchnorm", matrices(nobn), "swin2_jnet",
                        model_options={"dropout": 0.1, "batchnorm": False})
    r["tuned"] = lab.run("unet_tuned", matrices(tuned), **(tuned_config or {}))
    seeds = {"fcn": [], "unet": [], "swin": []}
    for key, hits in (arch_seeds or {}).items():
        name, model = {"fcn": ("simple_fcn", "simple_fcn"), "unet": ("unet", "unet"),
                       "swin": ("swin2_jnet", "swin2_jnet")}[key]
        r[key] = lab.run(name, matrices(hits[0]), model)
        seeds[key] = [r[key]] + [lab.run(f"{name}_seed{s}", matrices(h), model, seed=s) for s, h in enumerate(hits) if s]
    losses = losses or {"cross_entropy": [70, 70], "iou": [70, 70], "dice": [70, 70]}
    loss_runs = {loss: [lab.run(f"loss_{loss}_seed{s}", matrices(h), loss=loss, seed=s)
                        for s, h in enumerate(hits)] for loss, hits in losses.items()}
    data = DataResult(data_root="/data/cityscapes", synthetic=True,
                      generator={"train": 64, "val": 16, "size": [1024, 512], "seed": 0} if generator else None,
                      splits={"train": {"images": 64, "cities": {"a": 64}}, "val": {"images": N_IMAGES, "cities": {"b": 20}}},
                      coarse_counts={}, image_sizes={"1024x512": 84},
                      class_stats={"fine": {"pixels": {n: 100 for n in CLASS_NAMES}}}, majority_class="road",
                      majority_miou=0.003)
    return ReportContext(
        profile="test", data=data, baseline=BaselineResult(main_run=r["fcn"], cpu_threads=1, seed_runs=seeds["fcn"]),
        unet=UNetResult(main_run=r["unet"], constant_lr_run=r["const"],
                        augment_runs={"none": r["unet"], "replace": r["replace"], "augment": r["augment"]},
                        seed_runs=seeds["unet"]),
        swin=SwinResult(main_run=r["swin"], no_dropout_run=r["nodrop"], no_batchnorm_run=r["nobn"],
                        batchnorm_switch=True, seed_runs=seeds["swin"]),
        losses=LossResult(runs=loss_runs, seeds=[0, 1]),
        sweep=SweepResult(sweeps={}, tuned_runs={"unet": r["tuned"]}),
        runs=lab.runs, env={"cpu_count": 2, "commit": "c0ffee", "device": "CPU (x86_64)"}, n_boot=300)


def one_image_better(base: float, better: float) -> list[float]:
    """Per-image hits equal to ``base`` except the first image: a difference the bootstrap cannot resolve."""
    return [better] + [base] * (N_IMAGES - 1)


# ----------------------------------------------------------------------------- loss


def test_loss_text_resolved_cross_entropy_best_agrees_with_reference():
    ctx = context(losses={"cross_entropy": [80, 81], "iou": [60, 61], "dice": [50, 52]})
    text = loss_section.loss_text(ctx)
    assert "Cross-entropy beats IoU (soft Jaccard) by" in text and "Cross-entropy beats Dice by" in text
    assert "This agrees with the reference study" in text
    assert loss_section.loss_ranking(ctx)[0] == "cross_entropy"


def test_loss_text_of_one_seed_claims_no_seed_agreement_or_spread():
    """Notebook 05 may train each loss once (seeds=[0]): nothing was pooled over seeds, no spread measured,
    and no seed agreed with another; with two seeds the same words claim all three."""
    one = loss_section.loss_text(context(losses={"cross_entropy": [90], "iou": [50], "dice": [50]}))
    assert "Paired on the same validation images: Cross-entropy beats IoU (soft Jaccard) by" in one
    assert "one run each, so the spread between seeds is not measured" in one and "pooled over seeds" not in one
    assert "every seed agreeing" not in one and one.endswith(
        "here beyond the noise of the validation images and with one run of each loss (the seed noise is not in "
        "these intervals).")
    two = loss_section.loss_text(context(losses={"cross_entropy": [90, 91], "iou": [50, 51], "dice": [50, 52]}))
    assert "so that a difference can be compared with the spread between seeds" in two
    assert "Paired on the same validation images and pooled over seeds: " in two
    assert two.endswith("here beyond the noise of the validation images and with every seed agreeing.")


def test_loss_text_resolved_other_loss_best_contradicts_reference():
    ctx = context(losses={"cross_entropy": [60, 61], "dice": [80, 81]})
    text = loss_section.loss_text(ctx)
    assert "Dice beats cross-entropy by" in text and "Unlike the reference study" in text


def test_loss_text_unresolved_says_so_and_names_no_winner():
    ctx = context(losses={"cross_entropy": one_image_better(70, 70), "iou": one_image_better(70, 90)})
    text = loss_section.loss_text(ctx)
    assert "unresolved" in text and "beats" not in text
    assert "neither confirm nor contradict" in text


def test_loss_seeds_that_disagree_leave_the_difference_unresolved():
    # the pooled difference is clear, but seed 1 goes the other way
    ctx = context(losses={"cross_entropy": [60, 75], "iou": [80, 70]})
    (c,) = evidence.finding(ctx, "loss")
    assert c.diff.excludes_zero and c.diff.seeds_agree is False and not c.resolved
    # the sentence gives the reason, not the generic "unresolved at this validation size" nor a winner
    sentence = c.sentence()
    assert "the interval excludes zero but the seeds disagree (1 of 2 agree in sign)" in sentence, sentence
    assert "beats" not in sentence and "at this validation size" not in sentence, sentence


# ----------------------------------------------------------------------------- scheduler, augmentation


def test_scheduler_text_resolved_and_rising_validation_loss():
    ctx = context(unet=80, constant=60, constant_losses=[2.0, 1.5, 1.2, 1.4, 1.6])
    ctx.runs.metric_frames["unet_constant_lr"]["train_loss"] = [2.1, 1.6, 1.3, 1.2, 1.1]  # still falling
    text = training_section.scheduler_text(ctx)
    assert "StepLR beats a constant learning rate by" in text
    assert ("After its lowest validation loss (1.2000 at epoch 3) the constant run's validation loss stayed above it "
            "(between 1.4000 and 1.6000, 1.6000 at the end) while the training loss kept falling") in text
    assert "the start of the over-fitting" in text


def test_after_the_minimum_a_swinging_loss_is_not_called_over_fitting():
    """The demo's constant-rate U-Net: the validation loss bounces (0.77, 0.99, 0.80, 0.77, 0.92) while
    the training loss falls; it comes back to its minimum, so the words say noise, not over-fitting."""
    def frame(val, train):
        return pd.DataFrame({"epoch": range(1, len(val) + 1), "val_loss": val, "train_loss": train})

    swing = training_section.after_minimum("constant", frame([1.0, 0.7723, 0.9867, 0.7967, 0.7742, 0.9201],
                                                             [1.1, 0.7854, 0.7943, 0.7676, 0.7567, 0.7453]))
    assert "swung between 0.7742 and 0.9867 (0.9201 at the end)" in swing and "shows no over-fitting" in swing
    assert "the start of the over-fitting" not in swing
    unsettled = training_section.after_minimum("constant", frame([1.0, 0.8, 0.9, 0.95], [1.0, 0.8, 0.85, 0.9]))
    assert "the training loss did not fall" in unsettled and "which is not over-fitting" in unsettled
    one = training_section.after_minimum("constant", frame([1.0, 0.9, 0.8, 0.95], [1.0, 0.9, 0.8, 0.7]))
    assert "last epoch rose to 0.9500: one epoch, too short to tell a rise from the epoch-to-epoch noise" in one
    assert training_section.after_minimum("StepLR", frame([1.0, 0.8, 0.805], [1.0, 0.8, 0.7])) == ""  # within 1%
    assert training_section.after_minimum("StepLR", frame([1.0, 0.9, 0.8], [1.0, 0.9, 0.8])) == ""  # lowest last


def test_scheduler_text_unresolved_and_no_overfitting():
    ctx = context(unet=one_image_better(70, 70), constant=one_image_better(70, 75))
    text = training_section.scheduler_text(ctx)
    assert "unresolved" in text and "Neither run's validation loss had turned upwards" in text


def test_augmentation_text_helps_hurts_and_unresolved():
    helps = training_section.augmentation_text(context(unet=60, replace=80, augment=40))
    assert "'replace' augmentation helps" in helps and "'augment' augmentation hurts" in helps
    flat = training_section.augmentation_text(context(unet=one_image_better(70, 70),
                                                      replace=one_image_better(70, 80), augment=70))
    assert "No augmentation mode differs from training on the original images beyond the sampling noise" in flat
    table = training_section.augmentation_table(context(unet=60, replace=80))
    assert list(table["finding"]) == ["–", "yes", "yes"]


# ----------------------------------------------------------------------------- dropout, BatchNorm, early stopping


def test_dropout_and_batchnorm_text_resolved_and_unresolved():
    text = results_section.dropout_text(context(swin=80, nodrop=60, nobn=one_image_better(80, 80)))
    assert "Swin2-JNet with dropout beats Swin2-JNet without dropout by" in text
    assert "Removing the decoder's BatchNorm: Swin2-JNet with BatchNorm vs Swin2-JNet without BatchNorm" in text
    assert "unresolved" in text


def test_dropout_text_without_batchnorm_switch():
    ctx = context()
    ctx.swin.no_batchnorm_run, ctx.swin.batchnorm_switch = None, False
    assert "has no switch to remove the decoder's BatchNorm" in results_section.dropout_text(ctx)


def test_early_stopping_text_both_branches():
    assert "every model's best epoch was its last" in training_section.early_stopping_text(context())
    text = training_section.early_stopping_text(context(best_epochs={"unet": 3}))
    assert "For U-Net that epoch came before the last one" in text
    flat = with_last_epochs(context(best_epochs={"unet": 3}), {k: FLAT for k in ("SimpleFCN", "Swin2-JNet",
                                                                                  "U-Net (tuned)")})
    text = training_section.early_stopping_text(flat)
    assert "For U-Net that epoch came before the last one, so the kept model differs from the final one" in text
    assert "For SimpleFCN, Swin2-JNet and U-Net (tuned) the last epoch was the best, but it lowered" in text
    assert text.count("the last epoch was the best") == 1 and "longer training" not in text


def with_last_epochs(ctx: ReportContext, losses: dict[str, list[float]]) -> ReportContext:
    """``ctx`` with the validation-loss curves of some headline runs (by label) replaced."""
    for label, values in losses.items():
        frame = ctx.runs.metric_frames[ctx.main_runs[label]]
        frame["val_loss"] = values + [values[-1]] * (len(frame) - len(values))
    return ctx


DESCENDING = [2.0, 1.8, 1.6, 1.5, 1.4]  # the last epoch: 6.7% below the best before it
FLAT = [2.0, 1.8, 1.6, 1.5, 1.495]     # 0.3%: the curve has flattened


def test_training_length_follows_the_last_epochs_gain():
    # every curve still descending (the default runs): the runs stopped mid-descent, and it is said
    ctx = with_last_epochs(context(), {"SimpleFCN": DESCENDING, "U-Net": DESCENDING, "Swin2-JNet": DESCENDING,
                                       "U-Net (tuned)": DESCENDING})
    text = discussion.training_length(ctx)
    assert ("SimpleFCN, U-Net, Swin2-JNet and U-Net (tuned) still lowered the validation loss in their last epoch "
            "by 6.7%, 6.7%, 6.7% and 6.7% respectively, more than 1%: they stopped") in text
    assert "stopped mid-descent" in text and "flattened" not in text
    assert "longer training would probably still help them" in training_section.early_stopping_text(ctx)
    assert any(p.startswith("**Training length.**") for p in discussion.reflections(ctx).split("\n\n"))
    # one run still descending, the others flat: each is named with its own gain
    ctx = with_last_epochs(context(), {"SimpleFCN": DESCENDING, "U-Net": FLAT, "Swin2-JNet": FLAT,
                                       "U-Net (tuned)": FLAT})
    text = discussion.training_length(ctx)
    assert "SimpleFCN still lowered the validation loss in its last epoch by 6.7%, more than 1%: it stopped" in text
    assert "U-Net, Swin2-JNet and U-Net (tuned) had their best epoch last" in text and "(0.3%, 0.3% and 0.3%)" in text
    stop = training_section.early_stopping_text(ctx)
    assert "For SimpleFCN the last epoch still lowered the validation loss by more than 1%" in stop
    assert "still help it." in stop and "For U-Net, Swin2-JNet and U-Net (tuned) the last epoch was the best" in stop
    # all flat: no run is said to be limited by its length
    ctx = with_last_epochs(context(), {k: FLAT for k in ("SimpleFCN", "U-Net", "Swin2-JNet", "U-Net (tuned)")})
    assert "mid-descent" not in discussion.training_length(ctx)
    assert "For every model the last epoch was the best, but it lowered the validation loss by at most 1% (the " \
           "table's last column): the curves had flattened." in training_section.early_stopping_text(ctx)
    # a tuned run at its sweep's constant rate: said why nothing flattened it (only where it is still descending)
    ctx = with_last_epochs(context(tuned_config={"gamma": 1.0}), {"U-Net (tuned)": DESCENDING, "U-Net": FLAT,
                                                                   "SimpleFCN": FLAT, "Swin2-JNet": FLAT})
    stop = training_section.early_stopping_text(ctx)
    assert ("U-Net (tuned) trained at a constant learning rate (gamma 1, its sweep's choice), so nothing in its "
            "schedule slowed the descent before the last epoch.") in stop
    assert "constant learning rate" not in training_section.early_stopping_text(
        with_last_epochs(context(tuned_config={"gamma": 1.0}), {k: FLAT for k in ("SimpleFCN", "U-Net", "Swin2-JNet",
                                                                                  "U-Net (tuned)")}))
    assert "constant learning rate" not in training_section.early_stopping_text(
        with_last_epochs(context(tuned_config={"step_size": 2}), {"U-Net (tuned)": DESCENDING, "U-Net": FLAT,
                                                                  "SimpleFCN": FLAT, "Swin2-JNet": FLAT}))  # it decayed
    # a run whose best epoch came before its last is not said to be still descending
    text = discussion.training_length(context(best_epochs={"fcn": 3, "unet": 2, "swin": 4}))
    assert text.startswith("U-Net (tuned) still lowered the validation loss in its last epoch by 5.9%,")
    assert "SimpleFCN" not in text


# ----------------------------------------------------------------------------- conclusions, headline, provenance


def test_conclusions_state_only_resolved_findings():
    clear = discussion.conclusions(context(fcn=40, unet=60, swin=80))
    arch = next(line for line in clear if line.startswith("**Architectures.**"))
    assert "U-Net beats SimpleFCN" in arch and "pay off" in arch
    vague = discussion.conclusions(context(fcn=one_image_better(70, 70), unet=one_image_better(70, 75),
                                           swin=one_image_better(70, 72)))
    arch = next(line for line in vague if line.startswith("**Architectures.**"))
    assert "beats" not in arch and "neither confirms nor contradicts" in arch
    worse = discussion.conclusions(context(fcn=80, unet=60, swin=one_image_better(80, 80)))
    assert any("worse than the baseline beyond the noise" in line for line in worse)


def test_augmentation_conclusion_gives_each_modes_difference_with_its_interval():
    line = next(x for x in discussion.conclusions(context(unet=70, replace=50, augment=70))
                if x.startswith("**Augmentation.**"))
    assert "No augmentation beats 'replace' augmentation by" in line and "'augment' augmentation vs no augmentation" in line
    assert line.count("95% CI") == 2 and "'replace' augmentation hurts" in line
    assert line.endswith("One run each: the seed noise is not in this interval.")


def test_headline_numbers_are_fractions_and_match_the_results_table(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))
    ctx = context(fcn=50, unet=70)
    head = json.loads(headline_json.write_headline(ctx).read_text())
    assert set(head["models"]) == {"simple_fcn", "unet", "swin2_jnet", "unet_tuned"}
    for m in head["models"].values():
        assert 0 <= m["ci_low"] <= m["ci_high"] <= 1 and 0 <= m["miou"] <= 1 and len(m["class_iou"]) == 19
        assert list(m["class_iou_ci"]) == list(CLASS_NAMES)
        assert all(low <= high for low, high in m["class_iou_ci"].values() if low is not None)
    per_class = evidence.class_intervals(ctx, ctx.main_runs["U-Net"])  # the numbers Figure 8 draws
    assert head["models"]["unet"]["class_iou_ci"]["road"] == [per_class[1][0], per_class[2][0]]
    unet = head["models"]["unet"]  # the default curves fall by 0.1 an epoch: the last one by 1/17
    assert unet["epochs_run"] == 5 and unet["best_epoch"] == 5 and unet["flattened"] is False
    assert math.isclose(unet["last_epoch_gain"], 0.1 / 1.7)
    comp = head["comparisons"]["unet_vs_simple_fcn"]
    assert comp["resolved"] is True and comp["difference"] > 0 and comp["ci_low"] > 0
    table = results_section.results_table(ctx)
    fcn, m = table[table["model"] == "SimpleFCN"].iloc[0], head["models"]["simple_fcn"]
    assert fcn["val mIoU full res, official % [95% CI]"] == (
        f"{100 * m['miou']:.1f} ({100 * m['ci_low']:.1f}-{100 * m['ci_high']:.1f})")
    at_size = next(c for c in table.columns if c.startswith("val mIoU @"))
    assert fcn[at_size] == f"{100 * ctx.main['SimpleFCN']['miou']:.1f}"  # the runs kept no training-size matrices
    diffs = results_section.comparisons_table(ctx)
    assert len(diffs) == len(head["comparisons"]) and set(diffs["finding"]) <= {"yes", "unresolved"}


def test_provenance_names_synthetic_data_with_and_without_generator_settings():
    with_stamp = front.dataset_description(context())
    assert with_stamp.startswith("SYNTHETIC") and "64 train / 16 val" in with_stamp
    made = front.dataset_description(context(generator=False))  # `cityseg make-demo-data DIR`: no stamp
    assert made.startswith("SYNTHETIC") and "made by cityseg make-demo-data" in made
    table = front.provenance_table(context(generator=False))  # the report's provenance carries that line
    assert table.set_index("item").loc["dataset", "value"] == made


# ----------------------------------------------------------------------------- architectures over seeds


def test_architectures_pool_their_seeds_and_the_headline_gives_each_seed():
    ctx = context(arch_seeds={"fcn": [50, 52, 48], "unet": [70, 72, 68], "swin": [80, 79, 81]})
    c = evidence.comparison(ctx, "unet_vs_simple_fcn")
    assert (c.diff.n_seeds_a, c.diff.n_seeds_b) == (3, 3) and c.resolved
    assert c.sentence().startswith("U-Net beats SimpleFCN by") and "3 of 3 seeds agree" in c.sentence()
    unet = headline_json.headline(ctx)["models"]["unet"]
    assert unet["seeds"] == [0, 1, 2] and len(unet["seed_miou"]) == 3
    assert unet["seed_mean"] == np.mean(unet["seed_miou"]) and unet["seed_sd"] == np.std(unet["seed_miou"], ddof=1) > 0
    assert unet["miou"] == unet["seed_miou"][0]  # the headline score is the main run's (seed 0)
    table = results_section.results_table(ctx)
    assert list(table["seeds"][:3]) == [3, 3, 3]
    assert table["mean over seeds (%)"][1] == round(100 * unet["seed_mean"], 1)


def test_an_architecture_difference_whose_seeds_disagree_is_unresolved():
    # pooled, U-Net is ahead (seed 0 by far); seeds 1 and 2 have SimpleFCN ahead
    ctx = context(arch_seeds={"fcn": [60, 60, 60], "unet": [95, 55, 55]})
    c = evidence.comparison(ctx, "unet_vs_simple_fcn")
    assert c.diff.difference > 0 and c.diff.seeds_agree is False and not c.resolved
    assert "unresolved" in c.sentence() and "beats" not in c.sentence()
    assert headline_json.headline(ctx)["comparisons"]["unet_vs_simple_fcn"]["resolved"] is False


def test_seeds_are_paired_by_seed_not_by_their_place_in_each_notebooks_list():
    """Each notebook lists its own seeds, main seed first: SimpleFCN's main run may be seed 1 while
    U-Net's is seed 0. U-Net beats SimpleFCN by 5 hits with every seed; paired by place in the lists,
    seed 0 would meet seed 1 and the seeds would seem to disagree. With other seeds on the two sides,
    no run has a partner: every U-Net seed is set against every SimpleFCN seed."""
    def relabel(ctx: ReportContext, seeds: dict[str, int]) -> ReportContext:
        for run, seed in seeds.items():
            ctx.runs.records[run]["seed"] = seed
        return ctx

    # SimpleFCN's list: its main run (seed 1, 65 hits), then seed 0 (55) and seed 2 (75)
    ctx = relabel(context(arch_seeds={"unet": [60, 70, 80], "fcn": [65, 55, 75]}),
                  {"simple_fcn": 1, "simple_fcn_seed1": 0})
    c = evidence.comparison(ctx, "unet_vs_simple_fcn")
    assert c.resolved and c.diff.seeds_agree and all(d > 0 for d in c.diff.seed_differences)
    assert c.sentence().startswith("U-Net beats SimpleFCN by") and "3 of 3 seeds agree" in c.sentence()
    # SimpleFCN trained with seeds 0, 3 and 4: U-Net's seed 2 (80) against its seed 4 (85) is behind
    ctx = relabel(context(arch_seeds={"unet": [60, 70, 80], "fcn": [55, 65, 85]}),
                  {"simple_fcn_seed1": 3, "simple_fcn_seed2": 4})
    c = evidence.comparison(ctx, "unet_vs_simple_fcn")
    assert len(c.diff.seed_differences) == 9 and c.diff.seeds_agree is False and not c.resolved
    assert "the seed pairs disagree (5 of 9 agree in sign)" in c.sentence()


def test_a_variant_run_once_is_compared_with_its_own_seed_and_must_beat_every_seed():
    """The main U-Net's seeds score 70 / 74 / 66 and every variant ran once with seed 0: its difference
    is taken against seed 0 (70), the run that shares its initial weights and image order. A variant
    at 68 is 2 points below that run on every image, but above seed 2: unresolved (2 of 3 seed pairs
    agree). A variant at 50 lies below every seed: resolved, with the single-run caveat."""
    seeded = {"unet": [70, 74, 66], "swin": [80, 84, 76]}
    ctx = context(arch_seeds=seeded, tuned=68, constant=68, replace=50, augment=68, nodrop=78, nobn=60)
    for key in ("unet_tuned_vs_unet", "augment_replace_vs_none", "augment_augment_vs_none", "steplr_vs_constant_lr",
                "dropout_vs_no_dropout", "batchnorm_vs_no_batchnorm"):
        c = evidence.comparison(ctx, key)
        assert sorted((c.diff.n_seeds_a, c.diff.n_seeds_b)) == [1, 3] and len(c.diff.seed_differences) == 3, key
        assert c.single_run and c.runs_phrase() == "one run against 3 seeds", key
        assert c.diff.matched_seed == 0, key
    seed0 = compare_groups([matrices(68)], [matrices(70)], n_boot=ctx.n_boot)  # the two runs of seed 0 alone
    tuned = evidence.comparison(ctx, "unet_tuned_vs_unet")
    assert (tuned.diff.difference, tuned.diff.low, tuned.diff.high) == (seed0.difference, seed0.low, seed0.high)
    assert tuned.diff.excludes_zero and not tuned.resolved and tuned.diff.n_seeds_agreeing == 2
    assert (tuned.sentence().startswith("U-Net (tuned) vs U-Net: -")
            and ", seed 0 against seed 0); the interval excludes zero but the seed pairs disagree (2 of 3 agree "
                "in sign), so the difference is unresolved." in tuned.sentence())
    for key in ("steplr_vs_constant_lr", "dropout_vs_no_dropout", "augment_augment_vs_none"):
        assert not evidence.comparison(ctx, key).resolved, key
    for key in ("augment_replace_vs_none", "batchnorm_vs_no_batchnorm"):
        text = evidence.comparison(ctx, key).sentence()
        assert evidence.comparison(ctx, key).resolved and ", seed 0 against seed 0; 3 of 3 seed pairs agree)" in text
    lines = discussion.conclusions(ctx)
    sweep = next(x for x in lines if x.startswith("**Sweep, U-Net.**"))
    assert "not shown to help" in sweep and "beats" not in sweep
    aug = next(x for x in lines if x.startswith("**Augmentation.**"))
    assert aug.endswith("One run against 3 seeds: the single run's own seed noise is not in this interval.")
    assert "One run each" not in aug
    worse = context(arch_seeds=seeded, tuned=50)
    refl = next(p for p in discussion.reflections(worse).split("\n\n") if p.startswith("**Sweep.**"))
    assert refl.endswith("made U-Net worse beyond the noise of the validation set (one run against 3 seeds).")
    head = headline_json.headline(ctx)["comparisons"]["unet_tuned_vs_unet"]
    assert (head["seeds_a"], head["seeds_b"], head["resolved"], head["matched_seed"]) == (1, 3, False, 0)
    assert headline_json.headline(ctx)["comparisons"]["swin2_jnet_vs_unet"]["matched_seed"] is None
    table = results_section.comparisons_table(ctx)
    assert "1 vs 3" in set(table["seeds"]) and "3 vs 3" in set(table["seeds"])
    aug_table = training_section.augmentation_table(ctx)
    replace = evidence.comparison(ctx, "augment_replace_vs_none").diff
    assert list(aug_table["vs none, seed 0 (points)"])[1] == (
        f"{100 * replace.difference:+.1f} ({100 * replace.low:+.1f} to {100 * replace.high:+.1f})".replace("-", "−"))
    # every variant table carries its difference to the main configuration, with the same interval
    sched = training_section.scheduler_table(ctx).set_index("learning rate")
    const = evidence.comparison(ctx, "steplr_vs_constant_lr")
    assert list(sched["vs StepLR, seed 0 (points)"]) == ["–", cells.difference_cell(const, -1)]
    assert list(sched["finding"]) == ["–", cells.finding_cell(const)]
    drop = results_section.dropout_table(ctx)
    nobn = evidence.comparison(ctx, "batchnorm_vs_no_batchnorm")
    assert list(drop["vs the main model, seed 0 (points)"])[0] == "–"
    assert list(drop["vs the main model, seed 0 (points)"])[2] == cells.difference_cell(nobn, -1)
    assert cells.difference_cell(nobn, -1).startswith("+" if nobn.diff.difference < 0 else "−")
    assert "vs none (points)" in training_section.augmentation_table(context()).columns
    m = [100 * miou_from_matrix(matrices(h).sum(0)) for h in seeded["unet"]]
    note = ("ran once, with seed 0, against the run of the configuration it varies with that seed (the same initial weights and "
            f"order of images); a finding must also lie beyond all 3 of its seeds ({min(m):.1f}% to {max(m):.1f}%).")
    assert training_section.augmentation_text(ctx).count("Each variant " + note) == 1
    assert ("The variant " + note) in training_section.scheduler_text(ctx)
    assert "seeds of the main configuration" not in training_section.augmentation_text(context())
    # ranked by the scores the differences use: the main run of seed 0, not the seeds' mean
    score = {h: f"{100 * miou_from_matrix(matrices(h).sum(0)):.1f}%" for h in (70, 68, 50)}
    assert (f"Ranked by full-resolution mIoU: `none` ({score[70]}) > `augment` ({score[68]}) > `replace` "
            f"({score[50]}).") in training_section.augmentation_text(ctx)


def test_a_variant_that_only_shares_its_seeds_luck_is_not_called_better():
    """Seed 0 of the main U-Net scores 70, seeds 1 and 2 only 60 and 62; a variant of seed 0 scores 71.
    Against the seeds pooled it would be 7 points better; against the run it shares its seed with it is
    1 point better, and that is the difference the report gives."""
    ctx = context(arch_seeds={"unet": [70, 60, 62]}, augment=71)
    d = evidence.comparison(ctx, "augment_augment_vs_none").diff
    pooled = compare_groups([matrices(71)], [matrices(h) for h in (70, 60, 62)], n_boot=ctx.n_boot)
    assert abs(100 * d.difference - 1.0) < 0.3 and 100 * pooled.difference > 6
    assert d.matched_seed == 0 and d.seeds_agree is True


def test_a_model_trained_once_has_no_seed_spread():
    unet = headline_json.headline(context())["models"]["unet"]
    assert unet["seeds"] == [0] and unet["seed_sd"] is None and unet["seed_mean"] == unet["miou"]


def test_the_run_count_includes_every_seed_optimiser_and_resolution_run():
    from cityseg_lib.report.front import all_runs

    one = all_runs(context())
    ctx = context(arch_seeds={"fcn": [50, 52, 48], "unet": [70, 72, 68], "swin": [80, 79, 81]})
    lab = ctx.runs
    ctx.unet.optimizer_runs = {"adamw": ctx.unet.main_run, "adam": "unet_opt_adam"}
    ctx.unet.resolution_run = "unet_144x288"
    for name in ("unet_opt_adam", "unet_144x288"):
        lab.configs[name] = lab.configs[ctx.unet.main_run]
    runs = all_runs(ctx)
    assert len(runs) == len(one) + 6 + 2
    assert {"unet_seed1", "swin2_jnet_seed2", "simple_fcn_seed1", "unet_opt_adam", "unet_144x288"} <= set(runs)


def test_reflections_name_the_single_run_comparisons_and_the_next_step_follows_the_seeds():
    text = discussion.reflections(context())
    assert "single-run comparisons (architectures, augmentation" in text
    assert "Repeat the single-run comparisons over seeds as was done for the losses," in text
    seeded = discussion.reflections(context(arch_seeds={"fcn": [50, 52, 48], "unet": [70, 72, 68],
                                                        "swin": [80, 79, 81]}))
    assert "in the architecture comparison" in seeded
    assert "single-run comparisons (augmentation, scheduler" in seeded and "(architectures" not in seeded
    assert "Repeat the single-run comparisons over seeds as was done for the architectures and the losses" in seeded


def test_timings_note_gives_the_span_when_notebooks_ran_side_by_side():
    ctx = context()
    ctx.timings = {"data_s": 10.0, "notebooks": {
        "01_data_exploration": {"seconds": 20.0, "finished": "2026-12-01 10:00:20"},
        "02_baseline_fcn": {"seconds": 100.0, "finished": "2026-12-01 10:02:00"},
        "03_unet": {"seconds": 300.0, "finished": "2026-12-01 10:05:20"}}}  # 02 and 03 both started 10:00:20
    text = front.timings_note(ctx)
    assert "took 7.2 minutes of wall time in their latest execution, added up" in text
    assert "from the first start to the last end took 5.3 minutes" in text
    ctx.timings["notebooks"]["03_unet"]["finished"] = "2026-12-01 10:07:00"  # one after another
    assert "side by side" not in front.timings_note(ctx)


def test_timings_keep_what_the_runs_cost_when_a_rebuild_reuses_them():
    """A rebuild executes each notebook in seconds; the table's training column still gives what each
    notebook's runs took to train (their summaries: 60 s each here), a shared run counted once."""
    ctx = context(arch_seeds={"unet": [70, 72, 68]}, losses={"cross_entropy": [70, 72], "dice": [75, 76]})
    ctx.losses.runs["cross_entropy"] = ctx.unet.seed_runs[:2]  # 05's cross-entropy seeds are 03's U-Net seeds
    ctx.timings = {"notebooks": {"02_baseline_fcn": {"seconds": 5.0, "finished": "2026-12-01 10:00:05"},
                                 "03_unet": {"seconds": 6.0, "finished": "2026-12-01 10:00:06"},
                                 "05_loss_comparison": {"seconds": 4.0, "finished": "2026-12-01 10:00:10"}}}
    groups = front.notebook_runs(ctx)
    assert not set(groups["03"]) & set(groups["05"]) and len(groups["05"]) == 2  # only the Dice seeds
    assert sorted(r for g in groups.values() for r in g) == front.all_runs(ctx)
    table = front.timings_table(ctx).set_index("step")["training of its runs (min)"]
    # 03: main run + 2 seeds + constant lr + 2 augmentation modes (none is the main run)
    assert table["02_baseline_fcn.ipynb"] == 1.0 and table["03_unet.ipynb"] == 6.0
    assert table["05_loss_comparison.ipynb"] == 2.0
    note = front.timings_note(ctx)
    total = 60 * len(front.all_runs(ctx)) / 60
    assert "took 0.2 minutes of wall time" in note and f"The runs they use took {total:.1f} minutes of training" in note
    ctx.timings["notebooks"]["06_halving_sweep"] = {"seconds": 3.0, "finished": "2026-12-01 10:00:13"}
    assert front.timings_table(ctx).set_index("step")["training of its runs (min)"]["06_halving_sweep.ipynb"] == 1.0
    ctx.sweep.sweeps = {"unet": {"trial_train_s": 90.0}}  # the sweep's trials count under 06, with its tuned run
    assert front.timings_table(ctx).set_index("step")["training of its runs (min)"]["06_halving_sweep.ipynb"] == 2.5
    assert f"took {total + 1.5:.1f} minutes of training" in front.timings_note(ctx)


def test_a_difference_is_never_printed_as_minus_zero():
    from cityseg_lib.report.headline_json import points

    # a small difference keeps its first digit (-0.02), an exact zero of either sign is 0.0
    assert str(points(-0.0002)) == "-0.02" and str(points(-0.0)) == "0.0" and points(-0.0123) == -1.2
    assert math.isnan(points(None))


def test_a_difference_cell_never_shows_a_bound_that_excludes_zero_as_zero():
    from cityseg_lib.evaluate.uncertainty import Difference

    d = Difference(a=0.2, b=0.2033, difference=-0.0033, low=-0.004, high=-0.0003, resolved=True, n_images=64,
                   n_boot=2000, level=0.95, metric="miou", method="expanded")
    assert cells.difference_cell(d) == "−0.3 (−0.4 to −0.03)"
    assert cells.difference_cell(d, -1) == "+0.3 (+0.03 to +0.4)"
    tiny = Difference(a=0.2, b=0.2, difference=0.0, low=-0.00001, high=0.00002, resolved=False, n_images=64,
                      n_boot=2000, level=0.95, metric="miou", method="expanded")
    assert cells.difference_cell(tiny) == "+0.0 (−0.001 to +0.002)"


def test_an_interval_bound_near_zero_is_not_shown_as_zero():
    """Table 13 and its sentences: a resolved difference's bound of 0.04 points reads 0.04, not 0.0
    (which would contradict "finding: yes"); exact zeros and ordinary values keep one decimal."""
    from cityseg_lib.report.format import _column_format

    assert headline_json.points(0.000413) == 0.04 and headline_json.points(0.0592) == 5.9
    assert headline_json.points(3e-6) == 0.0003  # to its first significant digit, however small
    assert headline_json.points(0.0) == 0.0 and str(headline_json.points(-0.00001)) == "-0.001"
    assert math.isnan(headline_json.points(None))
    fmt = _column_format(pd.Series([headline_json.points(x) for x in (0.000413, 0.0592, -0.004, 0.0)]), "95% CI low")
    assert [fmt(v) for v in (0.041, 5.9, -0.4, 0.0)] == ["0.04", "5.9", "-0.4", "0.0"]
    lr = _column_format(pd.Series([1e-2, 1e-3, 1e-4]), "lr")
    assert [lr(v) for v in (1e-2, 1e-3, 1e-4)] == ["0.01", "0.001", "0.0001"]  # learning rates as before
    assert lr(1e-5) == "0.00001" and lr(2.5e-6) == "0.0000025"  # never an exponent


def test_sweep_words_follow_the_tuned_runs_difference():
    """The tuned model against its main run, one run each: 'help', 'make it worse' or 'not shown to
    help', each with the one-run caveat; the reflections name what the winners' settings did."""
    def lines(tuned):
        ctx = context(unet=70, tuned=tuned)
        sweep = next(x for x in discussion.conclusions(ctx) if x.startswith("**Sweep, U-Net.**"))
        refl = next(p for p in discussion.reflections(ctx).split("\n\n") if p.startswith("**Sweep.**"))
        return sweep, refl

    worse, refl = lines(50)
    assert "U-Net beats U-Net (tuned) by" in worse and "The sweep's parameters make it worse" in worse
    assert worse.endswith("One run each: the seed noise is not in this interval.")
    assert "made U-Net worse beyond the noise of the validation set (one run each)." in refl
    better, refl = lines(90)
    assert "U-Net (tuned) beats U-Net by" in better and "The sweep's parameters help." in better
    assert "improved U-Net beyond the noise" in refl and "worse" not in refl
    same, refl = lines(70)
    assert "unresolved" in same and "not shown to help" in same
    assert refl.endswith("changed no model measurably: no difference to the default settings is resolved.")


def test_rankings_follow_what_each_comparison_compares():
    """The main U-Net's first seed scores 70 but its seeds average (70 + 50 + 50) / 3. A Swin2-JNet whose
    seeds all score 62 ranks above it, as the pooled difference of two seeded models says; a variant of
    seed 0 at 62 ranks below it, as its difference to the run of its own seed (70) says."""
    ctx = context(arch_seeds={"unet": [70, 50, 50], "swin": [62, 62, 62]}, augment=62, replace=40)
    mean = np.mean([miou_from_matrix(matrices(h).sum(0)) for h in (70, 50, 50)])
    variant, seed0 = miou_from_matrix(matrices(62).sum(0)), miou_from_matrix(matrices(70).sum(0))
    assert variant > mean and evidence.comparison(ctx, "augment_augment_vs_none").diff.difference < 0
    text = training_section.augmentation_text(ctx)
    assert (f"Ranked by full-resolution mIoU: `none` ({100 * seed0:.1f}%) > `augment` ({100 * variant:.1f}%) > "
            "`replace`") in text
    ranking = next(x for x in discussion.conclusions(ctx) if x.startswith("**Ranking.**"))
    first = evidence.interval_text(ctx, "unet")
    assert "a model trained with several seeds by their mean" in ranking
    assert f"Swin2-JNet {100 * variant:.1f}% as the mean of 3 seeds" in ranking
    assert f"; U-Net {100 * mean:.1f}% as the mean of 3 seeds, its first seed {first};" in ranking
    assert ranking.index(": Swin2-JNet ") < ranking.index("; U-Net ")
    # the tuned U-Net (one run of seed 0) is not ranked against the means: judged against its base's seed 0
    assert "U-Net (tuned)" not in ranking.split(". Which")[0]
    assert ranking.endswith("U-Net (tuned) " + evidence.interval_text(ctx, ctx.main_runs["U-Net (tuned)"])
                            + " ran once, with seed 0: a single run is judged against its base model's run of the "
                            "same seed (Sweep, below), not ranked against a mean of seeds.")
    # one run per model: the plain scores, no mention of seed means
    single = next(x for x in discussion.conclusions(context()) if x.startswith("**Ranking.**"))
    assert "as the mean of" not in single and "several seeds" not in single
    assert "`none` (" in training_section.augmentation_text(context())
    assert "mean of" not in training_section.augmentation_text(context())


def test_table_cells_carry_the_same_interval_as_the_text():
    """A table's "% [95% CI]" cell holds the run's score and interval, as the prose states them."""
    ctx = context(augment=62, replace=40)
    iv = evidence.interval(ctx, "unet")
    cell = cells.interval_cell(ctx, "unet")
    assert cell == f"{100 * iv.value:.1f} ({100 * iv.low:.1f}-{100 * iv.high:.1f})"
    assert evidence.interval_text(ctx, "unet") == cell.replace(" (", "% (95% CI ")
    table = training_section.augmentation_table(ctx)
    assert table["val mIoU full res % [95% CI]"].iloc[0] == cell
    # a model that learnt almost nothing: 0.04% in the sentence is 0.04 in Table 10, not 0.0
    low = context(fcn=[1, 1] + [0] * (N_IMAGES - 2))
    text, cell = evidence.interval_text(low, "simple_fcn"), cells.interval_cell(low, "simple_fcn")
    assert text.startswith("0.04% (95% CI ") and text == cell.replace(" (", "% (95% CI ")
    table = results_section.results_table(low)
    assert table[table["model"] == "SimpleFCN"].iloc[0]["val mIoU full res, official % [95% CI]"] == cell


def _timed(fcn: list[float], unet: list[float], swin: list[float], large: list[float] | None = None) -> ReportContext:
    """The default context with per-epoch images/s on the three main runs (and a larger-size U-Net:
    the main one trains at 36x72)."""
    ctx = context()
    lab = Lab()
    lab.runs = ctx.runs
    lab.run("simple_fcn", matrices(50), "simple_fcn", speeds=fcn)
    lab.run("unet", matrices(70), speeds=unet, image_size=(36, 72))
    lab.run("swin2_jnet", matrices(80), "swin2_jnet", speeds=swin, model_options={"dropout": 0.1, "pretrained": False})
    if large is not None:
        lab.run("unet_72x144", matrices(70), speeds=large, image_size=(72, 144))
        ctx.unet.resolution_run = "unet_72x144"
    return ctx


def test_cost_words_follow_the_speed_ratio_and_its_interval_over_epochs():
    """SimpleFCN at ~100 images/s against Swin2-JNet at ~50: a resolved 2x with an interval around it;
    speeds whose epochs overlap (load noise larger than the models' difference) are not separated."""
    from cityseg_lib.report import architecture_section, cost, variants_section

    steady = [100.0, 98.0, 102.0, 101.0, 99.0]
    ctx = _timed(fcn=steady, unet=[70.0, 71.0, 69.0, 70.5, 69.5], swin=[50.0, 49.0, 51.0, 50.5, 49.5])
    r = cost.speed_ratio(ctx, "simple_fcn", "swin2_jnet")
    assert r.ratio == 2.0 and r.low <= 2.0 <= r.high and 1.9 < r.low and r.high < 2.1 and r.resolved
    line = next(x for x in discussion.conclusions(ctx) if x.startswith("**Cost.**"))
    assert line.startswith(f"**Cost.** As the runs recorded it while training, SimpleFCN trained {cost.ratio_text(r)} "
                           "as fast as Swin2-JNet, a ratio that carries what else the machine ran then")
    table = architecture_section.model_table(ctx)
    low, high = cost.speed_interval(ctx, "simple_fcn")
    assert list(table["images/s 95% CI"])[0] == f"{low:.1f}-{high:.1f}" and low <= 100.0 <= high
    noisy = _timed(fcn=[100.0, 60.0, 140.0, 70.0, 130.0], unet=[90.0, 60.0, 120.0, 80.0, 110.0],
                   swin=[95.0, 65.0, 125.0, 75.0, 115.0])
    r = cost.speed_ratio(noisy, "simple_fcn", "swin2_jnet")
    assert not r.resolved and r.low < 1 < r.high
    line = next(x for x in discussion.conclusions(noisy) if x.startswith("**Cost.**"))
    assert "does not separate the architectures' training speeds" in line and " as fast as " not in line
    # without per-epoch timings: the medians only, and no claim
    bare = next(x for x in discussion.conclusions(context()) if x.startswith("**Cost.**"))
    assert "without per-epoch timings" in bare and "faster" not in bare and "as fast as" not in bare
    # the training-size experiment: time per image at the larger size, with its interval
    big = _timed(fcn=steady, unet=[80.0, 81.0, 79.0, 80.5, 79.5], swin=steady, large=[40.0, 40.5, 39.5, 40.2, 39.8])
    text = variants_section.resolution_text(big)
    r = cost.speed_ratio(big, "unet", "unet_72x144")
    assert r.resolved and (f"As the runs recorded it (with whatever else the machine ran then), training at 72x144 "
                           f"(HxW) took {cost.ratio_text(r)} as long per image.") in text
    low, high = cost.speed_interval(big, "unet_72x144")
    assert list(variants_section.resolution_table(big)["train images/s [95% CI]"]) == [
        f"80.0 ({cost.interval_or_dash(big, 'unet')})", f"40.0 ({low:.1f}-{high:.1f})"]
    same = _timed(fcn=steady, unet=[80.0, 60.0, 100.0, 70.0, 90.0], swin=steady, large=[78.0, 62.0, 98.0, 72.0, 88.0])
    assert "was not measurably slower per image" in variants_section.resolution_text(same)


def _lowest_val_loss(ctx: ReportContext, run: str, value: float) -> None:
    m = ctx.runs.metrics(run)
    m["val_loss"] = [value + 0.1 * (len(m) - 1 - i) for i in range(len(m))]  # falling to ``value`` at the end


def test_a_variants_validation_loss_is_judged_against_the_seeds_of_the_main_configuration():
    """The constant-rate run's lowest validation loss inside, below or above the range of the main
    U-Net's three seeds; with one seed there is no yardstick, and the sentence says so."""
    ctx = context(arch_seeds={"unet": [70, 70, 70], "swin": [80, 80, 80]})
    for run, v in (("unet", 0.76), ("unet_seed1", 0.80), ("unet_seed2", 0.78)):
        _lowest_val_loss(ctx, run, v)
    for v, words in ((0.77, "within the spread of the step schedule (3 seeds: 0.7600 to 0.8000), so the seeds' own "
                           "variation covers this difference."),
                     (0.70, "below every seed of the step schedule (3 seeds: 0.7600 to 0.8000; one run of the "
                           "constant learning rate, whose own seed noise is not in this comparison)."),
                     (0.90, "above every seed of the step schedule")):
        _lowest_val_loss(ctx, "unet_constant_lr", v)
        text = training_section.scheduler_text(ctx)
        assert f"Lowest validation loss: {v:.4f} for the constant learning rate, {words}" in text
        assert "reached the lower validation loss" not in text
    one = context()
    _lowest_val_loss(one, "unet_constant_lr", 0.70)
    assert "(one run each: no spread over seeds to judge this difference by)" in training_section.scheduler_text(one)
    # the dropout section judges the run without dropout by the seeds of the model with it
    for run, v in (("swin2_jnet", 0.89), ("swin2_jnet_seed1", 0.91), ("swin2_jnet_seed2", 0.90)):
        _lowest_val_loss(ctx, run, v)
    _lowest_val_loss(ctx, "swin2_jnet_no_dropout", 0.87)
    text = results_section.dropout_text(ctx)
    assert ("Lowest validation loss: 0.8700 for the model without it, below every seed of the model with dropout "
            "(3 seeds: 0.8900 to 0.9100;") in text and "in direction" not in text


def test_learning_counts_a_model_only_when_its_whole_interval_clears_twice_the_floor(monkeypatch):
    from dataclasses import replace

    ctx = context()
    _, floor = discussion.majority_baseline(discussion.val_class_pixels(ctx))
    line = next(x for x in discussion.conclusions(ctx) if x.startswith("**Learning.**"))
    assert line.startswith("**Learning.** 4 of 4 models score more than twice") and line.endswith("interval.")
    real = discussion.interval

    def straddling(c, run):  # SimpleFCN's score clears the bar, the low end of its interval does not
        iv = real(c, run)
        return replace(iv, low=2 * floor - 1e-4) if run == "simple_fcn" else iv

    monkeypatch.setattr(discussion, "interval", straddling)
    assert discussion.full_or_train(ctx.main["SimpleFCN"]) > 2 * floor
    line = next(x for x in discussion.conclusions(context()) if x.startswith("**Learning.**"))
    assert "3 of 4 models" in line and line.endswith("; SimpleFCN is not shown to.")
    refl = discussion.reflections(context())
    assert "SimpleFCN is not shown to get past twice the constant-prediction floor with this budget." in refl
    monkeypatch.undo()
    assert "each scores more than twice the constant-prediction floor, even at the low end of its 95% interval." in (
        discussion.reflections(context()))


def _optimizers(adam, adamax) -> ReportContext:
    """The U-Net with 3 seeds at 70 hits (AdamW) and one run each with Adam and Adamax."""
    ctx = context(arch_seeds={"unet": [70, 70, 70]})
    lab = Lab()
    lab.runs = ctx.runs
    ctx.unet.optimizer_runs = {"adamw": ctx.unet.main_run,
                               "adam": lab.run("unet_opt_adam", matrices(adam), optimizer="adam"),
                               "adamax": lab.run("unet_opt_adamax", matrices(adamax), optimizer="adamax")}
    return ctx


def test_the_reference_optimiser_claim_is_judged_by_both_differences():
    """'AdamW beats Adam and Adamax' is supported only when both differences are resolved in AdamW's
    favour, contradicted when either goes the other way, and neither when they are unresolved."""
    from cityseg_lib.report import variants_section

    both = _optimizers(adam=50, adamax=55)
    assert variants_section.optimizer_claim(both) == (
        "This build supports the reference's claim: AdamW beats Adam and Adamax beyond the sampling noise.")
    line = next(x for x in discussion.conclusions(both) if x.startswith("**Optimiser.**"))
    assert "This build supports the reference's claim" in line and line.count("**Optimiser.**") == 1
    table = variants_section.optimizer_table(both)
    column = "vs AdamW, seed 0 (points)"
    assert list(table["run"]) == ["AdamW", "Adam", "Adamax"] and list(table["finding"]) == ["–", "yes", "yes"]
    adam = evidence.comparison(both, "optimizer_adamw_vs_adam").diff  # AdamW - Adam; the table shows Adam - AdamW
    assert table[column].iloc[0] == "–"
    assert table[column].iloc[1] == (f"{-100 * adam.difference:+.1f} ({-100 * adam.high:+.1f} to "
                                     f"{-100 * adam.low:+.1f})").replace("-", "−")
    assert table[column].iloc[1].startswith("−")
    against = _optimizers(adam=90, adamax=55)
    claim = variants_section.optimizer_claim(against)
    assert claim.startswith("This build contradicts the reference's claim: Adam beats AdamW") and "beats Adamax" in claim
    part = _optimizers(adam=one_image_better(70, 90), adamax=55)
    assert variants_section.optimizer_claim(part) == (
        "This build supports the reference's claim only in part: AdamW beats Adamax beyond the sampling noise, "
        "but its difference to Adam is unresolved.")
    neither = _optimizers(adam=one_image_better(70, 90), adamax=one_image_better(70, 95))
    assert variants_section.optimizer_claim(neither).startswith("Neither difference is resolved, so this build "
                                                                "neither supports nor contradicts")
    assert "neither supports nor contradicts" in variants_section.optimizer_text(neither)
    assert list(variants_section.optimizer_table(neither)["finding"]) == ["–", "unresolved", "unresolved"]


def test_the_training_size_claim_follows_the_paired_difference():
    """'almost identical': contradicted only by a resolved difference, and the table shows it."""
    from cityseg_lib.report import variants_section

    def sized(hits):
        ctx = context(arch_seeds={"unet": [70, 70, 70]})
        for run in ctx.seed_runs("U-Net"):  # the main U-Net (each seed) at 36x72
            ctx.runs.configs[run] = dataclasses.replace(ctx.runs.configs[run], image_size=(36, 72))
        lab = Lab()
        lab.runs = ctx.runs
        ctx.unet.resolution_run = lab.run("unet_72x144", matrices(hits), image_size=(72, 144))
        return ctx

    higher = sized(90)
    text = variants_section.resolution_text(higher)
    assert ("So at this scale the larger training size (72x144) scores measurably higher than the smaller one "
            "(36x72), where the reference found") in text
    line = next(x for x in discussion.conclusions(higher) if x.startswith("**Training resolution.**"))
    assert "scores measurably higher" in line
    table = variants_section.resolution_table(higher)
    assert list(table["finding"]) == ["–", "yes"]
    assert table["vs 36x72, seed 0 (points)"].iloc[1].startswith("+")
    lower = variants_section.resolution_text(sized(50))
    assert "the smaller training size (36x72) scores measurably higher than the larger one (72x144)" in lower
    same = sized(one_image_better(70, 90))
    assert "consistent with the reference's 'almost identical'" in variants_section.resolution_text(same)
    assert list(variants_section.resolution_table(same)["finding"]) == ["–", "unresolved"]


def test_confusion_text_names_every_class_tied_at_zero_recall_and_their_size():
    """Eleven classes with no pixel recovered: all are named (not three picked by index), with their
    share of the pixels against the average class's, computed from the matrix."""
    ctx = context()
    label = results_section.best_model(ctx)
    mat = np.zeros((C, C + 1))
    big, small = list(range(8)), list(range(8, C))  # 8 large classes mostly right; 11 small ones never found
    for c in big:
        mat[c, c], mat[c, (c + 1) % 8] = 900, 100
    for c in small:
        mat[c, 0] = 10
    ctx.runs.summaries[ctx.main_runs[label]]["confusion_matrix"] = mat.tolist()
    text = results_section.confusion_text(ctx)
    names = [CLASS_NAMES[c] for c in small]
    assert "it recovers less than 0.05% of the pixels of 11 classes: " + ", ".join(names[:-1]) in text
    share, mean = 10 / (8 * 1000 + 11 * 10), 1 / C
    assert f"These hold {100 * share:.2f}% of the labelled validation pixels per class, against {100 * mean:.2f}%" in text
    assert "the errors fall on the small classes" in text
    # every class partly recovered: the three lowest recalls, and they are not the small ones here
    for c in small:
        mat[c, 0], mat[c, c] = 0, 5000 + 10 * c
        mat[c, (c + 1) % C] = 5000
    for c in big:  # the 8 large classes now recovered worst (10%)
        mat[c, c], mat[c, (c + 1) % 8] = 10_000, 90_000
    ctx.runs.summaries[ctx.main_runs[label]]["confusion_matrix"] = mat.tolist()
    text = results_section.confusion_text(ctx)
    assert f"the classes it recovers least are {CLASS_NAMES[0]}, {CLASS_NAMES[1]} and {CLASS_NAMES[2]}." in text
    assert "the errors are not confined to the small classes" in text


def test_the_synthetic_caveat_states_this_builds_budget_and_encoder():
    """The caveat names the build's own device and minutes per run, and mentions the untrained Swin V2
    encoder only when the build's Swin2-JNet had no pretrained weights; it claims nothing about
    Cityscapes scores the build never measured."""
    from cityseg_lib.report.format import count

    ctx = context()
    text = discussion.reflections(ctx).split("\n\n")[0]
    assert text.startswith("**What these numbers can and cannot say.** The data is synthetic and the budget small, "
                           "a median 1.0 minutes of training per run on CPU (2 cores), so the absolute scores")
    assert (f"runs its Swin V2 encoder from random weights ({count(1e6)} parameters in all), without the pretraining"
            in text)
    assert "far below" not in text and "a couple of CPU cores" not in text
    ctx.runs.configs[ctx.swin.main_run] = TrainConfig(name="swin2_jnet", profile="test", model="swin2_jnet",
                                                      model_options={"dropout": 0.1, "weights": "/w/swin.safetensors"})
    assert "random weights" not in discussion.reflections(ctx).split("\n\n")[0]


def test_per_class_figure_draws_each_bar_with_its_interval():
    """Figure 8: full-resolution per-class IoU of every main model with 95% bootstrap error bars from
    the per-image matrices (the same values as Table 11)."""
    import matplotlib

    matplotlib.use("Agg")
    ctx = context()
    fig, caption = results_section.fig_per_class(ctx, 8)
    assert "each bar with its 95% bootstrap interval" in caption.data
    ax = fig.axes[0]
    assert "95% bootstrap intervals" in ax.get_title()
    bars = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    assert len(bars) == len(ctx.main_runs) and all(c.errorbar is not None for c in bars)
    from cityseg_lib.evaluate.uncertainty import class_iou_intervals

    value = class_iou_intervals(ctx.runs.per_image(ctx.main_runs["U-Net"]), n_boot=ctx.n_boot)[0]
    heights = [b.get_height() for b in bars[list(ctx.main_runs).index("U-Net")]]
    np.testing.assert_allclose(np.nan_to_num(heights), np.nan_to_num(100 * value))


def test_speeds_measured_side_by_side_decide_the_cost_words():
    """With a side-by-side timing in the context (rounds pair the models), Table 4 gains its column
    and the cost sentences use it, called a difference only when the paired interval excludes 1."""
    from cityseg_lib.report import architecture_section, cost, variants_section

    ctx = _timed(fcn=[100.0] * 5, unet=[70.0] * 5, swin=[50.0] * 5, large=[40.0] * 5)
    rounds = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 1.0])  # load drift shared by the models of a round
    times = {"SimpleFCN": 0.010 * rounds, "U-Net": 0.020 * rounds * np.array([1, 1.01, 0.99, 1, 1.02, 0.98]),
             "Swin2-JNet": 0.0105 * rounds[::-1], cost.RESOLUTION_UNET: 0.045 * rounds}
    ctx._memo[("side_by_side",)] = {"times": times, "rounds": 6, "steps": 3, "device": "CPU"}
    line = next(x for x in discussion.conclusions(ctx) if x.startswith("**Cost.**"))
    r = cost.side_by_side_ratio(ctx, "U-Net", "SimpleFCN")
    assert r.resolved and r.over == "the rounds" and 1.9 < r.low <= r.ratio <= r.high < 2.1
    assert line.startswith("**Cost.** Measured side by side (6 rounds of 3 training steps of each model in turn, on "
                           f"CPU), SimpleFCN trains {cost.ratio_text(r)} as fast as U-Net (median images/s SimpleFCN")
    table = architecture_section.model_table(ctx)
    assert list(table["images/s side by side [95% CI]"])[0].startswith("100.0 (")
    assert "compared by a second timing, measured side by side" in architecture_section.model_table_note(ctx)
    text = variants_section.resolution_text(ctx)
    big = cost.side_by_side_ratio(ctx, cost.RESOLUTION_UNET, "U-Net")
    assert f"Measured side by side (6 rounds of 3 training steps of each model in turn, on CPU), training at 72x144 " \
           f"(HxW) took {cost.ratio_text(big)} as long per image." in text
    # two models whose rounds overlap: not separated
    times["Swin2-JNet"] = 0.010 * rounds * np.array([1.2, 0.8, 1.25, 0.85, 1.1, 0.9])
    times["U-Net"] = 0.0101 * rounds * np.array([0.8, 1.2, 0.9, 1.2, 0.85, 1.1])
    line = next(x for x in discussion.conclusions(ctx) if x.startswith("**Cost.**"))
    assert "the architectures' training speeds are not separated" in line and " trains " not in line


def test_no_side_by_side_timing_without_rounds_or_off_the_runs_device():
    """speed_rounds 0 measures nothing, and neither does a machine without a GPU for runs that
    trained on one (a CPU timing would not say how they train); the words then fall back."""
    from cityseg_lib.report import cost

    ctx = context()
    assert cost.measure_step_speeds(ctx, 0) is None and cost.side_by_side(ctx) is None
    for run in ctx.main_runs.values():
        ctx.runs.records[run]["device"] = "cuda:0"
    if not torch_cuda_available():
        assert cost.measure_step_speeds(ctx, 10) is None and cost.side_by_side(ctx) is None
    line = next(x for x in discussion.conclusions(ctx) if x.startswith("**Cost.**"))
    assert "Measured side by side" not in line


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _scored_twice(ctx: ReportContext, full_hits: dict[str, float | list[float]]) -> ReportContext:
    """Each main run scored at the training size with 70 hits per 100 pixels and at full resolution
    with ``full_hits[label]`` (70 where not given), as the two per-image files of a run hold them."""
    train = matrices(70)
    for label, run in ctx.main_runs.items():
        full = matrices(full_hits.get(label, 70))
        ctx.runs.scoring_pairs[run] = (train, full)
        ctx.runs.per_images[run] = full
        record = ctx.runs.records[run]
        record["miou"], record["miou_full_res"] = miou_from_matrix(train.sum(0)), miou_from_matrix(full.sum(0))
    return ctx


def _scoring_line(ctx: ReportContext) -> str:
    return next(x for x in discussion.conclusions(ctx) if x.startswith("**Scoring resolution.**"))


def test_scoring_resolution_is_a_paired_difference_per_model():
    """Full resolution against the training size, per model, with the paired interval over the same
    frames: named as a change only where the interval excludes zero, in the direction it shows."""
    same = _scoring_line(_scored_twice(context(), {"U-Net": [70] * (N_IMAGES - 1) + [60]}))
    assert "Per model, in points with the paired 95% interval" in same
    assert "U-Net −" in same and "SimpleFCN +0.0 (+0.0 to +0.0)" in same
    assert "No interval excludes zero" in same and "measurably" not in same

    lower = _scoring_line(_scored_twice(context(), {"U-Net": 60}))
    assert "changes mIoU by −" in lower and " on average. Per model, in points with the paired 95% interval" in lower
    assert "U-Net scores measurably lower at full resolution, by " in lower
    assert "as expected if up-sampled logits cannot restore the detail lost by down-scaling" in lower and "No interval excludes zero" not in lower

    both = _scoring_line(_scored_twice(context(), {"U-Net": 60, "SimpleFCN": 80, "Swin2-JNet": 80}))
    assert "U-Net scores measurably lower" in both
    assert "SimpleFCN and Swin2-JNet score measurably higher at full resolution" in both


def test_results_table_gives_the_training_size_score_its_interval():
    ctx = _scored_twice(context(), {"U-Net": 60})
    row = results_section.results_table(ctx).set_index("model").loc["U-Net"]
    cell = row[next(c for c in row.index if c.startswith("val mIoU @"))]
    value, low, high = (float(x) for x in cell.replace("(", "").replace(")", "").replace("-", " ").split())
    # (the percentile interval of these few hand-made images need not straddle the score itself)
    assert low < high and value == round(100 * ctx.main["U-Net"]["miou"], 1)
    assert row["val mIoU full res, official % [95% CI]"].startswith(f"{100 * ctx.main['U-Net']['miou_full_res']:.1f} (")


def test_scoring_resolution_without_training_size_matrices_gives_no_interval():
    """Runs trained before the training-size per-image matrices were kept: the averaged difference,
    without a per-model interval."""
    line = _scoring_line(context())
    assert "by less than 0.05 points for every model. These runs kept no per-image matrices at the training " in line
    assert "this build draws no conclusion from it." in line
    assert "95% interval" not in line and "recover" not in line and "cannot restore" not in line


def test_a_narrow_speed_interval_never_reads_as_one_value():
    from cityseg_lib.report.cost import SpeedRatio, ratio_text

    assert ratio_text(SpeedRatio(1.8, 1.7, 1.9, 5, 5)) == "1.8x (95% CI 1.7-1.9x over the runs' epochs)"
    assert ratio_text(SpeedRatio(1.62, 1.601, 1.639, 10, 10, "the rounds")) == "1.62x (95% CI 1.60-1.64x over the rounds)"


def with_seed_curves(ctx: ReportContext, losses: dict[str, list[float]]) -> ReportContext:
    """``ctx`` with the validation-loss curves of some seed runs (by run name) replaced."""
    for run, values in losses.items():
        ctx.runs.metric_frames[run]["val_loss"] = values
    return ctx


EARLIER = [2.0, 1.8, 1.6, 1.5, 1.6]  # the best epoch came before the last: no gain


def seeded(curves: dict[str, list[float]], **kw) -> ReportContext:
    """A fresh context (its gains are computed once) whose U-Net has 3 seeds and SimpleFCN 2, every main
    run's curve flat, and the seed runs' curves from ``curves`` (by run name)."""
    main_flat = {k: FLAT for k in ("SimpleFCN", "U-Net", "Swin2-JNet", "U-Net (tuned)")}
    ctx = with_last_epochs(context(arch_seeds={"unet": [70, 70, 70], "fcn": [50, 50]}, **kw), main_flat)
    return with_seed_curves(ctx, curves)


def test_repeated_seeds_are_judged_like_the_main_runs():
    # no model repeated: no sentence, no column, each headline entry holds its one run
    ctx = with_last_epochs(context(), {k: FLAT for k in ("SimpleFCN", "U-Net", "Swin2-JNet", "U-Net (tuned)")})
    assert training_section.seeds_length(ctx) == ""
    assert "other seeds' last-epoch gain (%)" not in training_section.early_stopping_table(ctx)
    assert headline_json.headline(ctx)["models"]["unet"]["seeds_flattened"] is True
    # every other seed flat: said with the largest gain, in Section 4.4 and in the reflections
    flat = {"unet_seed1": FLAT, "unet_seed2": [2.0, 1.8, 1.6, 1.5, 1.49], "simple_fcn_seed1": FLAT}
    ctx = seeded(flat)
    stop = training_section.early_stopping_text(ctx)
    assert ("The other seeds of SimpleFCN and U-Net had flattened too: none of their last epochs lowered the "
            "validation loss by more than 0.7% (the table's column of other seeds).") in stop
    assert "Of the repeated seeds" not in stop and "mid-descent" not in stop
    assert discussion.training_length(ctx).endswith("none of their last epochs lowered the validation loss by "
                                                    "more than 0.7%.")
    table = training_section.early_stopping_table(ctx).set_index("model")["other seeds' last-epoch gain (%)"]
    assert table["U-Net"] == "0.3 / 0.7" and table["SimpleFCN"] == "0.3" and table["Swin2-JNet"] == "–"
    models = headline_json.headline(ctx)["models"]
    assert models["unet"]["seeds_flattened"] is True and len(models["unet"]["seed_last_epoch_gain"]) == 3
    # one seed still descending: named with its gain, although every main run had flattened
    ctx = seeded({**flat, "unet_seed2": DESCENDING})
    text = ("Of the repeated seeds, U-Net seed 2 (6.7%) still lowered the validation loss by more than 1% in its "
            "last epoch{}: it stopped mid-descent, so the seed spread of U-Net also reflects the schedule's length.")
    assert text.format(" (the table's column of other seeds)") in training_section.early_stopping_text(ctx)
    assert discussion.training_length(ctx).endswith(text.format(""))
    models = headline_json.headline(ctx)["models"]
    assert models["unet"]["seeds_flattened"] is False and models["unet"]["flattened"] is True
    assert models["unet"]["seed_last_epoch_gain"][2] > 0.06 and models["simple_fcn"]["seeds_flattened"] is True
    # seeds whose best epoch came earlier gained nothing in their last epoch, and it is said so
    ctx = seeded({"unet_seed1": EARLIER, "unet_seed2": EARLIER, "simple_fcn_seed1": EARLIER})
    assert ("none of their last epochs lowered the validation loss below the best epoch before it"
            in training_section.seeds_length(ctx))
    # no headline run ended on its best epoch: the reflections still judge the seeds
    ctx = seeded({**flat, "unet_seed1": DESCENDING})
    for rec in ctx.main.values():
        rec["best_epoch"] = 4
    assert discussion.training_length(ctx).startswith("Of the repeated seeds, U-Net seed 1 (6.7%) still lowered")


def test_the_peak_memory_note_says_what_the_runs_measured():
    """Runs that counted their own peak (this version) are described so; runs whose record is the
    process's since it began (older runs, or a system without the reset) keep the upper-bound words."""
    from cityseg_lib.report import architecture_section

    older = architecture_section.model_table_note(context())
    assert "maximum resident set size, which includes the Python interpreter, the data cache and earlier runs " \
           "in the same process; it is an upper bound" in older
    ctx = context()
    for rec in ctx.runs.records.values():
        rec["peak_memory_scope"] = "run"
    note = architecture_section.model_table_note(ctx)
    assert "largest resident set size during the run, which includes the Python interpreter and the data cache; " \
           "it is an upper bound" in note and "earlier runs" not in note


def two_recipe_context(ablation_unet=(60, 62, 58), variant=55, tuned=61) -> ReportContext:
    """The demo's shape: main runs of 8 epochs at 64x128 (U-Net seeds 70 / 72 / 68), and the ablation
    recipe (5 epochs at 48x96): the U-Net reference ``unet_ablation`` with three seeds scoring
    ``ablation_unet``, the Swin2-JNet reference, and every variant trained like them."""
    ctx = context(arch_seeds={"fcn": [50, 52, 48], "unet": [70, 72, 68], "swin": [80, 79, 81]}, tuned=tuned,
                  constant=variant, replace=variant, augment=variant, nodrop=variant, nobn=variant)
    lab = Lab()
    lab.runs = ctx.runs
    for name in ("simple_fcn", "unet", "swin2_jnet"):
        for run in [name] + [f"{name}_seed{s}" for s in (1, 2)]:
            ctx.runs.configs[run] = dataclasses.replace(ctx.runs.configs[run], image_size=(64, 128), epochs=8)
    ablation = [lab.run("unet_ablation", matrices(ablation_unet[0]), image_size=(48, 96))] + [
        lab.run(f"unet_ablation_seed{s}", matrices(h), seed=s, image_size=(48, 96)) for s, h in enumerate(ablation_unet) if s]
    swin = [lab.run("swin2_jnet_ablation", matrices(76), "swin2_jnet", model_options={"dropout": 0.1},
                    image_size=(48, 96))] + [
        lab.run(f"swin2_jnet_ablation_seed{s}", matrices(76), "swin2_jnet", seed=s, model_options={"dropout": 0.1},
                image_size=(48, 96)) for s in (1, 2)]
    ctx.unet.ablation_runs, ctx.swin.ablation_runs = ablation, swin
    ctx.unet.augment_runs = {**ctx.unet.augment_runs, "none": ablation[0]}
    return ctx


def test_with_two_recipes_every_ablation_is_compared_with_its_own_recipes_runs():
    """The demo trains its main runs longer than its ablations (params/demo/main.yaml): a variant or a
    tuned model must be compared with the architecture trained like it (the ablation reference, with its
    seeds), never with the longer main runs it would trail by construction; the architectures are compared
    with each other's main runs."""
    ctx = two_recipe_context()
    assert ctx.two_recipes and not context().two_recipes
    assert ctx.reference("U-Net") == "unet_ablation" and ctx.reference("SimpleFCN") == "simple_fcn"
    for key in ("unet_tuned_vs_unet", "augment_replace_vs_none", "steplr_vs_constant_lr"):
        c = evidence.comparison(ctx, key)
        assert c.diff.matched_seed == 0 and len(c.diff.seed_differences) == 3, key
        alone = compare_groups([matrices(55 if key != "unet_tuned_vs_unet" else 61)], [matrices(60)], n_boot=ctx.n_boot)
        sign = -1 if key == "steplr_vs_constant_lr" else 1  # StepLR minus the constant rate
        assert math.isclose(c.diff.difference, sign * alone.difference), key
    tuned = evidence.comparison(ctx, "unet_tuned_vs_unet")  # 61 against 60 / 62 / 58: within the seeds, unresolved
    assert tuned.diff.difference > 0 and not tuned.resolved
    assert tuned.sentence().startswith("U-Net (tuned) vs U-Net (ablation recipe): ")
    # against the main runs (70 / 72 / 68) the tuned model would have been "worse", resolved: the wrong question
    drop = evidence.comparison(ctx, "dropout_vs_no_dropout")
    assert math.isclose(drop.diff.difference, compare_groups([matrices(76)], [matrices(55)], n_boot=ctx.n_boot).difference)
    arch = evidence.comparison(ctx, "unet_vs_simple_fcn")
    assert (arch.diff.n_seeds_a, arch.diff.n_seeds_b) == (3, 3) and arch.diff.difference > 0.15
    intro = front.introduction(ctx)
    assert "It trains with two recipes." in intro and "8 epochs at 64x128 (HxW)" in intro
    assert "5 epochs at 48x96 (HxW)" in intro and "never with a main run" in intro
    assert "two recipes" not in front.introduction(context()) and "smaller than the main one" not in intro
    ctx.runs.configs["unet_ablation"] = dataclasses.replace(ctx.runs.configs["unet_ablation"],
                                                            model_options={"base_width": 8})
    ctx.runs.configs["unet"] = dataclasses.replace(ctx.runs.configs["unet"], model_options={"base_width": 16})
    assert "The U-Net of the ablations is smaller than the main one (base width 8 instead of 16)." in front.introduction(ctx)
    sched = training_section.scheduler_table(ctx)
    assert list(sched["val mIoU full res % [95% CI]"])[0] == cells.interval_cell(ctx, "unet_ablation")
    assert "the ablations' 5" in training_section.scheduler_text(ctx)
    table = results_section.results_table(ctx).set_index("model")
    assert (table.loc["U-Net", "recipe"], table.loc["U-Net (tuned)", "recipe"]) == ("main", "ablation")
    assert "val mIoU at the training size % [95% CI]" in table.columns
    assert "recipe" not in results_section.results_table(context()).columns
    assert list(results_section.dropout_table(ctx)["variant"])[0] == "dropout 0.1, BatchNorm"
    assert "the ablation reference" in " ".join(results_section.dropout_table(ctx).columns)
