"""Inference modes of the field, as pure functions of a model and a batch of normalised images.

``infer(model, images, out_size, mode=..., train_size=..., stride=..., flip=..., scales=...)``:

* ``whole`` (this project's protocol so far): the image is resized to ``train_size * scale``,
  forwarded once, and the logits are bilinearly up-sampled to ``out_size``.
* ``slide`` (MMSegmentation ``mode='slide'``): windows of ``train_size`` (the training crop)
  every ``stride`` pixels (default two thirds of the window, rounded, as MMSeg's configs: crop
  512 / stride 341, crop 769 / stride 513) over the image **at the label's resolution**
  ``out_size``, times ``scale``. The logits of overlapping windows are summed and divided by the
  count map; an image smaller than a window is zero-padded (the mean colour, in normalised
  space) on the bottom/right and the padding cropped off; the result is brought to ``out_size``.
  MMSeg slides over the image at its test scale; here the base is the label resolution, so
  ``scales`` mean the same for every model and dataset. A scale of ``train_size / out_size``
  makes one window cover the image (slide = whole). Models trained on whole frames resized to
  ``train_size`` see objects ``out/train`` times larger in the windows at scale 1 than in
  training: slide suits models trained on crops.
* ``flip``: the horizontally mirrored image too, its output mirrored back.
* ``scales``: multi-scale TTA; every scale (and its mirror) gives softmax probabilities at
  ``out_size``, which are averaged (MMSeg's ``aug_test``). Swin2-JNet resizes any input to its
  fixed ``img_size``, so multi-scale ``whole`` only re-samples its input; multi-scale ``slide`` works.

Without TTA the result is logits; with TTA (flip, or more than one scale) it is the mean of the
probabilities (``softmax=True`` asks for probabilities in every case). Both give the same argmax.
The model is used as given: call ``model.eval()`` first; wrap in ``torch.autocast`` for bf16.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.train.metrics import upsample_logits

__all__ = ["MODES", "TTA_CHOICES", "DEFAULT_MS_SCALES", "InferenceMode", "infer", "default_stride",
           "slide_windows"]

MODES = ("whole", "slide")
TTA_CHOICES = ("flip", "ms")
#: MMSeg's Cityscapes multi-scale test ratios.
DEFAULT_MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


# ----------------------------------------------------------------------------- validation


def _check_size(key: str, value: Any) -> tuple[int, int]:
    """``(H, W)`` of positive ints; a single int means square."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise CitysegError(f"inference: {key}={value!r} must be [H, W], two positive integers")
    return int(value[0]), int(value[1])


