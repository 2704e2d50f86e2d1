"""How sure is a headline number? Bootstrap intervals over validation images, paired run comparisons.

Input: one confusion matrix per validation image, ``per_image (N, C, C+1)`` int; rows are
ground-truth trainIds, columns the predicted class plus a last *void* column (a miss: FN, no FP).
Scores match the metrics module's ``scores_from_matrix``: IoU = TP/(TP+FP+FN) of the matrix
*summed* over images, NaN for a class with no pixel and no prediction, mIoU = NaN-mean.

Images are the sampling unit: a resample draws N images with replacement and scores the sum.
Two runs are compared *paired* (same indices), so the per-image difficulty they share cancels.
A difference is resolved only when its interval excludes zero and, with repeated seeds, every
seed's difference agrees in sign.

Intervals come from :mod:`cityseg_lib.evaluate.intervals` (expanded percentile by default: plain
percentile intervals are too narrow on few images; the measurements are there).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from cityseg_lib.evaluate.intervals import METHODS, interval_of_samples

__all__ = [
    "Interval", "Difference", "miou_from_matrix", "pixel_accuracy_from_matrix", "miou_of_resamples",
    "scores_of_resamples", "resample_indices", "bootstrap_ci", "class_iou_intervals", "paired_difference",
    "seed_spread", "compare_groups", "METHODS",
]

METRICS = ("miou", "pixel_accuracy")
_CHUNK = 512  # resamples summed per matmul: bounds memory at ~_CHUNK * N * 8 bytes


@dataclass(frozen=True)
class Interval:
    """A score with its bootstrap interval (expanded percentile unless ``method`` says otherwise);
    fractions (0..1). ``level`` is the nominal coverage."""

    value: float  # the score of the full (un-resampled) sum
    low: float
    high: float
    n_images: int
    n_boot: int
    level: float = 0.95
    metric: str = "miou"
    method: str = "expanded"


@dataclass(frozen=True)
class Difference:
    """``a - b`` with the paired-bootstrap interval of the difference (fractions, not points).

    ``seed_differences`` holds per-seed differences ``a_i - b_i`` (or every ``a_i - b_j`` when
    the groups hold different seeds or counts); ``seeds_agree`` is None when fewer than 2 were
    compared. ``resolved``: the interval excludes zero, on the side of ``difference``, and the seeds
    (if assessed) agree.
    """

    a: float
    b: float
    difference: float
    low: float
    high: float
    resolved: bool
    n_images: int = 0
    n_boot: int = 0
    level: float = 0.95
    metric: str = "miou"
    method: str = "expanded"
    seed_differences: tuple[float, ...] = ()
    seeds_agree: bool | None = None
    n_seeds_a: int = 1
    n_seeds_b: int = 1
    spread_a: dict[str, float] | None = field(default=None, compare=False)
    spread_b: dict[str, float] | None = field(default=None, compare=False)
    matched_seed: int | None = None  # a single run against the other side's run of this seed (not pooled)

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    @property
    def n_seeds_agreeing(self) -> int:
        """How many per-seed differences share the (non-zero) sign of the pooled difference."""
        sign = np.sign(self.difference)
        return int(sum(1 for d in self.seed_differences if sign != 0 and np.sign(d) == sign))


def _as_per_image(per_image: ArrayLike, name: str = "per_image") -> np.ndarray:
    """Validate and return an ``(N, C, C+1)`` int64 array (N >= 1, no negative counts)."""
    m = np.asarray(per_image)
    if m.ndim != 3 or m.shape[2] != m.shape[1] + 1 or m.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N>=1, C, C+1), got {m.shape}")
    if (not np.issubdtype(m.dtype, np.integer) and not np.array_equal(m, np.round(m))) or (m < 0).any():
        raise ValueError(f"{name} must hold non-negative integer pixel counts")
    return m.astype(np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0``."""
    out = np.full(np.shape(num), math.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _scores(mats: np.ndarray, metric: str) -> np.ndarray:
    """Score a stack of summed matrices ``(B, C, C+1)`` -> ``(B,)`` float64.

    Classes are summed in a fixed Python order (not a numpy reduction whose order depends on
    the batch shape), so one matrix scores bit-identically alone or inside a batch.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    mats = np.asarray(mats, dtype=np.float64)
    c = mats.shape[1]
    if metric == "pixel_accuracy":
        tp = mats[:, np.arange(c), np.arange(c)]
        return _ratio(tp.sum(axis=1), mats.sum(axis=2).sum(axis=1))
    iou, den = _class_iou(mats)
    total, count = np.zeros(len(mats)), np.zeros(len(mats))
    for k in range(c):
        valid = den[:, k] > 0
        total += np.where(valid, iou[:, k], 0.0)
        count += valid
    return _ratio(total, count)


def _class_iou(mats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU of summed matrices ``(B, C, C+1)`` -> ``(B, C)`` (NaN where the class has no
    pixel and no prediction), and its denominator TP + FP + FN ``(B, C)``."""
    mats = np.asarray(mats, dtype=np.float64)
    c = mats.shape[1]
    tp = mats[:, np.arange(c), np.arange(c)]
    gt_total = mats.sum(axis=2)  # TP + FN, void column included
    pred_total = mats[:, :, :c].sum(axis=1)  # TP + FP, column over the C rows only
    den = gt_total + pred_total - tp
    return _ratio(tp, den), den


def _score_total(per_image: np.ndarray, metric: str) -> float:
    """Score of the ``(N, C, C+1)`` stack summed over images."""
    return float(_scores(per_image.sum(axis=0)[None], metric)[0])


def miou_from_matrix(mat: ArrayLike) -> float:
    """mIoU of one ``(C, C+1)`` matrix; NaN when no class occurs. Same as ``scores_from_matrix``."""
    return float(_scores(np.asarray(mat)[None], "miou")[0])


def pixel_accuracy_from_matrix(mat: ArrayLike) -> float:
    """Trace over the pixels of the C ground-truth rows (void predictions count as wrong)."""
    return float(_scores(np.asarray(mat)[None], "pixel_accuracy")[0])


def resample_indices(n_images: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_images)`` image indices drawn with replacement; deterministic per seed."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n_images, size=(n_boot, n_images))


def _resampled_sums(m: np.ndarray, idx: ArrayLike):
    """The summed matrices of resamples ``idx (B, N')`` of ``m (N, C, C+1)``, in chunks ``(b, C, C+1)``.

    Rather than gathering ``B x N'`` matrices: count draws per image (``counts (B, N)``, one
    bincount) and sum with one matmul ``counts @ per_image.reshape(N, C*(C+1))`` in float64,
    exact for integer sums below 2**53 (checked; an int64 einsum beyond that).
    """
    idx = np.asarray(idx)
    if idx.ndim != 2:
        raise ValueError(f"idx must have shape (B, N), got {idx.shape}")
    n, c = m.shape[0], m.shape[1]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"idx must lie in 0..{n - 1}")
    flat = m.reshape(n, c * (c + 1))
    exact_float = float(idx.shape[1]) * float(flat.max(initial=0)) < 2.0**53  # bound on any partial sum
    flat_f = flat.astype(np.float64)
    for start in range(0, idx.shape[0], _CHUNK):
        b = len(part := idx[start : start + _CHUNK])
        counts = np.bincount((part + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        sums = (counts.astype(np.float64) @ flat_f if exact_float
                else np.einsum("bn,nk->bk", counts.astype(np.int64), flat))
        yield sums.reshape(b, c, c + 1)


def scores_of_resamples(per_image: ArrayLike, idx: ArrayLike, metric: str = "miou") -> np.ndarray:
    """Score of each resample: ``per_image (N, C, C+1)``, ``idx (B, N')`` -> ``(B,)`` float64."""
    parts = [_scores(sums, metric) for sums in _resampled_sums(_as_per_image(per_image), idx)]
    return np.concatenate(parts) if parts else np.empty(0)


def class_iou_intervals(per_image: ArrayLike, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                        method: str = "expanded") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class IoU of the images' summed matrix with its bootstrap interval over the images:
    ``(value, low, high)``, each ``(C,)``; NaN for a class with no pixel and no prediction (a
    resample in which a class is absent is left out of that class's interval)."""
    m = _as_per_image(per_image)
    idx = resample_indices(len(m), n_boot, seed)
    samples = np.concatenate([_class_iou(sums)[0] for sums in _resampled_sums(m, idx)])
    value = _class_iou(m.sum(axis=0)[None])[0][0]
    bounds = np.array([interval_of_samples(samples[:, k], len(m), level, method) if np.isfinite(samples[:, k]).any()
                       else (math.nan, math.nan) for k in range(m.shape[1])])
    return value, bounds[:, 0], bounds[:, 1]


def miou_of_resamples(per_image: ArrayLike, idx: ArrayLike) -> np.ndarray:
    """mIoU of each resample ``idx (B, N)`` of ``per_image (N, C, C+1)`` -> ``(B,)``."""
    return scores_of_resamples(per_image, idx, "miou")


def bootstrap_ci(per_image: ArrayLike, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                 metric: str = "miou", method: str = "expanded") -> Interval:
    """Bootstrap interval (expanded percentile, or ``method="percentile"``) of the score over
    validation images ``(N, C, C+1)``.

    ``value`` scores the full sum; with one image every resample is that image, so
    ``low == high == value``.
    """
    m = _as_per_image(per_image)
    samples = scores_of_resamples(m, resample_indices(len(m), n_boot, seed), metric)
    value = _score_total(m, metric)
    low, high = interval_of_samples(samples, len(m), level, method)
    return Interval(value, low, high, n_images=len(m), n_boot=n_boot, level=level, metric=metric, method=method)


def paired_difference(per_image_a: ArrayLike, per_image_b: ArrayLike, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0, metric: str = "miou", method: str = "expanded") -> Difference:
    """Score(a) - score(b) with a paired bootstrap: both runs resampled with the same indices.

    Both inputs are ``(N, C, C+1)`` over the same N images in the same order. One image is never
    resolved: every resample is that image, so the interval's zero width measures nothing.
    """
    a, b = _as_per_image(per_image_a, "per_image_a"), _as_per_image(per_image_b, "per_image_b")
    if a.shape != b.shape:
        raise ValueError(f"runs are not paired: shapes {a.shape} and {b.shape} differ (same images needed)")
    idx = resample_indices(len(a), n_boot, seed)
    diffs = scores_of_resamples(a, idx, metric) - scores_of_resamples(b, idx, metric)
    va, vb = _score_total(a, metric), _score_total(b, metric)
    low, high = interval_of_samples(diffs, len(a), level, method)
    d = va - vb  # resolved: the interval excludes zero on d's side (few images can shift it past a tiny d)
    resolved = len(a) > 1 and bool((low > 0 and d > 0) or (high < 0 and d < 0))
    return Difference(a=va, b=vb, difference=d, low=low, high=high, resolved=resolved,
                      n_images=len(a), n_boot=n_boot, level=level, metric=metric, method=method)


def seed_spread(values: Sequence[float]) -> dict[str, float]:
    """Spread of one score over seeds: mean, std (ddof=1; 0 for one seed), min, max, n."""
    if (v := np.asarray(values, dtype=np.float64).ravel()).size == 0:
        raise ValueError("seed_spread needs at least one value")
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def compare_groups(group_a: Sequence[ArrayLike], group_b: Sequence[ArrayLike], n_boot: int = 2000,
                   level: float = 0.95, seed: int = 0, metric: str = "miou", method: str = "expanded",
                   matched: tuple[int, int] | None = None, matched_seed: int | None = None,
                   paired_seeds: bool = True) -> Difference:
    """Compare two configurations, each a list of ``(N, C, C+1)`` runs (one per seed, same images).

    Pooled: paired bootstrap of the matrices summed over seeds per image. Per seed: run i of a minus
    run i of b when the counts match and ``paired_seeds`` (run i of both groups has the same seed), else
    every a_i minus every b_j. ``resolved`` needs the interval to exclude zero and, with >= 2 such
    differences, all to share its sign.

    ``matched=(i, j)``, for a configuration that ran once against one with several seeds: the
    difference and its interval are those of ``a_i - b_j`` alone, the two runs of the same seed
    (``matched_seed``). Runs of one seed share their initial weights and the order of their
    images, so a variant trained once inherits that seed's luck; against the other seeds pooled,
    that luck would read as an effect of the variant. The single run against every seed of the
    other side still decides ``seeds_agree`` (it must lie beyond all of them), since its own seed
    noise is not measured.
    """
    runs_a, runs_b = [_as_per_image(m, "group_a") for m in group_a], [_as_per_image(m, "group_b") for m in group_b]
    if not runs_a or not runs_b:
        raise ValueError("each group needs at least one run")
    if len(shapes := {r.shape for r in runs_a + runs_b}) != 1:
        raise ValueError(f"all runs must cover the same images and classes, got shapes {sorted(shapes)}")
    if matched is not None and not (0 <= matched[0] < len(runs_a) and 0 <= matched[1] < len(runs_b)):
        raise ValueError(f"matched={matched} is outside groups of {len(runs_a)} and {len(runs_b)} runs")
    pair = (runs_a[matched[0]], runs_b[matched[1]]) if matched is not None else (sum(runs_a), sum(runs_b))
    first = paired_difference(*pair, n_boot=n_boot, level=level, seed=seed, metric=metric, method=method)
    pooled = replace(first, matched_seed=matched_seed if matched is not None else None)
    score_a, score_b = [_score_total(r, metric) for r in runs_a], [_score_total(r, metric) for r in runs_b]
    same = paired_seeds and len(score_a) == len(score_b)
    pairs = zip(score_a, score_b) if same else itertools.product(score_a, score_b)
    per_seed = tuple(x - y for x, y in pairs)
    out = replace(pooled, seed_differences=per_seed, n_seeds_a=len(runs_a), n_seeds_b=len(runs_b),
                  spread_a=seed_spread(score_a), spread_b=seed_spread(score_b))
    if len(per_seed) < 2:
        return out
    agree = out.n_seeds_agreeing == len(per_seed)
    return replace(out, seeds_agree=agree, resolved=out.resolved and agree)
