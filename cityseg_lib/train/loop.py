"""The loop's plain functions: a batch to the device, one training epoch, and evaluation.

:func:`evaluate` scores at the loader's (training) size; :func:`evaluate_full_res` follows the
official protocol (logits up-sampled to each original label before the argmax) and also returns
one confusion matrix per image, which the report's bootstrap intervals resample.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.data.images import read_train_ids
from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.data.transforms import normalize
from cityseg_lib.errors import CitysegError
from cityseg_lib.train import distributed as D
from cityseg_lib.train.metrics import ConfusionMatrix, SegScores, predict_full_res
from cityseg_lib.train.setup import autocast as _autocast

__all__ = ["to_device", "train_one_epoch", "evaluate", "evaluate_full_res", "write_above_bars"]


def to_device(images: torch.Tensor, masks: torch.Tensor, device: torch.device, channels_last: bool = False):
    """Batch to ``device``: float32 normalised images ``(N, 3, H, W)`` and int64 masks ``(N, H, W)``.

    uint8 batches (datasets built with ``normalize=False``) are copied as uint8, a fifth of the
    bytes, and converted and normalised on the device; float batches pass through unchanged.
    """
    images = images.to(device, non_blocking=True)
    if images.dtype == torch.uint8:
        images = normalize(images)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, masks.to(device, non_blocking=True).long()


def write_above_bars(line: str) -> None:
    """Print ``line`` above the live progress bars (``tqdm.write``). tqdm registers a bar in
    ``__new__``, before ``__init__`` gives it a display: a notebook's stop button pressed in between
    leaves a half-built bar registered, on which every later ``tqdm.write`` fails ("'tqdm' object has
    no attribute 'container'"), so one interrupt broke training in that kernel until a restart.
    Such bars are forgotten and the line printed (no bar is live between epochs)."""
    try:
        tqdm.write(line)
    except AttributeError:
        getattr(tqdm, "_instances", set()).clear()
        print(line, flush=True)


# ----------------------------------------------------------------------------- one epoch


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    device: torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    max_batches: int = 0,
    progress: bool = False,
    desc: str = "train",
) -> dict:
    """One pass over ``loader``; returns the epoch's loss, images seen and seconds.

    The loss is each batch's loss (the criterion on the whole batch: cross-entropy's mean over the
    batch's labelled pixels, Dice/IoU over its pixels per class) weighted by the batch's images:
    ``sum_b n_b * L_b / sum_b n_b`` (summed over ranks under DDP), as the steps saw it.

    Raises :class:`CitysegError` on a NaN/inf loss (checked every few steps and at the end, on
    every rank alike under DDP), before anything of this epoch is saved.
    """
    model.train()
    total = torch.zeros((), device=device, dtype=torch.float64)
    seen = 0
    n_batches = min(len(loader), max_batches) if max_batches else len(loader)
    start = time.perf_counter()
    # "unet epoch 3/20:  45%|####     | 9/20 [00:05<00:06, 1.8step/s, loss=0.8123]" (00:06: epoch ETA)
    bar = tqdm(total=n_batches, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=not progress)
    try:
        for step, (images, masks, _) in enumerate(loader):
            if step == n_batches:
                break
            images, masks = to_device(images, masks, device, channels_last)
            # forward / backward
            with _autocast(device, amp):
                logits = model(images)
            loss = criterion(logits.float(), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # log (a host sync every few steps only)
            total += loss.detach() * images.shape[0]
            seen += images.shape[0]
            if step % 10 == 9 or step == n_batches - 1:
                # the loss of all ranks (DDP): a NaN one rank alone saw would stop that rank while
                # the others went on into a collective it never joins (a gloo error, or a wait)
                shared = D.all_reduce_sum(torch.stack([total, total.new_tensor(float(seen))]))
                running = (shared[0] / shared[1]).item()
                if not math.isfinite(running):
                    raise CitysegError(f"non-finite training loss ({running}) at step {step + 1}")
                bar.set_postfix(loss=f"{running:.4f}")
            bar.update()
    finally:  # an interrupt (a notebook's stop button) leaves no bar behind
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    # on the training device: NCCL, the CUDA process group, has no CPU tensors to reduce
    stats = torch.stack([total, total.new_tensor(float(seen))])
    D.all_reduce_sum(stats)
    loss_sum, images = stats.tolist()
    return {"loss": loss_sum / max(images, 1), "images": int(images), "seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    criterion: nn.Module | None,
    loader: DataLoader,
    device: torch.device,
    *,
    num_classes: int = NUM_CLASSES,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = False,
    per_image: bool = False,
) -> tuple:
    """Validation loss and scores at the loader's size, from one confusion matrix:
    ``(val_loss, scores, confmat)``.

    ``val_loss`` is the mean of the per-batch losses weighted by each batch's images,
    ``sum_b n_b * L_b / sum_b n_b`` (summed over ranks under DDP), where ``L_b`` is the criterion on
    the whole batch (cross-entropy: the mean over the batch's labelled pixels; Dice/IoU: per class
    over the batch's pixels). It is not a mean over images of per-image losses, and it depends on
    ``batch_size`` (which images share a batch); a smaller last batch counts by its images. Kept so,
    because it picks the best epoch and a resumed run must repeat it exactly
    (``tests/test_val_loss.py`` pins it).

    ``per_image=True`` (the final evaluation) also returns the frame ids and one confusion matrix
    per image ``(N, C, C+1)`` int64, gathered over all ranks and sorted by id, as
    :func:`evaluate_full_res` does: ``(val_loss, scores, confmat, ids, matrices)``. The bootstrap
    resamples them, and pairs them with the full-resolution ones by frame.
    """
    model.eval()
    confmat = ConfusionMatrix(num_classes, device=device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    count = torch.zeros((), device=device, dtype=torch.float64)
    ids, matrices = [], []
    for images, masks, batch_ids in tqdm(loader, desc="validation", unit="batch", leave=False, dynamic_ncols=True,
                                         disable=not progress):
        images, masks = to_device(images, masks, device, channels_last)
        with _autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        if criterion is not None:
            loss_sum += criterion(logits, masks).double() * images.shape[0]
        count += images.shape[0]
        preds = logits.argmax(1)
        if not per_image:
            confmat.update(preds, masks)
            continue
        for i in range(preds.shape[0]):
            one = ConfusionMatrix(num_classes, device=device)
            one.update(preds[i], masks[i])
            confmat.mat += one.mat
            ids.append(batch_ids[i])
            matrices.append(one.mat.cpu().numpy())
    stats = D.all_reduce_sum(torch.stack([loss_sum, count]))
    confmat.all_reduce()
    val_loss = (stats[0] / stats[1].clamp(min=1)).item() if criterion is not None else math.nan
    if not per_image:
        return val_loss, confmat.compute(), confmat
    return (val_loss, confmat.compute(), confmat, *_gathered(ids, matrices, num_classes))


def _gathered(ids: list[str], matrices: list[np.ndarray], num_classes: int) -> tuple[list[str], np.ndarray]:
    """Every rank's ``(id, per-image matrix)`` pairs, sorted by id under DDP (in loader order on one
    process), as ``(ids, (N, C, C+1) int64)``."""
    if D.world_size() > 1:
        gathered = [None] * D.world_size()
        torch.distributed.all_gather_object(gathered, (ids, matrices))
        pairs = sorted((i, m) for part in gathered for i, m in zip(*part))
        ids, matrices = [i for i, _ in pairs], [m for _, m in pairs]
    stacked = np.stack(matrices) if matrices else np.zeros((0, num_classes, num_classes + 1), np.int64)
    return ids, stacked


class _FullResLabels(Dataset):
    """Wraps a dataset: item ``i`` is (image at the training size, trainIds at the label's own size)."""

    def __init__(self, ds: CityscapesSegmentation):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds.samples)

    def __getitem__(self, i: int):
        image, _, sid = self.ds[i]
        return image, torch.from_numpy(read_train_ids(self.ds.samples[i].label)), sid


def _collate_full_res(batch):
    images, labels, ids = zip(*batch)
    return torch.stack(images), list(labels), list(ids)


@torch.no_grad()
def evaluate_full_res(
    model: nn.Module,
    dataset: CityscapesSegmentation,
    device: torch.device,
    *,
    batch_size: int = 4,
    num_workers: int = 0,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = False,
) -> tuple[SegScores, ConfusionMatrix, list[str], np.ndarray]:
    """Official protocol: logits up-sampled to each original label (2048x1024) before argmax.

    Returns the scores, the split's confusion matrix, the frame ids and their per-image matrices
    ``(N, C, C+1)`` int64 (in dataset order, gathered over all ranks).
    """
    model.eval()
    loader = DataLoader(
        _FullResLabels(dataset), batch_size=batch_size, sampler=D.ShardSampler(len(dataset.samples)),
        num_workers=num_workers, collate_fn=_collate_full_res,
    )
    confmat = ConfusionMatrix(NUM_CLASSES, device=device)
    ids, per_image = [], []
    for images, labels, batch_ids in tqdm(loader, desc="val full-res", leave=False, disable=not progress):
        images, _ = to_device(images, images, device, channels_last)
        with _autocast(device, amp):
            logits = model(images).float()
        for i, label in enumerate(labels):
            label = label.to(device).long()
            pred = predict_full_res(logits[i : i + 1], tuple(label.shape))[0]
            one = ConfusionMatrix(NUM_CLASSES, device=device)
            one.update(pred, label)
            confmat.mat += one.mat
            ids.append(batch_ids[i])
            per_image.append(one.mat.cpu().numpy())
    confmat.all_reduce()
    return (confmat.compute(), confmat, *_gathered(ids, per_image, NUM_CLASSES))
