"""Training and evaluation: plain functions, and ``fit(cfg)`` as one straight line.

``fit`` builds data, model, optimiser (AdamW) and scheduler (StepLR), then per epoch trains,
evaluates on the validation split, keeps the lowest-validation-loss weights in ``best.pt``
(early stopping, Section 3.4 of the reference report) and writes ``last.pt`` atomically so a
run killed at any moment resumes exactly (``resume=True``). Randomness is re-seeded from
``(seed, epoch, rank)`` at the start of every epoch, so a resumed run repeats the interrupted
epoch bit for bit.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import resource
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import distributed as D
from .checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from .config import TrainConfig, config_to_dict, from_dict, save_run_info
from .dataset import CityscapesSegmentation
from .errors import CitysegError
from .images import read_train_ids
from .labels import NUM_CLASSES
from .losses import build_loss
from .metrics import ConfusionMatrix, SegScores, predict_full_res
from .models import build_model
from .paths import default_cache_dir, resolve_data_root, runs_dir
from .transforms import normalize

__all__ = [
    "resolve_device",
    "run_dir_for",
    "build_datasets",
    "build_model_for",
    "to_device",
    "train_one_epoch",
    "evaluate",
    "evaluate_full_res",
    "fit",
    "load_run",
]

#: Config keys that may change when resuming (they do not change what is computed).
RESUMABLE_KEYS = {"epochs", "patience", "device", "num_workers", "progress", "compile", "runs_dir", "cache_dir", "data_root"}

METRIC_FIELDS = [
    "epoch", "lr", "train_loss", "val_loss", "val_miou", "val_pixel_accuracy",
    "epoch_time_s", "train_images_per_s", "is_best",
]


# ----------------------------------------------------------------------------- setup helpers


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the local CUDA device when present (per torchrun rank), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CitysegError(f"device {name!r} is not a torch device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CitysegError(f"device {name!r} requested but CUDA is not available on this machine")
    return dev


def _seed_epoch(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + D.rank() * 104_729) % 2**31


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_dir_for(cfg: TrainConfig) -> Path:
    base = Path(cfg.runs_dir) if cfg.runs_dir else runs_dir()
    return base / cfg.profile / cfg.name


def _progress_enabled(cfg_progress: bool) -> bool:
    return cfg_progress and not os.environ.get("CI") and D.is_main()


def build_datasets(cfg: TrainConfig) -> tuple[CityscapesSegmentation, CityscapesSegmentation]:
    """Training (subset, augmentation) and validation datasets at ``cfg.image_size``."""
    root = resolve_data_root(cfg.data_root)
    cache = (Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()) if cfg.cache else None
    train = CityscapesSegmentation(
        root, cfg.train_split, cfg.image_size, cfg.annotation, augment=cfg.augment, hflip_p=cfg.hflip_p,
        crop_scale=cfg.crop_scale, subset=cfg.train_subset, subset_seed=cfg.subset_seed, cache_dir=cache,
        normalize=False,
    )
    val = CityscapesSegmentation(
        root, cfg.val_split, cfg.image_size, "fine",
        subset=cfg.max_val_images or None, subset_seed=0, cache_dir=cache, normalize=False,
    )
    return train, val


def build_model_for(cfg: TrainConfig, init_weights: bool = True) -> nn.Module:
    """The model of ``cfg``; encoders that fix their input size (Swin V2) get ``image_size``.

    ``init_weights=False`` skips loading pretrained encoder weights (download or file), for when a
    checkpoint is about to overwrite them anyway (resume, evaluation, prediction).
    """
    options = dict(cfg.model_options)
    if cfg.model == "swin2_jnet":
        options.setdefault("img_size", tuple(cfg.image_size))
        if not init_weights:
            options.update(pretrained=False, weights=None)
    return build_model(cfg.model, num_classes=NUM_CLASSES, **options)


def _num_workers(cfg: TrainConfig, device: torch.device) -> int:
    if cfg.num_workers >= 0:
        return cfg.num_workers
    return min(os.cpu_count() or 1, 8) if device.type == "cuda" else 0


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


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
    """One pass over ``loader``; returns mean loss, images seen and seconds.

    Raises :class:`CitysegError` on a NaN/inf loss (checked every few steps and at the end),
    before anything of this epoch is saved.
    """
    model.train()
    total = torch.zeros((), device=device, dtype=torch.float64)
    seen = 0
    n_batches = min(len(loader), max_batches) if max_batches else len(loader)
    start = time.perf_counter()
    bar = tqdm(total=n_batches, desc=desc, leave=False, disable=not progress)
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
            running = total.item() / seen
            if not math.isfinite(running):
                raise CitysegError(f"non-finite training loss ({running}) at step {step + 1}")
            bar.set_postfix(loss=f"{running:.4f}")
        bar.update()
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stats = torch.tensor([total.item(), float(seen)], dtype=torch.float64)
    D.all_reduce_sum(stats)
    return {"loss": stats[0].item() / max(stats[1].item(), 1), "images": int(stats[1].item()), "seconds": time.perf_counter() - start}


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
) -> tuple[float, SegScores, ConfusionMatrix]:
    """Validation loss (mean over images) and scores at the loader's size, from one confusion matrix."""
    model.eval()
    confmat = ConfusionMatrix(num_classes, device=device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    count = torch.zeros((), device=device, dtype=torch.float64)
    for images, masks, _ in tqdm(loader, desc="val", leave=False, disable=not progress):
        images, masks = to_device(images, masks, device, channels_last)
        with _autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        if criterion is not None:
            loss_sum += criterion(logits, masks).double() * images.shape[0]
        count += images.shape[0]
        confmat.update(logits.argmax(1), masks)
    stats = D.all_reduce_sum(torch.stack([loss_sum, count]))
    confmat.all_reduce()
    val_loss = (stats[0] / stats[1].clamp(min=1)).item() if criterion is not None else math.nan
    return val_loss, confmat.compute(), confmat


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
) -> tuple[SegScores, ConfusionMatrix]:
    """Official protocol: logits up-sampled to each original label (2048x1024) before argmax."""
    model.eval()
    loader = DataLoader(
        _FullResLabels(dataset), batch_size=batch_size, sampler=D.ShardSampler(len(dataset.samples)),
        num_workers=num_workers, collate_fn=_collate_full_res,
    )
    confmat = ConfusionMatrix(NUM_CLASSES, device=device)
    for images, labels, _ in tqdm(loader, desc="val full-res", leave=False, disable=not progress):
        images, _ = to_device(images, images, device, channels_last)
        with _autocast(device, amp):
            logits = model(images).float()
        for i, label in enumerate(labels):
            label = label.to(device).long()
            confmat.update(predict_full_res(logits[i : i + 1], tuple(label.shape))[0], label)
    confmat.all_reduce()
    return confmat.compute(), confmat


