"""Joint image/mask transforms (torchvision.transforms.v2), shared by training and evaluation.

Masks are ``tv_tensors.Mask``, so every geometric transform resizes them with nearest neighbour
and never invents a class; crop fills use :data:`IGNORE_INDEX`.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from cityseg_lib.data.labels import IGNORE_INDEX
from cityseg_lib.errors import CitysegError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AUGMENT_MODES",
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


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize ``image (3, H0, W0)`` bilinearly with antialias and ``mask (H0, W0)`` nearest -> ``size``."""
    img, msk = v2.Resize(list(size), antialias=True)(tv_tensors.Image(image), tv_tensors.Mask(mask))
    return img.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor)


def train_augmentation(
    size: tuple[int, int],
    hflip_p: float = 0.5,
    crop_scale: tuple[float, float] = (0.5, 1.0),
) -> v2.Transform:
    """Random horizontal flip and random resized crop back to ``size``, applied jointly."""
    if not 0.0 < crop_scale[0] <= crop_scale[1] <= 1.0:
        raise CitysegError(f"crop_scale {tuple(crop_scale)} must satisfy 0 < low <= high <= 1")
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=hflip_p),
            v2.RandomResizedCrop(list(size), scale=tuple(crop_scale), antialias=True),
        ]
    )


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

