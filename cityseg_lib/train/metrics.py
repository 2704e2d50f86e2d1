"""Segmentation metrics from one confusion matrix accumulated over a whole split.

The matrix has one row per evaluated class (ground truth, trainIds ``0..C-1``) and one
column per predicted class plus a last *void* column, so it is ``(C, C+1)``:

* ground-truth pixels equal to :data:`IGNORE_INDEX` (or outside ``0..C-1``) are skipped;
* a prediction outside ``0..C-1`` (e.g. a void labelId read from an official-format PNG)
  lands in the void column: a miss (false negative) for the ground-truth class and a false
  positive for no class.

This is exactly how cityscapesScripts' ``evalPixelLevelSemanticLabeling.py`` counts: its FN
is the whole ground-truth row (predictions of ignored labels included), its FP only counts
pixels whose ground truth is an evaluated class. Category IoUs merge the classes of a
category first, so a pixel predicted as another class of the same category is correct.

Never average per-batch IoUs: accumulate, then :meth:`ConfusionMatrix.compute` once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F

from cityseg_lib.data.labels import CATEGORY_NAMES, CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, TRAIN_ID_TO_CATEGORY

__all__ = [
    "SegScores",
    "ConfusionMatrix",
    "scores_from_matrix",
    "normalized_confusion",
    "scores_table",
    "upsample_logits",
    "predict_full_res",
]


def _nanmean(values: np.ndarray) -> float:
    """Mean of the non-NaN entries; NaN (without a warning) when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` in float64 with NaN where ``den == 0``."""
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    out = np.full(num.shape, math.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _class_names(num_classes: int) -> tuple[str, ...]:
    if num_classes == NUM_CLASSES:
        return CLASS_NAMES
    return tuple(f"class_{i}" for i in range(num_classes))


@dataclass(frozen=True)
class SegScores:
    """Scores of one confusion matrix. Per-class arrays are indexed by trainId.

    ``class_iou`` / ``class_accuracy`` are NaN for classes that never occur (no ground-truth
    pixel and no prediction); the means skip NaNs. ``category_iou`` is empty when the
    matrix is not over the 19 Cityscapes classes.
    """

    class_names: tuple[str, ...]
    class_iou: np.ndarray  # (C,) float64
    class_accuracy: np.ndarray  # (C,) float64, per-class recall
    miou: float
    pixel_accuracy: float
    mean_class_accuracy: float
    category_iou: dict[str, float] = field(default_factory=dict)
    mean_category_iou: float = math.nan
    num_pixels: int = 0  # evaluated (non-ignored) ground-truth pixels

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict (floats may be NaN)."""
        return {
            "miou": self.miou,
            "mean_category_iou": self.mean_category_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "mean_class_accuracy": self.mean_class_accuracy,
            "num_pixels": self.num_pixels,
            "class_iou": {n: float(v) for n, v in zip(self.class_names, self.class_iou)},
            "class_accuracy": {n: float(v) for n, v in zip(self.class_names, self.class_accuracy)},
            "category_iou": dict(self.category_iou),
        }


def _category_iou(mat: np.ndarray) -> dict[str, float]:
    """Category IoUs of a (19, 20) trainId matrix: merge rows and columns by category."""
    num_cat = len(CATEGORY_NAMES)
    col_map = np.append(TRAIN_ID_TO_CATEGORY, num_cat)  # void column stays void
    cat = np.zeros((num_cat, num_cat + 1), dtype=np.int64)
    np.add.at(cat, (TRAIN_ID_TO_CATEGORY[:, None], col_map[None, :]), mat)
    tp = np.diag(cat[:, :num_cat])
    iou = _safe_ratio(tp, cat.sum(axis=1) + cat[:, :num_cat].sum(axis=0) - tp)
    return {name: float(v) for name, v in zip(CATEGORY_NAMES, iou)}


def scores_from_matrix(mat: np.ndarray | torch.Tensor, class_names: Sequence[str] | None = None) -> SegScores:
    """Score a ``(C, C+1)`` confusion matrix (rows: ground truth, last column: void prediction).

    IoU = TP / (TP + FP + FN) with FN = row sum (void column included) - TP and
    FP = column sum - TP, NaN where the denominator is 0; mIoU is the NaN-mean.
    """
    m = mat.detach().cpu().numpy() if isinstance(mat, torch.Tensor) else np.asarray(mat)
    m = m.astype(np.int64)
    if m.ndim != 2 or m.shape[1] != m.shape[0] + 1:
        raise ValueError(f"confusion matrix must have shape (C, C+1), got {tuple(m.shape)}")
    num_classes = m.shape[0]
    names = tuple(class_names) if class_names is not None else _class_names(num_classes)
    tp = np.diag(m[:, :num_classes])
    gt_total = m.sum(axis=1)  # TP + FN
    pred_total = m[:, :num_classes].sum(axis=0)  # TP + FP
    class_iou = _safe_ratio(tp, gt_total + pred_total - tp)
    class_acc = _safe_ratio(tp, gt_total)
    num_pixels = int(gt_total.sum())
    category_iou = _category_iou(m) if num_classes == NUM_CLASSES else {}
    return SegScores(
        class_names=names,
        class_iou=class_iou,
        class_accuracy=class_acc,
        miou=_nanmean(class_iou),
        pixel_accuracy=float(tp.sum() / num_pixels) if num_pixels else math.nan,
        mean_class_accuracy=_nanmean(class_acc),
        category_iou=category_iou,
        mean_category_iou=_nanmean(np.array(list(category_iou.values()))) if category_iou else math.nan,
        num_pixels=num_pixels,
    )


class ConfusionMatrix:
    """A ``(C, C+1)`` int64 confusion matrix accumulated on the tensors' device.

    ``mat[t, p]`` counts pixels of ground-truth class ``t`` predicted as ``p``; column ``C``
    counts predictions outside ``0..C-1`` (void). Ignored ground truth is never counted.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, device: torch.device | str | None = None) -> None:
        self.num_classes = num_classes
        self.mat = torch.zeros(num_classes, num_classes + 1, dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.mat.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch. ``pred`` and ``target``: integer tensors of the same shape, e.g. (N, H, W)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        n = self.num_classes
        if self.mat.device != pred.device:  # follow the data, e.g. a CPU matrix fed CUDA batches
            self.mat = self.mat.to(pred.device)
        pred = pred.reshape(-1).long()
        target = target.reshape(-1).to(device=pred.device, dtype=torch.int64)
        # skips IGNORE_INDEX, and any other id outside 0..C-1 the same way
        keep = (target >= 0) & (target < n) & (target != IGNORE_INDEX)
        target, pred = target[keep], pred[keep]
        pred = torch.where((pred >= 0) & (pred < n), pred, torch.full_like(pred, n))
        counts = torch.bincount(target * (n + 1) + pred, minlength=n * (n + 1))
        self.mat += counts.reshape(n, n + 1)

    def all_reduce(self) -> None:
        """Sum the matrix over processes (torch.distributed); a no-op when not initialised."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.mat, op=dist.ReduceOp.SUM)

    def compute(self) -> SegScores:
        return scores_from_matrix(self.mat, _class_names(self.num_classes))

    def normalized(self, include_void: bool = False) -> np.ndarray:
        """Row-normalised matrix as numpy, see :func:`normalized_confusion`."""
        return normalized_confusion(self.mat, include_void=include_void)


def normalized_confusion(mat: np.ndarray | torch.Tensor, include_void: bool = False) -> np.ndarray:
    """Row-normalised float64 confusion matrix for plotting: rows sum to 1, NaN for empty rows.

    Normalised over the full row (void predictions included), so the diagonal is the
    per-class recall; ``include_void`` keeps the void column, giving ``(C, C+1)`` else ``(C, C)``.
    """
    m = mat.detach().cpu().numpy() if isinstance(mat, torch.Tensor) else np.asarray(mat)
    m = m.astype(np.float64)
    rows = m.sum(axis=1, keepdims=True)
    out = np.full(m.shape, math.nan)
    np.divide(m, rows, out=out, where=rows > 0)
    return out if include_void else out[:, : m.shape[0]]


def scores_table(scores: SegScores) -> pd.DataFrame:
    """Per-class table indexed by trainId: class name, IoU, accuracy (recall)."""
    table = pd.DataFrame(
        {"class": list(scores.class_names), "iou": scores.class_iou, "accuracy": scores.class_accuracy}
    )
    table.index.name = "train_id"
    return table


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (align_corners=False) resize of logits (N, C, h, w) -> (N, C, H, W); as-is if already (H, W).

    The result is channels_last (a class's scores of one pixel side by side in memory), so the
    argmax or softmax over classes that follows reads contiguous memory: on one CPU thread,
    resize + argmax of 19 x 48x96 logits to 512x1024 takes 61 ms against 194 ms in NCHW
    (``benchmarks/bench_fullres.py``, 2026-12-02). The values agree with the NCHW resize to ~2e-6
    (summation order); on the demo U-Net's 16 validation frames not one of the 8.4 M argmax pixels
    changed.
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    logits = logits.contiguous(memory_format=torch.channels_last)
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


@torch.no_grad()
def predict_full_res(logits: torch.Tensor, size: tuple[int, int], chunk: int = 1) -> torch.Tensor:
    """Official protocol: upsample logits (N, C, h, w) to the label size (H, W), then argmax.

    Done ``chunk`` images at a time in float32, so peak memory is one chunk of full-size
    logits (19 x 2048 x 1024 x 4 B = 160 MB per image) rather than the whole batch.
    Returns (N, H, W) int64 trainIds.
    """
    n = logits.shape[0]
    out = torch.empty((n, *size), dtype=torch.int64, device=logits.device)
    for start in range(0, n, max(1, chunk)):
        part = logits[start : start + chunk].float()
        out[start : start + chunk] = upsample_logits(part, size).argmax(dim=1)
    return out