# ----------------------------------------------------------------------------- fit


def _write_metrics_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())


def _check_resumable(saved: dict, cfg: TrainConfig, path: Path) -> None:
    now = config_to_dict(cfg)
    for key, old in saved.items():
        if key in RESUMABLE_KEYS:
            continue
        if key not in now:
            raise CitysegError(f"{path}: incompatible checkpoint: it has config key {key!r} this version does not know")
        if now[key] != old:
            raise CitysegError(f"{path}: cannot resume: {key} was {old!r} in that run, now {now[key]!r}")


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _scores_json(scores: SegScores) -> dict:
    return scores.to_dict()


def fit(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train ``cfg`` into ``run_dir_for(cfg)``; returns the run folder.

    Writes ``config.yaml``, ``environment.json``, ``metrics.csv`` (a row per epoch), ``last.pt``
    (every epoch), ``best.pt`` (lowest val loss) and, at the end, ``summary.json`` with the best
    checkpoint's validation scores at the training size and at full resolution.
    ``resume=True`` continues from ``last.pt`` (or starts if there is none); without it an
    existing run folder with checkpoints is an error, so nothing is overwritten by accident.
    """
    device = resolve_device(cfg.device)
    distributed = D.init_distributed(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = run_dir_for(cfg)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if (out / "summary.json").is_file() and resume:
        return out  # finished already: nothing to do
    if last_path.exists() and not resume:
        raise CitysegError(f"{out} already holds a run; pass --resume to continue it, or choose another name=")
    progress = _progress_enabled(cfg.progress)
    use_cuda = device.type == "cuda"
    amp, channels_last = cfg.amp and use_cuda, cfg.channels_last and use_cuda

    # data
    train_ds, val_ds = build_datasets(cfg)
    workers = _num_workers(cfg, device)
    gen = torch.Generator()
    if distributed:
        train_sampler = torch.utils.data.DistributedSampler(train_ds, shuffle=True, seed=cfg.seed, drop_last=True)
    else:
        train_sampler = torch.utils.data.RandomSampler(train_ds, generator=gen)
    loader_kw = dict(num_workers=workers, pin_memory=use_cuda, persistent_workers=False)
    train_loader = DataLoader(train_ds, cfg.batch_size, sampler=train_sampler, drop_last=len(train_ds) > cfg.batch_size,
                              generator=gen, **loader_kw)
    val_loader = DataLoader(val_ds, cfg.batch_size, sampler=D.ShardSampler(len(val_ds)), **loader_kw)

    # model, loss, optimiser, scheduler
    _seed_all(cfg.seed)
    resuming = resume and last_path.is_file()
    model = build_model_for(cfg, init_weights=not resuming).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if distributed and use_cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    criterion = build_loss(cfg.loss)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)

    start_epoch, best_loss, best_epoch, bad_epochs, history = 0, math.inf, -1, 0, []
    if resuming:
        state = load_checkpoint(last_path)
        _check_resumable(state["config"], cfg, last_path)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CitysegError(f"{last_path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_loss, best_epoch = state["epoch"], state["best_val_loss"], state["best_epoch"]
        bad_epochs, history = state["bad_epochs"], state["history"]
        torch.set_rng_state(state["rng"]["torch"])
    raw_model = model
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None)
    if cfg.compile:
        model = torch.compile(model)

    if D.is_main():
        save_run_info(cfg, out)
    D.barrier()
    t_run = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.patience and bad_epochs >= cfg.patience:
            break
        # seed everything from (seed, epoch, rank): a resumed epoch repeats exactly
        _seed_all(_seed_epoch(cfg.seed, epoch))
        gen.manual_seed(_seed_epoch(cfg.seed, epoch))
        if distributed:
            train_sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        tr = train_one_epoch(model, criterion, optimizer, train_loader, device, amp=amp, channels_last=channels_last,
                             max_batches=cfg.max_batches, progress=progress, desc=f"epoch {epoch + 1}/{cfg.epochs}")
        val_loss, scores, _ = evaluate(model, criterion, val_loader, device, amp=amp, channels_last=channels_last,
                                       progress=progress)
        if not math.isfinite(val_loss):
            raise CitysegError(f"non-finite validation loss at epoch {epoch + 1}; last good checkpoint: {last_path}")
        scheduler.step()
        is_best = val_loss < best_loss
        if is_best:
            best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
        else:
            bad_epochs += 1
        history.append({
            "epoch": epoch + 1, "lr": lr, "train_loss": tr["loss"], "val_loss": val_loss, "val_miou": scores.miou,
            "val_pixel_accuracy": scores.pixel_accuracy, "epoch_time_s": round(tr["seconds"], 3),
            "train_images_per_s": round(tr["images"] / max(tr["seconds"], 1e-9), 3), "is_best": int(is_best),
        })
        # checkpoint (rank 0 only; best before last, both atomic)
        if D.is_main():
            weights = raw_model.state_dict()
            if is_best:
                save_checkpoint(best_path, {"model": weights, "epoch": epoch + 1, "val_loss": val_loss,
                                            "config": config_to_dict(cfg)})
            save_checkpoint(last_path, {
                "model": weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1, "best_val_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                "history": history, "rng": {"torch": torch.get_rng_state()}, "config": config_to_dict(cfg),
            })
            _write_metrics_csv(out / "metrics.csv", history)
            if progress:
                tqdm.write(f"epoch {epoch + 1}: train {tr['loss']:.4f}  val {val_loss:.4f}  mIoU {scores.miou:.3f}"
                           + ("  *" if is_best else ""))
        D.barrier()

    # final evaluation of the best checkpoint, at the training size and at full resolution
    raw_model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
    val_loss, scores, confmat = evaluate(raw_model, criterion, val_loader, device, amp=amp,
                                         channels_last=channels_last, progress=progress)
    full = None
    if cfg.full_res_eval:
        full, full_cm = evaluate_full_res(raw_model, val_ds, device, batch_size=cfg.batch_size, num_workers=workers,
                                          amp=amp, channels_last=channels_last, progress=progress)
    if D.is_main():
        train_times = [h["epoch_time_s"] for h in history]
        rates = [h["train_images_per_s"] for h in history]
        summary = {
            "name": cfg.name, "profile": cfg.profile, "model": cfg.model, "loss": cfg.loss,
            "epochs_run": len(history), "best_epoch": best_epoch, "best_val_loss": best_loss,
            "val": _scores_json(scores),
            "val_full_res": _scores_json(full) if full is not None else None,
            "confusion_matrix": confmat.mat.cpu().tolist(),
            "confusion_matrix_full_res": full_cm.mat.cpu().tolist() if full is not None else None,
            "train_images": len(train_ds), "val_images": len(val_ds),
            "train_images_per_s": float(np.median(rates)) if rates else math.nan,
            "train_time_s": float(sum(train_times)), "wall_time_s": time.perf_counter() - t_run,
            "peak_memory_mb": _peak_memory_mb(device), "device": str(device), "world_size": D.world_size(),
        }
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    D.barrier()
    return out


def load_run(run_dir: str | os.PathLike, checkpoint: str = "best.pt", device: str = "cpu") -> tuple[TrainConfig, nn.Module]:
    """The config and model (weights of ``checkpoint``) of a finished or running run."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CitysegError(f"{run_dir}: not a run folder (no config.yaml)")
    from .config import load_yaml

    cfg = from_dict(TrainConfig, load_yaml(run_dir / "config.yaml"), source=str(run_dir / "config.yaml"))
    state = load_checkpoint(run_dir / checkpoint, map_location=device)
    model = build_model_for(cfg, init_weights=False)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as e:
        raise CitysegError(f"{run_dir / checkpoint}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    return cfg, model.to(device).eval()
