"""Training speed with its uncertainty: the numbers behind the report's cost statements.

A run measures its throughput once per epoch (``metrics.csv``, ``train_images_per_s``: training
images per second of that epoch). Table 4 gives the median over a run's epochs; this module adds
how far that median moves with the epochs drawn (a percentile bootstrap over them), and compares
two runs' speeds as the ratio of their medians with the same kind of interval, each side's epochs
resampled on their own. On a shared machine the load moves from epoch to epoch, often more than
the model changes the speed, so a ratio is called a difference only when its interval excludes 1.
The interval covers this build's timing noise, not how another machine would rank the models.

Those per-epoch speeds also carry what else the machine ran while each run trained (notebooks
train side by side): two runs' speeds compare their neighbours as much as their models. The
report's comparisons of speed therefore come from a timing made side by side in the report
notebook (:func:`measure_step_speeds`: every model stepped in turn, round after round), whose
rounds pair the models; the per-epoch speeds stay in the tables as what the runs met.

Inference is timed image by image (``image_seconds`` of an inference-mode evaluation): there the
items are the validation images, the same ones under every mode, so two modes' medians are
compared *paired* (one resample of image indices for both), and the shared per-image cost cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cityseg_lib.report.context import ReportContext

__all__ = ["N_BOOT", "SpeedRatio", "epoch_speeds", "speed_interval", "speed_ratio", "ratio_text", "interval_or_dash",
           "median_interval", "median_time_text", "paired_ratio", "ratio_value", "RESOLUTION_UNET",
           "measure_step_speeds",
           "side_by_side", "side_by_side_cell", "side_by_side_ratio", "side_by_side_how"]

N_BOOT = 2000
LEVEL = 0.95


def epoch_speeds(ctx: ReportContext, run: str) -> np.ndarray:
    """``(E,)`` training images per second of each epoch of ``run`` (finite, positive ones only);
    empty when its metrics do not record them."""
    m = ctx.runs.metrics(run)
    if "train_images_per_s" not in m:
        return np.zeros(0)
    v = np.asarray(m["train_images_per_s"], dtype=float)
    return v[np.isfinite(v) & (v > 0)]


def _medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(N_BOOT,)`` medians of resamples (with replacement) of ``values``."""
    return np.median(values[rng.integers(0, len(values), (N_BOOT, len(values)))], axis=1)