def _check_scales(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise CitysegError(f"inference: scales={value!r} must be comma-separated numbers, "
                               "e.g. 0.75,1,1.25") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise CitysegError(f"inference: scales={value!r} must be a non-empty list of positive numbers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 8:
            raise CitysegError(f"inference: scale {v!r} in scales={list(value)!r} must be a number in (0, 8]")
    return tuple(float(v) for v in value)


def default_stride(window: tuple[int, int]) -> tuple[int, int]:
    """Two thirds of the window (MMSeg's stride 341 for crop 512, 513 for 769), at least 1."""
    return max(1, round(window[0] * 2 / 3)), max(1, round(window[1] * 2 / 3))


def _check_stride(stride: Any, window: tuple[int, int]) -> tuple[int, int]:
    stride = default_stride(window) if stride is None else _check_size("stride", stride)
    if stride[0] > window[0] or stride[1] > window[1]:
        raise CitysegError(f"inference: stride={list(stride)} is larger than the window {list(window)}; "
                           "pixels between windows would get no prediction")
    return stride


@dataclass(frozen=True)
class InferenceMode:
    """One inference protocol: ``mode`` ("whole" | "slide"), ``flip``, ``scales``, ``stride``.

    Constructed values are checked (one-line :class:`CitysegError` naming the bad value) and
    normalised (scales a tuple of floats, stride an ``(h, w)`` pair or None = two thirds of the
    window). ``parse`` reads CLI strings; ``label()`` names it in tables; ``__call__`` runs it.
    """

    mode: str = "whole"
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)
    stride: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CitysegError(f"inference: mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not isinstance(self.flip, bool):
            raise CitysegError(f"inference: flip={self.flip!r} must be true or false")
        object.__setattr__(self, "scales", _check_scales(self.scales))
        if self.stride is not None:
            if self.mode != "slide":
                raise CitysegError(f"inference: stride={self.stride!r} only applies to mode 'slide', not {self.mode!r}")
            object.__setattr__(self, "stride", _check_size("stride", self.stride))

    @classmethod
    def parse(cls, mode: str = "whole", tta: str | Sequence[str] | None = None, *,
              scales: str | Sequence[float] | None = None, stride: int | Sequence[int] | str | None = None
              ) -> "InferenceMode":
        """From CLI-style values: ``tta`` is "", "none", "flip", "ms", "flip,ms" (or a list of them);
        "ms" without ``scales`` uses :data:`DEFAULT_MS_SCALES`; ``scales`` "0.75,1,1.25" implies "ms";
        ``stride`` "341,682" or an int."""
        if not isinstance(mode, str):
            raise CitysegError(f"inference: mode {mode!r} is not one of {', '.join(MODES)}")
        if tta is None:
            tta = []
        elif isinstance(tta, str):
            tta = [t for t in tta.replace("+", ",").replace(" ", "").split(",") if t and t.lower() != "none"]
        else:
            tta = list(tta)
        for t in tta:
            if t not in TTA_CHOICES:
                raise CitysegError(f"inference: tta {t!r} is not one of {', '.join(TTA_CHOICES)} (or none)")
        if scales is None:
            scales = DEFAULT_MS_SCALES if "ms" in tta else (1.0,)
        if isinstance(stride, str):
            pieces = [v.strip() for v in stride.replace("x", ",").split(",")]
            try:  # "20x" or "20," is a typo, not a square stride
                if len(pieces) not in (1, 2) or not all(pieces):
                    raise ValueError
                parts = [int(v) for v in pieces]
            except ValueError:
                raise CitysegError(f"inference: stride={stride!r} must be an integer or H,W (HxW)") from None
            stride = parts[0] if len(parts) == 1 else parts
        return cls(mode=mode.strip().lower(), flip="flip" in tta, scales=scales, stride=stride)

    @property
    def tta(self) -> bool:
        """Whether outputs are averaged over flips or scales (then ``infer`` returns probabilities)."""
        return self.flip or len(self.scales) > 1

    def label(self) -> str:
        """Short name for tables: "whole", "slide + flip", "slide (stride 200x400) + flip + ms(0.75,1,1.25)",
        "slide + scale 0.5"."""
        parts = [self.mode if self.stride is None else f"{self.mode} (stride {self.stride[0]}x{self.stride[1]})"]
        if self.flip:
            parts.append("flip")
        if len(self.scales) > 1:
            parts.append("ms(" + ",".join(f"{s:g}" for s in self.scales) + ")")
        elif self.scales != (1.0,):
            parts.append(f"scale {self.scales[0]:g}")
        return " + ".join(parts)

    def __call__(self, model: nn.Module, images: torch.Tensor, out_size: Sequence[int], *,
                 train_size: Sequence[int] | None = None, softmax: bool = False) -> torch.Tensor:
        return infer(model, images, out_size, mode=self.mode, train_size=train_size, stride=self.stride,
                     flip=self.flip, scales=self.scales, softmax=softmax)


# ----------------------------------------------------------------------------- the modes


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of images (antialiased when shrinking, as the training resize); as-is at ``size``."""
    if tuple(images.shape[-2:]) == size:
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits to ``size`` as the official protocol (bilinear, align_corners=False), in float32."""
    return upsample_logits(logits.float(), size)


def _softmax_(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes (dim 1) of ``(N, C, H, W)`` float logits, in place.

    The result is torch's ``softmax(dim=1)`` to float32 round-off, without a second full-size
    tensor: on a CPU, torch's softmax over the classes of the channels-last logits that the
    up-sampling returns took 3x as long as these in-place passes (19x512x1024 logits, one thread),
    and TTA runs one per view at the label's resolution.
    """
    logits.sub_(logits.amax(dim=1, keepdim=True)).exp_()
    return logits.div_(logits.sum(dim=1, keepdim=True))


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def slide_windows(size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int]
                  ) -> list[tuple[int, int, int, int]]:
    """``(y1, y2, x1, x2)`` of MMSeg's windows over an image of ``size`` >= ``window``: a grid every
    ``stride``, the last row/column of windows moved back so they end at the image border."""
    grids = [max(s - w + st - 1, 0) // st + 1 for s, w, st in zip(size, window, stride)]
    out = []
    for i in range(grids[0]):
        y2 = min(i * stride[0] + window[0], size[0])
        for j in range(grids[1]):
            x2 = min(j * stride[1] + window[1], size[1])
            out.append((max(y2 - window[0], 0), y2, max(x2 - window[1], 0), x2))
    return out


def _whole(model: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return model(_resize(images, size))


#: Windows per forward pass in ``slide``: a batch of windows, not one call per window (on a CPU a
#: small model's per-call overhead dominates; 256 windows of 48x96 tile a 512x1024 demo frame).
SLIDE_BATCH = 16


def _slide(model: nn.Module, images: torch.Tensor, window: tuple[int, int], stride: tuple[int, int],
           batch: int = SLIDE_BATCH) -> torch.Tensor:
    """Logits at the images' size: windows summed, divided by the number of windows covering each pixel.

    The windows of one image go through the model ``batch`` at a time (the model is in eval mode,
    so a window's logits do not depend on its batch-mates).
    """
    n, _, h, w = images.shape
    pad_h, pad_w = max(window[0] - h, 0), max(window[1] - w, 0)
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    size = tuple(images.shape[-2:])
    boxes = slide_windows(size, window, stride)
    total = count = None
    for i in range(n):
        for start in range(0, len(boxes), batch):
            part = boxes[start : start + batch]
            logits = model(torch.cat([images[i : i + 1, :, y1:y2, x1:x2] for y1, y2, x1, x2 in part])).float()
            if total is None:
                total = logits.new_zeros((n, logits.shape[1], *size))
                count = logits.new_zeros((1, 1, *size))
            for k, (y1, y2, x1, x2) in enumerate(part):
                total[i, :, y1:y2, x1:x2] += logits[k]
                if i == 0:
                    count[:, :, y1:y2, x1:x2] += 1
    return (total / count)[..., :h, :w]


@torch.no_grad()
def infer(model: nn.Module, images: torch.Tensor, out_size: Sequence[int], *, mode: str = "whole",
          train_size: Sequence[int] | None = None, stride: int | Sequence[int] | None = None, flip: bool = False,
          scales: Sequence[float] = (1.0,), softmax: bool = False) -> torch.Tensor:
    """Predict ``images`` (N, 3, H, W) float normalised -> (N, C, *out_size) float32.

    ``mode``: "whole" (resize to ``train_size`` times each scale; None = the images' own size) or
    "slide" (windows of ``train_size`` over the images resized to ``out_size`` times each scale;
    pass images at their original resolution). ``stride``: slide step (default two thirds of the
    window). ``flip``/``scales``: TTA, see the module docstring. Returns logits without TTA, mean
    softmax probabilities with it (or always, with ``softmax=True``).
    """
    spec = InferenceMode(mode=mode, flip=flip, scales=scales, stride=stride)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise CitysegError(f"inference: images must be a float tensor (N, 3, H, W), got {shape}")
    out_size = _check_size("out_size", tuple(out_size) if isinstance(out_size, torch.Size) else out_size)
    if train_size is not None:
        train_size = _check_size("train_size", tuple(train_size) if isinstance(train_size, torch.Size) else train_size)
    elif spec.mode == "slide":
        raise CitysegError("inference: mode 'slide' needs train_size, the (H, W) of its windows")
    if spec.mode == "slide":
        window = train_size
        step = _check_stride(spec.stride, window)

    probs = softmax or spec.tta
    views = [(images, False)] + ([(images.flip(-1), True)] if spec.flip else [])
    result = None
    for scale in spec.scales:
        for view, mirrored in views:
            if spec.mode == "whole":
                logits = _whole(model, view, _scaled(train_size or tuple(view.shape[-2:]), scale))
            else:
                logits = _slide(model, _resize(view, _scaled(out_size, scale)), window, step)
            if mirrored:  # mirrored back before the up-sampling, which commutes with a mirror: a smaller tensor
                logits = logits.flip(-1)
            logits = _upsample(logits, out_size)
            if probs:
                logits = _softmax_(logits)
            result = logits if result is None else result.add_(logits)
    count = len(spec.scales) * len(views)
    return result.div_(count) if count > 1 else result
