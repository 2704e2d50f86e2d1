"""The inference modes of the field on the best model: whole image, flip TTA, sliding window.

Published Cityscapes numbers are taken with sliding-window inference at 2048x1024, often with
flip (or multi-scale) test-time augmentation. This section scores the report's best model under
each mode, at full resolution (official protocol), each with its bootstrap interval and its
paired difference to the plain whole-image forward, and what each costs per image: every mode,
``whole`` included, predicts the original frames one at a time on the same input path, and each
frame's prediction is timed, so the seconds per image carry a bootstrap interval over the frames
and each mode's cost is a paired ratio to ``whole`` (:func:`cityseg_lib.report.cost.paired_ratio`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cityseg_lib.evaluate.modes import InferenceMode
from cityseg_lib.evaluate.score import evaluate_run, mode_train_size
from cityseg_lib.evaluate.uncertainty import bootstrap_ci, paired_difference
from cityseg_lib.evaluate.wording import verdict
from cityseg_lib.report.context import ReportContext
from cityseg_lib.report.cost import median_interval, paired_ratio, ratio_text, ratio_value
from cityseg_lib.report.cells import difference_cell
from cityseg_lib.report.evidence import _memo

__all__ = ["MODES", "inference_results", "inference_table", "inference_text", "cost_sentence"]

#: The modes compared, by table label. ``whole`` too goes through the mode path (each original frame
#: resized in float, one at a time), not the batched validation on the training-size cache, so
#: that the modes differ only in the mode, in their scores and in their timings.
MODES = {"whole": InferenceMode(), "whole + flip": InferenceMode(flip=True), "slide": InferenceMode("slide"),
         "slide + flip": InferenceMode("slide", flip=True)}


def inference_results(ctx: ReportContext, label: str, images: int = 0) -> dict[str, dict]:
    """``{mode: evaluate_run result}`` of the main model ``label`` under every mode in :data:`MODES`,
    on the first ``images`` validation frames (0: all; sliding windows cost tens of forward passes
    a frame, so a CPU build may score the modes on fewer frames than the rest of the report)."""
    run = ctx.main_runs[label]

    def make():
        return {name: evaluate_run(run, full_res=True, mode=mode, data_root=str(ctx.data_root), images=images)
                for name, mode in MODES.items()}

    return _memo(ctx, ("inference", run, images), make)


def _ms(seconds: float) -> str:
    """Milliseconds to 3 significant digits, without an exponent: 38.1, 329, 1010."""
    ms = 1000 * seconds
    return f"{ms:.{max(0, 2 - math.floor(math.log10(ms)))}f}" if ms > 0 else "0"


def inference_table(ctx: ReportContext, label: str, images: int = 0) -> pd.DataFrame:
    """One row per mode: full-resolution mIoU with its 95% interval; the paired difference to
    ``whole`` with its interval; the median milliseconds per image on this build's device with its
    95% interval over the images, and the paired ratio of that median to ``whole``'s with its own."""
    results = inference_results(ctx, label, images)
    base = results["whole"]
    rows = []
    for name, r in results.items():
        iv = bootstrap_ci(r["per_image"], n_boot=ctx.n_boot)
        score = f"{100 * iv.value:.1f} ({100 * iv.low:.1f}-{100 * iv.high:.1f})"
        row = {"mode": name, "mIoU full res % (95% CI)": score,
               "vs whole, points (95% CI)": "–", "resolved": "–"}
        if name != "whole":
            d = paired_difference(r["per_image"], base["per_image"], n_boot=ctx.n_boot)
            row["vs whole, points (95% CI)"] = difference_cell(d)
            row["resolved"] = "yes" if d.resolved else "no"
        t = r["image_seconds"]
        ti = median_interval(t)
        row["ms / image (95% CI)"] = _ms(float(np.median(t))) + (f" ({_ms(ti[0])}-{_ms(ti[1])})" if ti else "")
        q = paired_ratio(t, base["image_seconds"])
        row["time / whole's (95% CI)"] = "1" if name == "whole" else (
            f"{ratio_value(q.ratio)} ({ratio_value(q.low)}-{ratio_value(q.high)})" if q else "–")
        rows.append(row)
    return pd.DataFrame(rows)


def cost_sentence(results: dict[str, dict]) -> str:
    """How long each mode takes per image against ``whole``: a paired ratio of medians with its
    interval, called slower (or faster) only when that interval excludes 1."""
    base = results["whole"]["image_seconds"]
    said, same = [], []
    for name, r in results.items():
        q = paired_ratio(r["image_seconds"], base) if name != "whole" else None
        if q is None:
            continue
        (said if q.resolved else same).append((name, q))
    parts = []
    if said:
        parts.append("Per image, " + ", ".join(f"{n} took {ratio_text(q)}" for n, q in said)
                     + " as long as the whole-image forward.")
    if same:
        parts.append(" ".join(f"{n} was not measurably slower than the whole-image forward: {ratio_text(q)} "
                              "as long." for n, q in same))
    return " ".join(parts)


def inference_text(ctx: ReportContext, label: str, images: int = 0) -> str:
    """What the modes change for ``label``, in sentences computed from the paired differences."""
    results = inference_results(ctx, label, images)
    base = results["whole"]["per_image"]
    cfg = ctx.runs.config(ctx.main_runs[label])
    h, w = mode_train_size(cfg, MODES["slide"])
    window = "the training crop" if getattr(cfg, "crop_size", None) else "the training size"
    diffs = {name: paired_difference(r["per_image"], base, n_boot=ctx.n_boot) for name, r in results.items()
             if name != "whole"}
    sentences = [verdict(d, f"{label} with {name}", f"{label} whole") for name, d in diffs.items()]
    slid = [d for name, d in diffs.items() if name.startswith("slide")]
    slide_helped = any(d.resolved and d.difference > 0 for d in slid)
    full = ctx.runs.per_image(ctx.main_runs[label])
    n_val = len(full) if full is not None else len(base)
    which = (f"the {len(base)} validation images" if len(base) >= n_val else
             f"the first {len(base)} of the {n_val} validation images (the `inference_images` parameter: sliding "
             "windows cost many forward passes a frame)")
    return (f"Every mode is scored under the official protocol on {which}, one original frame at a time; `whole` "
            "resizes the frame in floating point as the other modes do, where Table 10 reads the training-size "
            "cache in batches, so its score can differ from Table 10's. `slide` runs "
            f"{h}x{w} windows ({window}) at a stride of two thirds of a window (neighbours overlap by a "
            "third) over each image at its label's resolution, averaging the logits where windows overlap; `flip` "
            "adds the mirrored image. " + " ".join(sentences) + " " + cost_sentence(results) +
            (" Sliding windows did not score higher here; a likely reason is that a model trained on whole frames "
             "resized to the training size sees objects larger in the windows than it ever saw in training "
             "(sliding windows suit models trained on crops)."
             if slid and not slide_helped and not getattr(cfg, "crop_size", None) else ""))