def _bounds(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(samples, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def median_interval(values, seed: int = 0) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of the median of ``values`` ``(N,)``; None when N < 2."""
    v = np.asarray(values, dtype=float)
    return _bounds(_medians(v, np.random.default_rng(seed))) if len(v) >= 2 else None


def median_time_text(seconds) -> str:
    """``"median 38.1 ms (95% CI 36.1-40.7 over the 16 images)"`` of per-image ``seconds`` ``(N,)``."""
    iv = median_interval(seconds)
    return (f"median {1000 * float(np.median(seconds)):.1f} ms"
            + (f" (95% CI {1000 * iv[0]:.1f}-{1000 * iv[1]:.1f} over the {len(seconds)} images)" if iv else ""))


def speed_interval(ctx: ReportContext, run: str, seed: int = 0) -> tuple[float, float] | None:
    """95% interval of the median images/s of ``run`` over its epochs; None with fewer than 2 epochs."""
    return median_interval(epoch_speeds(ctx, run), seed)


@dataclass(frozen=True)
class SpeedRatio:
    """Median images/s of run a over run b, with its 95% bootstrap interval over their epochs."""

    ratio: float
    low: float
    high: float
    epochs_a: int
    epochs_b: int
    over: str = "the runs' epochs"  # what was resampled, for the text

    @property
    def resolved(self) -> bool:
        """True when the interval excludes 1: one run is measurably faster than the other."""
        return self.low > 1 or self.high < 1


def speed_ratio(ctx: ReportContext, run_a: str, run_b: str, seed: int = 0) -> SpeedRatio | None:
    """How many times as fast ``run_a`` trained as ``run_b``; None when either has < 2 timed epochs."""
    a, b = epoch_speeds(ctx, run_a), epoch_speeds(ctx, run_b)
    if len(a) < 2 or len(b) < 2:
        return None
    rng = np.random.default_rng(seed)
    samples = _medians(a, rng) / _medians(b, rng)
    low, high = _bounds(samples)
    return SpeedRatio(float(np.median(a) / np.median(b)), low, high, len(a), len(b))


def paired_ratio(a, b, seed: int = 0, over: str = "the images") -> SpeedRatio | None:
    """``median(a) / median(b)`` of two ``(N,)`` costs of the same N items (the seconds of each
    validation image under two inference modes, or of each round of a side-by-side timing), with the
    95% interval of a paired bootstrap: one resample of item indices for both sides. None when
    N < 2 or the sides differ in length; ``over`` names the items for the text."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(a) != len(b):
        return None
    idx = np.random.default_rng(seed).integers(0, len(a), (N_BOOT, len(a)))
    low, high = _bounds(np.median(a[idx], axis=1) / np.median(b[idx], axis=1))
    return SpeedRatio(float(np.median(a) / np.median(b)), low, high, len(a), len(b), over)


def ratio_value(v: float) -> str:
    """A ratio to the digits that tell it from 1: 1.8, but 1.04."""
    return f"{v:.1f}" if abs(v - 1) >= 0.1 else f"{v:.2f}"


def ratio_text(r: SpeedRatio) -> str:
    """``"1.8x (95% CI 1.7-1.9x over the runs' epochs)"``, all three to the same decimals: those that
    tell the ratio from 1 (:func:`ratio_value`), and more while the interval's ends would read the
    same though they differ (``"1.62x (95% CI 1.60-1.64x ...)"``, not "1.6-1.6x"), or while an end that
    excludes 1 would read as 1 (``"1.004-1.04x"``, not "1.00-1.04x")."""
    def reads(v: float, d: int) -> str:
        return f"{v:.{d}f}"

    d = 1 if all(abs(v - 1) >= 0.1 for v in (r.ratio, r.low, r.high)) else 2
    while d < 4:
        ends_merge = reads(r.low, d) == reads(r.high, d) and reads(r.low, d + 1) != reads(r.high, d + 1)
        reads_one = r.resolved and any(float(reads(v, d)) == 1 != float(reads(v, d + 1)) for v in (r.low, r.high))
        if not (ends_merge or reads_one):
            break
        d += 1
    return f"{reads(r.ratio, d)}x (95% CI {reads(r.low, d)}-{reads(r.high, d)}x over {r.over})"


def interval_or_dash(ctx: ReportContext, run: str) -> str:
    """Table cell: ``"78.0-84.1"`` (the 95% interval of the median images/s), or a dash."""
    iv = speed_interval(ctx, run)
    return "–" if iv is None or not all(map(math.isfinite, iv)) else f"{iv[0]:.1f}-{iv[1]:.1f}"


# ----------------------------------------------------------------------------- side by side

#: Label, in the side-by-side timing, of the U-Net of the training-size experiment (notebook 03's
#: ``resolution_size``: larger or smaller than the main run's, whichever the profile sets).
RESOLUTION_UNET = "U-Net at the training-size experiment's size"
#: Label, in the side-by-side timing, of the U-Net of the ablation recipe (when the profile's main runs
#: have a recipe of their own): what the training-size run is compared with.
REFERENCE_UNET = "U-Net, ablation recipe"


def measure_step_speeds(ctx: ReportContext, rounds: int = 10, steps: int = 3) -> dict[str, np.ndarray] | None:
    """Time training steps of the three architectures (and the training-size experiment's U-Net) side
    by side, in turn, in this process (:func:`cityseg_lib.train.speed.interleaved_step_seconds`), with the
    torch threads the runs trained with; kept in the context for Table 4 and the cost sentences.
    ``rounds`` 0 measures nothing (the report then compares the speeds the runs recorded), nor does a
    machine without a GPU when the runs trained on one."""
    if not rounds:
        return None
    from cityseg_lib.train.setup import resolve_device
    from cityseg_lib.train.speed import interleaved_step_seconds

    device = resolve_device("auto")
    trained_on = {str(ctx.main[label].get("device") or "").split(":")[0] for label in ctx.untuned}
    if "cuda" in trained_on and device.type != "cuda":
        return None  # runs trained on a GPU, report built without one: a CPU timing would not say how they train
    configs = {label: ctx.runs.config(ctx.main_runs[label]) for label in ctx.untuned}
    if getattr(ctx.unet, "resolution_run", None):
        configs[RESOLUTION_UNET] = ctx.runs.config(ctx.unet.resolution_run)
        if ctx.two_recipes:
            configs[REFERENCE_UNET] = ctx.runs.config(ctx.reference("U-Net"))
    times = interleaved_step_seconds(configs, rounds=rounds, steps=steps, device=str(device),
                                     threads=ctx.baseline.cpu_threads)
    ctx._memo[("side_by_side",)] = {"times": times, "rounds": rounds, "steps": steps,
                                    "device": "CPU" if device.type == "cpu" else str(device)}
    return times


def side_by_side(ctx: ReportContext) -> dict | None:
    """What :func:`measure_step_speeds` measured in this context (``times``: ``{label: (rounds,)
    seconds per image}``, ``rounds``, ``steps``, ``device``), or None."""
    return ctx._memo.get(("side_by_side",))


def side_by_side_cell(ctx: ReportContext, label: str) -> str:
    """Table cell: ``"98.1 (95.0-101.2)"``, images/s (the inverse of the median seconds per image)
    with its 95% interval over the rounds; a dash when not measured."""
    sbs = side_by_side(ctx)
    if not sbs or label not in sbs["times"]:
        return "–"
    t = sbs["times"][label]
    iv = median_interval(t)
    return f"{1 / float(np.median(t)):.1f}" + (f" ({1 / iv[1]:.1f}-{1 / iv[0]:.1f})" if iv else "")


def side_by_side_ratio(ctx: ReportContext, slow: str, fast: str) -> SpeedRatio | None:
    """How many times as long a training image of ``slow`` takes as one of ``fast``, measured side
    by side (paired by round); None when not measured."""
    sbs = side_by_side(ctx)
    if not sbs or slow not in sbs["times"] or fast not in sbs["times"]:
        return None
    return paired_ratio(sbs["times"][slow], sbs["times"][fast], over="the rounds")


def side_by_side_how(ctx: ReportContext) -> str:
    """``"measured side by side (10 rounds of 3 training steps of each model in turn, on CPU)"``."""
    sbs = side_by_side(ctx)
    return (f"measured side by side ({sbs['rounds']} rounds of {sbs['steps']} training steps of each model in turn, "
            f"on {sbs['device']})") if sbs else ""
