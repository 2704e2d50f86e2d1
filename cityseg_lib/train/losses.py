"""Multiclass losses over the 19 trainIds, all honouring :data:`IGNORE_INDEX`.

Each loss is a pure function plus a thin ``nn.Module``; :func:`build_loss` makes one by name.
Shapes everywhere: ``logits (N, C, H, W)`` float (any dtype), ``target (N, H, W)`` int64 with
values in ``0..C-1`` or ``ignore_index``. Every loss returns a scalar float32 tensor.

Choices, and why:

* Computed in float32 even under bf16/fp16 autocast: the soft IoU/Dice sums run over
  millions of pixels and lose all precision in bf16.
* Ignored pixels count in neither numerator nor denominator: their probabilities are
  zeroed before any sum, so their logits get exactly zero gradient.
* Soft Jaccard / Dice: per-class scores over the *whole batch* (sums over N, H, W), then
  ``loss = 1 - score`` averaged over the classes **present in the target** of the batch
  (as segmentation_models_pytorch masks absent classes). An absent class's score is 0/0
  with ``smooth=0`` or a near-1 loss for any stray probability mass with a tiny smooth;
  including it adds noise, not signal, because mass spent on an absent class is already
  penalised through the lost intersection of the true class. Unlike smp (which divides
  by all C classes) we divide by the number of present classes, so the loss stays in
  [0, 1]: ~0 for perfect and ~1 for completely wrong predictions, whatever the batch holds.
* A batch with every pixel ignored gives a loss of exactly 0 (still attached to the graph,
  with zero gradient) rather than NaN, for all three losses.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import IGNORE_INDEX

__all__ = [
    "cross_entropy_loss",
    "soft_jaccard_loss",
    "dice_loss",
    "CrossEntropyLoss",
    "JaccardLoss",
    "DiceLoss",
    "LOSSES",
    "build_loss",
]


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            "loss expects logits (N, C, H, W) and target (N, H, W), "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )


def _batch_class_sums(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class sums over N, H, W of valid pixels, in float32.

    Returns ``intersection (C,)`` = sum of p_c where target == c, ``cardinality (C,)`` =
    sum of p_c + count of target == c, and ``present (C,) bool`` = class occurs in target.
    """
    valid = (target != ignore_index).unsqueeze(1)  # (N, 1, H, W)
    probs = logits.float().softmax(dim=1) * valid  # ignored pixels: zero mass, zero gradient
    index = torch.where(valid.squeeze(1), target, 0).unsqueeze(1).long()
    one_hot = torch.zeros_like(probs).scatter_(1, index, 1.0) * valid
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)
    target_count = one_hot.sum(dims)
    cardinality = probs.sum(dims) + target_count
    return intersection, cardinality, target_count > 0


def _mean_over_present(per_class_loss: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean over present classes; exactly 0 (with zero gradient) if no class is present."""
    count = present.sum()
    return (per_class_loss * present).sum() / count.clamp_min(1)


def cross_entropy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean categorical cross-entropy over non-ignored pixels.

    ``logits (N, C, H, W)``, ``target (N, H, W)`` int64, optional class ``weight (C,)``
    (then a weighted mean, as ``torch.nn.functional.cross_entropy``). 0 when all pixels
    are ignored (PyTorch's own mean reduction would give NaN).
    """
    _check(logits, target)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        w = weight.to(logits.device, torch.float32) if weight is not None else None
        total = F.cross_entropy(
            logits, target, weight=w, ignore_index=ignore_index, reduction="sum", label_smoothing=label_smoothing
        )
        valid = target != ignore_index
        # no boolean indexing: it would force a host sync on CUDA
        norm = (w[torch.where(valid, target, 0)] * valid).sum() if w is not None else valid.sum().to(torch.float32)
        return total / norm.clamp_min(1e-12)  # all ignored: 0 / eps = 0, no host sync


def _overlap_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, smooth: float, eps: float,
                  dice: bool) -> torch.Tensor:
    """Shared body of :func:`soft_jaccard_loss` (``dice=False``) and :func:`dice_loss` (``dice=True``)."""
    _check(logits, target)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        intersection, cardinality, present = _batch_class_sums(logits, target, ignore_index)
        if dice:
            score = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
        else:  # union = sum p + sum y - I
            score = (intersection + smooth) / (cardinality - intersection + smooth).clamp_min(eps)
        return _mean_over_present(1.0 - score, present)


def soft_jaccard_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                      smooth: float = 0.0, eps: float = 1e-7) -> torch.Tensor:
    """Differentiable IoU loss: ``1 - (I + smooth) / (U + smooth)`` per class, mean over present classes.

    ``logits (N, C, H, W)``, ``target (N, H, W)`` int64. With p = softmax(logits) and y the
    one-hot target, over all valid pixels of the batch: ``I_c = sum p_c y_c`` and
    ``U_c = sum p_c + sum y_c - I_c``; ``eps`` only guards the division.
    """
    return _overlap_loss(logits, target, ignore_index, smooth, eps, dice=False)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX,
              smooth: float = 0.0, eps: float = 1e-7) -> torch.Tensor:
    """Soft Dice loss: ``1 - (2 I + smooth) / (sum p + sum y + smooth)`` per class, mean over present classes.

    Same shapes, sums and class averaging as :func:`soft_jaccard_loss`.
    """
    return _overlap_loss(logits, target, ignore_index, smooth, eps, dice=True)


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy_loss`; ``weight``: optional per-class weights (C values)."""

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        weight: Sequence[float] | torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.weight: torch.Tensor | None
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(logits, target, self.ignore_index, self.weight, self.label_smoothing)


class _OverlapLoss(nn.Module):
    """Module form of an overlap loss ``fn(logits, target, ignore_index, smooth, eps)``."""

    fn: Callable[..., torch.Tensor]

    def __init__(self, ignore_index: int = IGNORE_INDEX, smooth: float = 0.0, eps: float = 1e-7) -> None:
        super().__init__()
        self.ignore_index, self.smooth, self.eps = ignore_index, smooth, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return type(self).fn(logits, target, self.ignore_index, self.smooth, self.eps)


class JaccardLoss(_OverlapLoss):
    """Module form of :func:`soft_jaccard_loss`."""

    fn = staticmethod(soft_jaccard_loss)


class DiceLoss(_OverlapLoss):
    """Module form of :func:`dice_loss`."""

    fn = staticmethod(dice_loss)


#: Loss name -> module class; ``jaccard`` is an alias of ``iou``.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "cross_entropy": CrossEntropyLoss,
    "iou": JaccardLoss,
    "jaccard": JaccardLoss,
    "dice": DiceLoss,
}


def build_loss(name: str, **options: object) -> nn.Module:
    """Build a loss module by name (see :data:`LOSSES`), e.g. ``build_loss("dice", smooth=1.0)``."""
    if name not in LOSSES:
        raise CitysegError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    factory = LOSSES[name]
    valid = [p for p in inspect.signature(factory).parameters if p != "self"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise CitysegError(
            f"loss {name!r} got unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}"
        )
    return factory(**options)
