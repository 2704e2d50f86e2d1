"""Joint image/mask transforms (torchvision.transforms.v2), shared by training and evaluation.

Masks are resized with nearest neighbour, which never invents a class, and by default at pixel
*centres* (``nearest-exact``): output pixel ``j`` takes the label under its centre, source
coordinate ``(j + 0.5) * scale``, the point the bilinear image resize (``align_corners=False``)
centres that pixel's colour on. torch's and torchvision's plain ``nearest`` (what
``tv_tensors.Mask`` gets by default) takes ``floor(j * scale)``, the label under the pixel's
top-left corner: every training mask then lies half a training pixel right of and below its image
(5.3 px of a 1024x512 demo frame at 48x96; 1.3 px across and 0.7 px down a 2048x1024 Cityscapes
frame at 768x768), and a model learns to predict each label that far from what it sees. Measured on the 64 demo validation
frames: a model predicting its 48x96 training masks perfectly, its logits up-sampled bilinearly to
the frames, scores 64.9% mIoU with ``nearest`` and 75.4% with ``nearest-exact`` (``96x192``: 75.8%
and 83.3%). ``nearest`` stays selectable (config ``mask_resize``) for the runs trained with it.
Crop fills use :data:`IGNORE_INDEX`.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from cityseg_lib.data.labels import IGNORE_INDEX
from cityseg_lib.errors import CitysegError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AUGMENT_MODES",
    "MASK_RESIZE_MODES",
    "resize_pair",
    "train_augmentation",
    "random_crop",
    "normalize",
    "denormalize",
]

# The pretrained Swin V2 encoders expect ImageNet statistics; the CNNs don't mind.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Section 3.1 of the reference report: no augmentation, transformed samples instead of the
#: originals ("replace"), or transformed copies in addition to the originals ("augment").
AUGMENT_MODES = ("none", "replace", "augment")


#: How masks are resized (module docstring): ``nearest-exact`` (the label at each pixel's centre, the
#: default) or ``nearest`` (at its top-left corner: runs trained before 2026-12-05).
MASK_RESIZE_MODES = ("nearest-exact", "nearest")
_MASK_INTERPOLATION = {"nearest-exact": InterpolationMode.NEAREST_EXACT, "nearest": InterpolationMode.NEAREST}


def _mask_interpolation(mask_resize: str) -> InterpolationMode:
    if mask_resize not in _MASK_INTERPOLATION:
        raise CitysegError(f"mask_resize {mask_resize!r} is not one of {MASK_RESIZE_MODES}")
    return _MASK_INTERPOLATION[mask_resize]


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int],
                mask_resize: str = "nearest-exact") -> tuple[torch.Tensor, torch.Tensor]:
    """Resize ``image (3, H0, W0)`` bilinearly with antialias and ``mask (H0, W0)`` with nearest
    neighbour (``mask_resize``, module docstring) -> ``size``."""
    img = F.resize(image, list(size), antialias=True)
    msk = F.resize(tv_tensors.Mask(mask), list(size), interpolation=_mask_interpolation(mask_resize))
    return img.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor)


class FlipAndCrop:
    """Random horizontal flip (probability ``hflip_p``) and random resized crop (area share in
    ``crop_scale``, torchvision's aspect ratios 3/4 to 4/3) back to ``size``, drawn once and applied
    to both: ``(image (3, H, W), mask (H, W))`` -> the same shapes at ``size``. The image is resized
    bilinearly with antialias, the mask with ``mask_resize``; torchvision's ``v2.RandomResizedCrop``
    would resize a ``Mask`` with plain ``nearest`` whatever it is told. The draws are those of
    ``v2.Compose([v2.RandomHorizontalFlip(hflip_p), v2.RandomResizedCrop(size, crop_scale)])``, in
    the same order, so with ``mask_resize="nearest"`` it is that transform exactly (the runs trained
    with it resume as they started)."""

    def __init__(self, size: tuple[int, int], hflip_p: float, crop_scale: tuple[float, float],
                 mask_resize: str = "nearest-exact") -> None:
        self.size, self.hflip_p = [int(size[0]), int(size[1])], float(hflip_p)
        self._crop = v2.RandomResizedCrop(self.size, scale=tuple(crop_scale), antialias=True)  # draws the window
        self._interpolation = _mask_interpolation(mask_resize)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = tv_tensors.Image(image), tv_tensors.Mask(mask)
        if torch.rand(1) < self.hflip_p:  # v2.RandomHorizontalFlip skips when rand >= p
            image, mask = F.horizontal_flip(image), F.horizontal_flip(mask)
        box = self._crop.make_params([image])
        image = F.resized_crop(image, **box, size=self.size, antialias=True)
        mask = F.resize(F.crop(mask, **box), self.size, interpolation=self._interpolation)
        return image, mask


def train_augmentation(
    size: tuple[int, int],
    hflip_p: float = 0.5,
    crop_scale: tuple[float, float] = (0.5, 1.0),
    mask_resize: str = "nearest-exact",
) -> FlipAndCrop:
    """Random horizontal flip and random resized crop back to ``size``, applied jointly (:class:`FlipAndCrop`)."""
    if not 0.0 < crop_scale[0] <= crop_scale[1] <= 1.0:
        raise CitysegError(f"crop_scale {tuple(crop_scale)} must satisfy 0 < low <= high <= 1")
    return FlipAndCrop(size, hflip_p, crop_scale, mask_resize)


def random_crop(
    image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int], class_balance: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``size = (h, w)`` window of ``image (3, H, W)`` and ``mask (H, W)``, cut jointly.

    The training crop of ``crop_size``: the model learns at the sample's resolution on a window
    of it, and evaluation sees the whole sample. A side shorter than the crop is padded (bottom /
    right) with 0 in the image and :data:`IGNORE_INDEX` in the mask, so padding is never scored.
    With probability ``class_balance`` the window is centred (then clamped to the sample) on a
    pixel of a class drawn uniformly from those present, so rare classes are seen as often as
    common ones; otherwise its corner is uniform. Randomness comes from torch's global generator,
    which the training dataset seeds per item from (seed, epoch, index)
    (:meth:`~cityseg_lib.data.dataset.CityscapesSegmentation.set_epoch`): a resumed epoch cuts the
    same crops, with any number of DataLoader workers.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise CitysegError(f"crop size {tuple(size)} must be positive")
    H, W = mask.shape[-2:]
    if H < h or W < w:  # pad: zeros in the image, IGNORE_INDEX in the mask
        image = torch.nn.functional.pad(image, (0, max(w - W, 0), 0, max(h - H, 0)), value=0)
        mask = torch.nn.functional.pad(mask, (0, max(w - W, 0), 0, max(h - H, 0)), value=IGNORE_INDEX)
        H, W = mask.shape[-2:]
    top = left = None
    if class_balance > 0 and torch.rand(()).item() < class_balance:
        present = torch.unique(mask)
        present = present[present != IGNORE_INDEX]
        if len(present):
            cls = present[torch.randint(len(present), ()).item()]
            ys, xs = torch.nonzero(mask == cls, as_tuple=True)
            k = torch.randint(len(ys), ()).item()
            top = min(max(int(ys[k]) - h // 2, 0), H - h)
            left = min(max(int(xs[k]) - w // 2, 0), W - w)
    if top is None:
        top = torch.randint(H - h + 1, ()).item()
        left = torch.randint(W - w + 1, ()).item()
    return image[..., top:top + h, left:left + w], mask[..., top:top + h, left:left + w]


def normalize(image_u8: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., 3, H, W)`` -> float32 normalised with ImageNet mean and std."""
    return F.normalize(F.to_dtype(image_u8, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`: float ``(..., 3, H, W)`` -> float in [0, 1] for display."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)

