"""The Cityscapes segmentation dataset: normalised image, trainId mask, sample id.

Samples are resized to the training size once (image bilinear with antialias, mask nearest
neighbour at pixel centres, :mod:`cityseg_lib.data.transforms`) and
kept in a :class:`~cityseg_lib.data.cache.SampleCache`, so later epochs read one small array per
sample instead of decoding two 2048x1024 PNGs. Augmentation runs after the cache, on the
resized arrays, drawing from a generator of (seed, epoch, item) once the trainer has called
:meth:`CityscapesSegmentation.set_epoch`, so it does not depend on the DataLoader's workers.

With ``normalize=False`` items stay uint8 (4 bytes a pixel instead of the 20 of a float32 image
plus an int64 mask): the trainer uses this and converts on the device after the copy
(:func:`cityseg_lib.train.engine.to_device`), so workers, collation and shared memory move a fifth of
the bytes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from cityseg_lib.data.cache import SampleCache
from cityseg_lib.errors import CitysegError
from cityseg_lib.data.images import read_image, read_label_ids
from cityseg_lib.data.labels import IGNORE_INDEX, LABEL_ID_TO_TRAIN_ID
from cityseg_lib.data.layout import Sample, find_samples
from cityseg_lib.data.transforms import AUGMENT_MODES, normalize, random_crop, resize_pair, train_augmentation

__all__ = ["CityscapesSegmentation", "preprocess_sample", "subset_indices"]


def preprocess_sample(sample: Sample, size: tuple[int, int], mask_resize: str = "nearest-exact") -> np.ndarray:
    """Decode, validate and resize one frame -> ``(H, W, 4)`` uint8: RGB + trainId mask (resized
    with ``mask_resize``, :data:`~cityseg_lib.data.transforms.MASK_RESIZE_MODES`).

    Unlabelled samples get an all-``IGNORE_INDEX`` mask.
    """
    rgb = read_image(sample.image)
    if sample.label is not None:
        ids = read_label_ids(sample.label)
        if ids.shape != rgb.shape[:2]:
            raise CitysegError(
                f"{sample.label}: label is {ids.shape[1]}x{ids.shape[0]} but its image {sample.image.name} "
                f"is {rgb.shape[1]}x{rgb.shape[0]}"
            )
        mask = LABEL_ID_TO_TRAIN_ID[ids]
    else:
        mask = np.full(rgb.shape[:2], IGNORE_INDEX, dtype=np.uint8)
    image_t = torch.from_numpy(rgb).permute(2, 0, 1)
    img, msk = resize_pair(image_t, torch.from_numpy(mask), size, mask_resize)
    return torch.cat([img, msk[None]], 0).permute(1, 2, 0).contiguous().numpy()


def subset_indices(n: int, subset: float | int | None, seed: int = 0) -> list[int]:
    """Deterministic, nested subset of ``range(n)``.

    ``subset`` is a fraction in (0, 1] (float) or a count (int >= 1); None or 1.0 keeps all.
    The same seed always draws from one permutation, so a larger subset contains every smaller
    one -- what the halving sweep needs when it doubles the data.
    """
    if subset is None:
        return list(range(n))
    if isinstance(subset, bool) or not isinstance(subset, (int, float)):
        raise CitysegError(f"subset {subset!r} must be a fraction in (0, 1] or a count >= 1")
    if isinstance(subset, float):
        if not 0.0 < subset <= 1.0:
            raise CitysegError(f"subset fraction {subset} must be in (0, 1]")
        k = max(1, int(round(subset * n)))
    else:
        if subset < 1:
            raise CitysegError(f"subset count {subset} must be >= 1")
        k = min(subset, n)
    order = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in order[:k])


class CityscapesSegmentation(Dataset):
    """Cityscapes (or the demo data) in the official layout.

    Item ``i`` is ``(image, mask, sample_id)``: ``image`` float32 ``(3, H, W)`` normalised with
    ImageNet statistics, ``mask`` int64 ``(H, W)`` trainIds with 255 = ignore, ``size = (H, W)``.
    With ``normalize=False``: ``image`` uint8 ``(3, H, W)`` RGB and ``mask`` uint8 ``(H, W)``.

    Args:
        root: dataset root holding ``leftImg8bit/`` and ``gtFine/`` (or ``gtCoarse/``).
        split: ``train``, ``val``, ``test`` (fine) or ``train``, ``train_extra``, ``val`` (coarse).
        size: training size ``(H, W)``; default 768x768 as in the reference report.
        annotation: ``fine`` or ``coarse``.
        labels: False for prediction on unlabelled images (the test split).
        augment: ``none``, ``replace`` (each item is randomly flipped/cropped) or ``augment``
            (the dataset is twice as long: originals then transformed copies).
        crop_size: ``(h, w)`` random window of every item (after augmentation), for training on
            crops of the ``size`` sample; None returns whole samples (evaluation always does).
        crop_class_balance: share of crops centred on a pixel of a uniformly drawn present class
            (:func:`cityseg_lib.data.transforms.random_crop`).
        subset, subset_seed: see :func:`subset_indices`.
        cache_dir: folder of the preprocessed cache; None decodes the PNGs every time.
        normalize: False returns uint8 items, to be converted on the device
            (:func:`cityseg_lib.data.transforms.normalize` and ``.long()``).
        mask_resize: how masks are resized to ``size`` and by augmentation: ``nearest-exact`` (each
            pixel's centre, aligned with the image) or ``nearest`` (the runs trained before
            2026-12-05), :mod:`cityseg_lib.data.transforms`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: tuple[int, int] = (768, 768),
        annotation: str = "fine",
        labels: bool = True,
        augment: str = "none",
        hflip_p: float = 0.5,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        crop_size: tuple[int, int] | None = None,
        crop_class_balance: float = 0.0,
        subset: float | int | None = None,
        subset_seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        normalize: bool = True,
        mask_resize: str = "nearest-exact",
    ):
        if augment not in AUGMENT_MODES:
            raise CitysegError(f"augment {augment!r} is not one of {AUGMENT_MODES}")
        self.root = Path(root)
        self.split = split
        self.size = (int(size[0]), int(size[1]))
        all_samples = find_samples(self.root, split, annotation, labels=labels)
        self.samples = [all_samples[i] for i in subset_indices(len(all_samples), subset, subset_seed)]
        self.augment = augment
        self.mask_resize = mask_resize
        self._aug = train_augmentation(self.size, hflip_p, crop_scale, mask_resize) if augment != "none" else None
        self.crop_size = (int(crop_size[0]), int(crop_size[1])) if crop_size is not None else None
        self.crop_class_balance = float(crop_class_balance)
        self.cache = SampleCache(cache_dir, self.size, mask_resize) if cache_dir is not None else None
        self.normalize = normalize
        self._epoch: tuple[int, int] | None = None  # (seed, epoch) of set_epoch

    def __len__(self) -> int:
        return len(self.samples) * (2 if self.augment == "augment" else 1)

    def load_array(self, index: int) -> np.ndarray:
        """Preprocessed ``(H, W, 4)`` uint8 array of sample ``index`` (no augmentation)."""
        sample = self.samples[index]
        if self.cache is None:
            return preprocess_sample(sample, self.size, self.mask_resize)
        return self.cache.get(sample, lambda s: preprocess_sample(s, self.size, self.mask_resize))

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Draw the random transforms of item ``i`` from a generator seeded with ``(seed, epoch, i)``.

        Without it they draw from torch's global generator, which is a DataLoader worker's own
        when there are workers: what an item got then depended on the number of workers. The
        trainer calls this before every epoch (a DataLoader without persistent workers copies
        the dataset to its workers at the start of each epoch).
        """
        self._epoch = (int(seed), int(epoch))

    @contextlib.contextmanager
    def _item_rng(self, index: int):
        """Where item ``index``'s random transforms draw: torch's global generator, forked and seeded
        with ``(seed, epoch, index)`` after :meth:`set_epoch` (nothing outside the item sees a draw);
        the global generator as it is before."""
        if self._epoch is None:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([*self._epoch, index]).generate_state(1, np.uint64)[0]))
            yield

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        n = len(self.samples)
        base = index % n
        arr = torch.from_numpy(self.load_array(base))
        image = tv_tensors.Image(arr[..., :3].permute(2, 0, 1))
        mask = tv_tensors.Mask(arr[..., 3])
        transformed = self.augment == "replace" or (self.augment == "augment" and index >= n)
        with self._item_rng(index) if transformed or self.crop_size is not None else contextlib.nullcontext():
            if transformed:
                image, mask = self._aug(image, mask)
            image, mask = image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
            if self.crop_size is not None:
                image, mask = random_crop(image, mask, self.crop_size, self.crop_class_balance)
        if self.normalize:
            image, mask = normalize(image), mask.long()
        return image, mask, self.samples[base].id
